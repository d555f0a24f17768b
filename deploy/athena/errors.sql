-- Dead-letter envelopes (DESIGN.md section 4), gzip JSON Lines, partitioned by stage,
-- error type and the UTC day of received_at. The enum lists are the bounded values in
-- flowline_model::error_types plus the archiver's own (conversion, unframeable); a
-- stage or type outside them is stored but needs the list extended to be queried.
CREATE EXTERNAL TABLE IF NOT EXISTS flowline.errors (
  reason string,
  source_stream string,
  shard_id string,
  sequence_number string,
  received_at string COMMENT 'RFC 3339 UTC',
  payload_base64 string COMMENT 'from_base64(payload_base64) is the rejected record',
  payload_truncated boolean COMMENT 'absent (NULL) unless true'
)
PARTITIONED BY (stage string, error_type string, dt string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://analytics-lake/errors/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.stage.type' = 'enum',
  'projection.stage.values' = 'producer,enrichment-joiner,aggregator,indexer,archiver',
  'projection.error_type.type' = 'enum',
  'projection.error_type.values' = 'bad_json,missing_field,bad_field,oversized,unknown_type,late,delivery_failed,conversion,unframeable',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2020-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'storage.location.template' = 's3://analytics-lake/errors/${stage}/${error_type}/dt=${dt}/'
);
