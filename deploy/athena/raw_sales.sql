-- Raw 'sales' records, one JSON object per line, as received (gzip JSON Lines).
-- Malformed lines read as all-NULL rows rather than failing the query.
CREATE EXTERNAL TABLE IF NOT EXISTS flowline.raw_sales (
  sale_id string,
  customer_id string,
  item_id string,
  promo_id string,
  quantity int,
  unit_price decimal(18,2),
  event_time string COMMENT 'RFC 3339 UTC; from_iso8601_timestamp(event_time)'
)
PARTITIONED BY (dt string, hour int)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://analytics-lake/raw/sales/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://analytics-lake/raw/sales/dt=${dt}/hour=${hour}/'
);
