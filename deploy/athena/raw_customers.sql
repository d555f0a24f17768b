-- Raw 'customers' records, one JSON object per line, as received (gzip JSON Lines).
-- Malformed lines read as all-NULL rows rather than failing the query.
CREATE EXTERNAL TABLE IF NOT EXISTS flowline.raw_customers (
  customer_id string,
  address_id string,
  first_name string,
  last_name string,
  email string,
  phone string,
  segment string,
  updated_at string COMMENT 'RFC 3339 UTC; from_iso8601_timestamp(updated_at)'
)
PARTITIONED BY (dt string, hour int)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://analytics-lake/raw/customers/'
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
  'storage.location.template' = 's3://analytics-lake/raw/customers/dt=${dt}/hour=${hour}/'
);
