CREATE TEMPORARY TABLE `clicks__source` (
  _line STRING,
  _line_too_large BOOLEAN,
  _source_file STRING METADATA FROM 'file.path' VIRTUAL,
  _rowtime AS COALESCE(CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END, TIMESTAMP '1970-01-01 00:00:00'),
  WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:00:10.000' DAY TO SECOND(3)
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///events/clicks',
  'format' = 'fp-lines',
  'fp-lines.max-line-bytes' = '1048576'
);

CREATE TEMPORARY VIEW `session_clickstream_v0__classified` AS
SELECT
  JSON_VALUE(_line, '$.session_id') AS `session_id`,
  JSON_VALUE(_line, '$.page_id') AS `page_id`,
  TRY_CAST(JSON_VALUE(_line, '$.dwell_ms') AS BIGINT) AS `dwell_ms`,
  TRY_CAST(JSON_VALUE(_line, '$.price') AS DOUBLE) AS `price`,
  _rowtime,
  _line,
  _source_file,
  CASE
    WHEN _line_too_large THEN 'too_large'
    WHEN POSITION(U&'\FFFD' IN _line) > 0 THEN 'invalid_utf8'
    WHEN _line IS NULL OR NOT (_line IS JSON OBJECT) THEN 'malformed_json'
    WHEN JSON_VALUE(_line, '$.session_id') IS NULL THEN 'missing_session_id'
    WHEN JSON_VALUE(_line, '$.event_ts') IS NULL THEN 'missing_event_ts'
    WHEN CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END IS NULL THEN 'bad_event_time'
    WHEN JSON_VALUE(_line, '$.page_id') IS NULL THEN 'missing_page_id'
    WHEN JSON_VALUE(_line, '$.action') IS NULL THEN 'missing_action'
    WHEN JSON_VALUE(_line, '$.dwell_ms') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.dwell_ms') AS BIGINT) IS NULL THEN 'bad_dwell_ms'
    WHEN JSON_VALUE(_line, '$.price') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.price') AS DOUBLE) IS NULL THEN 'bad_price'
    WHEN _rowtime <= CURRENT_WATERMARK(_rowtime) THEN 'late_event'
    ELSE NULL
  END AS _error_reason
FROM `clicks__source`;

CREATE TEMPORARY VIEW `session_clickstream_v0__good` AS
SELECT `session_id`, `page_id`, `dwell_ms`, `price`, _rowtime
FROM `session_clickstream_v0__classified`
WHERE _error_reason IS NULL;

CREATE TEMPORARY TABLE `session_clickstream_v0__features` (
  `session_id` STRING,
  `window_start` TIMESTAMP(3),
  `window_end` TIMESTAMP(3),
  `events_10m` BIGINT,
  `distinct_pages_10m` BIGINT,
  `dwell_avg_10m` DOUBLE,
  `dwell_sum_10m` BIGINT,
  `max_price_seen_10m` DOUBLE,
  `last_page_10m` STRING,
  `events_1m` BIGINT,
  `_accepted_in_step` BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/session_clickstream_v0/features',
  'format' = 'csv',
  'csv.null-literal' = '\N'
);

CREATE TEMPORARY TABLE `session_clickstream_v0__dead_letters` (
  `reason` STRING,
  `source_name` STRING,
  `source_file` STRING,
  `processed_at` TIMESTAMP(3),
  `line` STRING
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/session_clickstream_v0/dead_letters',
  'format' = 'csv',
  'sink.parallelism' = '1',
  'csv.null-literal' = '\N'
);

INSERT INTO `session_clickstream_v0__features`
SELECT
  `session_id`,
  window_start,
  window_end,
  CAST(COUNT(*) AS BIGINT) AS `events_10m`,
  CAST(COUNT(DISTINCT `page_id`) AS BIGINT) AS `distinct_pages_10m`,
  CAST(AVG(CAST(`dwell_ms` AS DOUBLE)) AS DOUBLE) AS `dwell_avg_10m`,
  CAST(SUM(`dwell_ms`) AS BIGINT) AS `dwell_sum_10m`,
  CAST(MAX(`price`) AS DOUBLE) AS `max_price_seen_10m`,
  CAST(SUBSTR(MAX(CONCAT(CAST(_rowtime AS STRING), CAST(`page_id` AS STRING))), 24) AS STRING) AS `last_page_10m`,
  CAST(COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)) AS BIGINT) AS `events_1m`,
  COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)) AS _accepted_in_step
FROM TABLE(HOP(TABLE `session_clickstream_v0__good`, DESCRIPTOR(_rowtime), INTERVAL '0 00:01:00.000' DAY TO SECOND(3), INTERVAL '0 00:10:00.000' DAY TO SECOND(3)))
GROUP BY `session_id`, window_start, window_end;

INSERT INTO `session_clickstream_v0__dead_letters`
SELECT _error_reason, 'clicks', _source_file, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), SUBSTR(_line, 1, 4096)
FROM `session_clickstream_v0__classified`
WHERE _error_reason IS NOT NULL;
