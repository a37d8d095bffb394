CREATE TEMPORARY TABLE `transactions__source` (
  _line STRING,
  _line_too_large BOOLEAN,
  _kafka_topic STRING METADATA FROM 'topic' VIRTUAL,
  _kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  _kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  _source_file AS CONCAT('kafka://', _kafka_topic, '/', CAST(_kafka_partition AS STRING), '/', CAST(_kafka_offset AS STRING)),
  _rowtime AS COALESCE(CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END, TIMESTAMP '1970-01-01 00:00:00'),
  WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:00:30.000' DAY TO SECOND(3)
) WITH (
  'connector' = 'kafka',
  'scan.parallelism' = '1',
  'topic' = 'transactions',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'properties.group.id' = 'feature-platform',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'fp-lines',
  'fp-lines.max-line-bytes' = '1048576'
);
