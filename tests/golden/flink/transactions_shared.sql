CREATE TEMPORARY TABLE `transactions__source` (
  _line STRING,
  _line_too_large BOOLEAN,
  _source_file STRING METADATA FROM 'file.path' VIRTUAL,
  _rowtime AS COALESCE(CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END, TIMESTAMP '1970-01-01 00:00:00'),
  WATERMARK FOR _rowtime AS _rowtime - INTERVAL '0 00:01:00.000' DAY TO SECOND(3)
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///events/transactions',
  'format' = 'fp-lines',
  'fp-lines.max-line-bytes' = '1048576'
);

CREATE TEMPORARY VIEW `user_txn_stats_v1__classified` AS
SELECT
  JSON_VALUE(_line, '$.user_id') AS `user_id`,
  TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) AS `amount`,
  JSON_VALUE(_line, '$.merchant_id') AS `merchant_id`,
  JSON_VALUE(_line, '$.country') AS `country`,
  _rowtime,
  _line,
  _source_file,
  CASE
    WHEN _line_too_large THEN 'too_large'
    WHEN POSITION(U&'\FFFD' IN _line) > 0 THEN 'invalid_utf8'
    WHEN _line IS NULL OR NOT (_line IS JSON OBJECT) THEN 'malformed_json'
    WHEN JSON_VALUE(_line, '$.user_id') IS NULL THEN 'missing_user_id'
    WHEN JSON_VALUE(_line, '$.event_ts') IS NULL THEN 'missing_event_ts'
    WHEN CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END IS NULL THEN 'bad_event_time'
    WHEN JSON_VALUE(_line, '$.txn_id') IS NULL THEN 'missing_txn_id'
    WHEN JSON_VALUE(_line, '$.merchant_id') IS NULL THEN 'missing_merchant_id'
    WHEN JSON_VALUE(_line, '$.amount') IS NULL THEN 'missing_amount'
    WHEN JSON_VALUE(_line, '$.amount') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) IS NULL THEN 'bad_amount'
    WHEN _rowtime <= CURRENT_WATERMARK(_rowtime) + INTERVAL '0 00:00:30.000' DAY TO SECOND(3) THEN 'late_event'
    ELSE NULL
  END AS _error_reason
FROM `transactions__source`;

CREATE TEMPORARY VIEW `user_txn_stats_v1__good` AS
SELECT `user_id`, `amount`, `merchant_id`, `country`, _rowtime
FROM `user_txn_stats_v1__classified`
WHERE _error_reason IS NULL;

CREATE TEMPORARY TABLE `user_txn_stats_v1__features` (
  `user_id` STRING,
  `window_start` TIMESTAMP(3),
  `window_end` TIMESTAMP(3),
  `txn_count_5m` BIGINT,
  `amount_sum_5m` DOUBLE,
  `amount_sum_1h` DOUBLE,
  `amount_avg_1h` DOUBLE,
  `amount_max_1h` DOUBLE,
  `distinct_merchants_1h` BIGINT,
  `last_country_1h` STRING,
  `_accepted_in_step` BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/user_txn_stats_v1/features',
  'format' = 'csv',
  'csv.null-literal' = '\N'
);

CREATE TEMPORARY TABLE `user_txn_stats_v1__dead_letters` (
  `reason` STRING,
  `source_name` STRING,
  `source_file` STRING,
  `processed_at` TIMESTAMP(3),
  `line` STRING
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/user_txn_stats_v1/dead_letters',
  'format' = 'csv',
  'sink.parallelism' = '1',
  'csv.null-literal' = '\N'
);

CREATE TEMPORARY VIEW `merchant_risk_profile_v2__classified` AS
SELECT
  JSON_VALUE(_line, '$.merchant_id') AS `merchant_id`,
  TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) AS `amount`,
  JSON_VALUE(_line, '$.user_id') AS `user_id`,
  JSON_VALUE(_line, '$.country') AS `country`,
  _rowtime,
  _line,
  _source_file,
  CASE
    WHEN _line_too_large THEN 'too_large'
    WHEN POSITION(U&'\FFFD' IN _line) > 0 THEN 'invalid_utf8'
    WHEN _line IS NULL OR NOT (_line IS JSON OBJECT) THEN 'malformed_json'
    WHEN JSON_VALUE(_line, '$.merchant_id') IS NULL THEN 'missing_merchant_id'
    WHEN JSON_VALUE(_line, '$.event_ts') IS NULL THEN 'missing_event_ts'
    WHEN CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END IS NULL THEN 'bad_event_time'
    WHEN JSON_VALUE(_line, '$.txn_id') IS NULL THEN 'missing_txn_id'
    WHEN JSON_VALUE(_line, '$.user_id') IS NULL THEN 'missing_user_id'
    WHEN JSON_VALUE(_line, '$.amount') IS NULL THEN 'missing_amount'
    WHEN JSON_VALUE(_line, '$.amount') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) IS NULL THEN 'bad_amount'
    WHEN _rowtime <= CURRENT_WATERMARK(_rowtime) THEN 'late_event'
    ELSE NULL
  END AS _error_reason
FROM `transactions__source`;

CREATE TEMPORARY VIEW `merchant_risk_profile_v2__good` AS
SELECT `merchant_id`, `amount`, `user_id`, `country`, _rowtime
FROM `merchant_risk_profile_v2__classified`
WHERE _error_reason IS NULL;

CREATE TEMPORARY TABLE `merchant_risk_profile_v2__features` (
  `merchant_id` STRING,
  `window_start` TIMESTAMP(3),
  `window_end` TIMESTAMP(3),
  `txn_count_1h` BIGINT,
  `amount_sum_1h` DOUBLE,
  `amount_min_1h` DOUBLE,
  `amount_max_1h` DOUBLE,
  `distinct_users_1h` BIGINT,
  `distinct_countries_1h` BIGINT,
  `_accepted_in_step` BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/merchant_risk_profile_v2/features',
  'format' = 'csv',
  'csv.null-literal' = '\N'
);

CREATE TEMPORARY TABLE `merchant_risk_profile_v2__dead_letters` (
  `reason` STRING,
  `source_name` STRING,
  `source_file` STRING,
  `processed_at` TIMESTAMP(3),
  `line` STRING
) WITH (
  'connector' = 'filesystem',
  'path' = 'file:///run/merchant_risk_profile_v2/dead_letters',
  'format' = 'csv',
  'sink.parallelism' = '1',
  'csv.null-literal' = '\N'
);

INSERT INTO `user_txn_stats_v1__features`
SELECT
  `user_id`,
  window_start,
  window_end,
  CAST(COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:05:00.000' DAY TO SECOND(3)) AS BIGINT) AS `txn_count_5m`,
  CAST(CASE WHEN COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:05:00.000' DAY TO SECOND(3)) = 0 THEN 0 ELSE SUM(`amount`) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:05:00.000' DAY TO SECOND(3)) END AS DOUBLE) AS `amount_sum_5m`,
  CAST(SUM(`amount`) AS DOUBLE) AS `amount_sum_1h`,
  CAST(AVG(CAST(`amount` AS DOUBLE)) AS DOUBLE) AS `amount_avg_1h`,
  CAST(MAX(`amount`) AS DOUBLE) AS `amount_max_1h`,
  CAST(COUNT(DISTINCT `merchant_id`) AS BIGINT) AS `distinct_merchants_1h`,
  CAST(SUBSTR(MAX(CONCAT(CAST(_rowtime AS STRING), CAST(`country` AS STRING))), 24) AS STRING) AS `last_country_1h`,
  COUNT(*) FILTER (WHERE _rowtime >= window_end - INTERVAL '0 00:05:00.000' DAY TO SECOND(3)) AS _accepted_in_step
FROM TABLE(HOP(TABLE `user_txn_stats_v1__good`, DESCRIPTOR(_rowtime), INTERVAL '0 00:05:00.000' DAY TO SECOND(3), INTERVAL '0 01:00:00.000' DAY TO SECOND(3)))
GROUP BY `user_id`, window_start, window_end;

INSERT INTO `user_txn_stats_v1__dead_letters`
SELECT _error_reason, 'transactions', _source_file, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), SUBSTR(_line, 1, 4096)
FROM `user_txn_stats_v1__classified`
WHERE _error_reason IS NOT NULL;

INSERT INTO `merchant_risk_profile_v2__features`
SELECT
  `merchant_id`,
  window_start,
  window_end,
  CAST(COUNT(*) AS BIGINT) AS `txn_count_1h`,
  CAST(SUM(`amount`) AS DOUBLE) AS `amount_sum_1h`,
  CAST(MIN(`amount`) AS DOUBLE) AS `amount_min_1h`,
  CAST(MAX(`amount`) AS DOUBLE) AS `amount_max_1h`,
  CAST(COUNT(DISTINCT `user_id`) AS BIGINT) AS `distinct_users_1h`,
  CAST(COUNT(DISTINCT `country`) AS BIGINT) AS `distinct_countries_1h`,
  COUNT(*) AS _accepted_in_step
FROM TABLE(TUMBLE(TABLE `merchant_risk_profile_v2__good`, DESCRIPTOR(_rowtime), INTERVAL '0 01:00:00.000' DAY TO SECOND(3)))
GROUP BY `merchant_id`, window_start, window_end;

INSERT INTO `merchant_risk_profile_v2__dead_letters`
SELECT _error_reason, 'transactions', _source_file, CAST(CURRENT_TIMESTAMP AS TIMESTAMP(3)), SUBSTR(_line, 1, 4096)
FROM `merchant_risk_profile_v2__classified`
WHERE _error_reason IS NOT NULL;
