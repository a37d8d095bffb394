CREATE TEMPORARY TABLE `transactions__source` (
  _line STRING,
  _source_file STRING METADATA FROM 'file.path' VIRTUAL,
  _rowtime AS COALESCE(TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)), TIMESTAMP '1970-01-01 00:00:00'),
  WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:00:00.000' DAY TO SECOND(3)
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///events/transactions',
  'format' = 'raw',
  'raw.charset' = 'UTF-8'
);

CREATE TEMPORARY VIEW `card_payments_v1__classified` AS
SELECT
  JSON_VALUE(_line, '$.user_id') AS `user_id`,
  TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) AS `amount`,
  _rowtime,
  _line,
  _source_file,
  CASE
    WHEN _line IS NULL OR NOT (_line IS JSON OBJECT) THEN 'malformed_json'
    WHEN JSON_VALUE(_line, '$.user_id') IS NULL THEN 'missing_user_id'
    WHEN JSON_VALUE(_line, '$.event_ts') IS NULL THEN 'missing_event_ts'
    WHEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) IS NULL THEN 'bad_event_time'
    WHEN JSON_VALUE(_line, '$.amount') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) IS NULL THEN 'bad_amount'
    WHEN ((((TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) > 0) AND ((JSON_VALUE(_line, '$.channel') IS NULL) OR (LOWER(JSON_VALUE(_line, '$.channel')) NOT IN ('test', 'qa')))) AND (JSON_VALUE(_line, '$.channel') <> 'o''brien'))) IS NOT TRUE THEN 'filtered'
    WHEN _rowtime <= CURRENT_WATERMARK(_rowtime) THEN 'late_event'
    ELSE NULL
  END AS _error_reason
FROM `transactions__source`;

CREATE TEMPORARY VIEW `card_payments_v1__good` AS
SELECT `user_id`, `amount`, _rowtime
FROM `card_payments_v1__classified`
WHERE _error_reason IS NULL;

CREATE TEMPORARY TABLE `card_payments_v1__features` (
  `user_id` STRING,
  `window_start` TIMESTAMP(3),
  `window_end` TIMESTAMP(3),
  `payment_count_5m` BIGINT,
  `payment_sum_5m` DOUBLE,
  `_accepted_in_step` BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/features',
  'format' = 'csv',
  'csv.null-literal' = '\N'
);

CREATE TEMPORARY TABLE `card_payments_v1__dead_letters` (
  `reason` STRING,
  `source_name` STRING,
  `source_file` STRING,
  `processed_at` TIMESTAMP(3),
  `line` STRING
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/dead_letters',
  'format' = 'csv',
  'csv.null-literal' = '\N'
);

INSERT INTO `card_payments_v1__features`
SELECT
  `user_id`,
  window_start,
  window_end,
  CAST(COUNT(*) AS BIGINT) AS `payment_count_5m`,
  CAST(SUM(`amount`) AS DOUBLE) AS `payment_sum_5m`,
  COUNT(*) AS _accepted_in_step
FROM TABLE(TUMBLE(TABLE `card_payments_v1__good`, DESCRIPTOR(_rowtime), INTERVAL '0 00:05:00.000' DAY TO SECOND(3)))
GROUP BY `user_id`, window_start, window_end;

INSERT INTO `card_payments_v1__dead_letters`
SELECT _error_reason, 'transactions', _source_file, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), _line
FROM `card_payments_v1__classified`
WHERE _error_reason IS NOT NULL;
