-- Enriched orders, partitioned by event_time (UTC). Deduplicate by order_id.
-- Parquet, Snappy, one row group per object; schema: crates/lake/src/encode/orders.rs.
CREATE EXTERNAL TABLE IF NOT EXISTS flowline.curated_orders (
  order_id string,
  event_time timestamp COMMENT 'UTC',
  customer_id string,
  customer_segment string,
  email_sha256 string,
  address_id string,
  city string,
  state string,
  postcode string,
  country string,
  location struct<lat:double,lon:double> COMMENT 'rounded to 2 decimals; NULL when no address joined',
  item_id string,
  item_name string,
  category string,
  brand string,
  promo_id string,
  discount_pct decimal(5,2),
  quantity int,
  unit_price decimal(18,2),
  gross_amount decimal(18,2),
  discount_amount decimal(18,2),
  net_amount decimal(18,2),
  join_status string COMMENT 'complete or partial',
  missing array<string> COMMENT 'in order: customer, address, item, promo',
  enriched_at timestamp COMMENT 'UTC'
)
PARTITIONED BY (dt string, hour int)
STORED AS PARQUET
LOCATION 's3://analytics-lake/curated/orders/'
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
  'storage.location.template' = 's3://analytics-lake/curated/orders/dt=${dt}/hour=${hour}/',
  'parquet.compression' = 'SNAPPY'
);
