-- Window metrics, partitioned by window_start (UTC). Every revision is kept; take max(revision) per id.
-- Parquet, Snappy, one row group per object; schema: crates/lake/src/encode/metrics.rs.
CREATE EXTERNAL TABLE IF NOT EXISTS flowline.curated_order_metrics (
  id string,
  window_start timestamp COMMENT 'UTC',
  window_end timestamp COMMENT 'UTC',
  dimension string COMMENT 'all, category or state',
  key string,
  orders bigint,
  units bigint,
  gross_amount decimal(18,2),
  net_amount decimal(18,2),
  avg_order_value decimal(18,2),
  distinct_customers bigint,
  revision bigint COMMENT 'latest revision of an id is the final value'
)
PARTITIONED BY (dt string, hour int)
STORED AS PARQUET
LOCATION 's3://analytics-lake/curated/order_metrics/'
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
  'storage.location.template' = 's3://analytics-lake/curated/order_metrics/dt=${dt}/hour=${hour}/',
  'parquet.compression' = 'SNAPPY'
);
