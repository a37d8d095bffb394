CASE
    WHEN _line_too_large THEN 'too_large'
    WHEN POSITION(U&'\FFFD' IN _line) > 0 THEN 'invalid_utf8'
    WHEN _line IS NULL OR NOT (_line IS JSON OBJECT) THEN 'malformed_json'
    WHEN JSON_VALUE(_line, '$.user_id') IS NULL THEN 'missing_user_id'
    WHEN JSON_VALUE(_line, '$.event_ts') IS NULL THEN 'missing_event_ts'
    WHEN CASE WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 2, 1) <> ':' THEN TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '+' THEN TIMESTAMPADD(MINUTE, -(TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) WHEN SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 5, 1) = '-' THEN TIMESTAMPADD(MINUTE, (TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 4, 2) AS INT) * 60 + TRY_CAST(SUBSTR(JSON_VALUE(_line, '$.event_ts'), CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 1, 2) AS INT)), TRY_CAST(REPLACE(SUBSTR(JSON_VALUE(_line, '$.event_ts'), 1, CHAR_LENGTH(JSON_VALUE(_line, '$.event_ts')) - 6), 'T', ' ') AS TIMESTAMP(3))) ELSE TRY_CAST(REPLACE(REPLACE(JSON_VALUE(_line, '$.event_ts'), 'T', ' '), 'Z', '') AS TIMESTAMP(3)) END IS NULL THEN 'bad_event_time'
    WHEN JSON_VALUE(_line, '$.amount') IS NOT NULL AND TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) IS NULL THEN 'bad_amount'
    WHEN ((((TRY_CAST(JSON_VALUE(_line, '$.amount') AS DOUBLE) > 0) AND ((JSON_VALUE(_line, '$.channel') IS NULL) OR (LOWER(JSON_VALUE(_line, '$.channel')) NOT IN ('test', 'qa')))) AND (JSON_VALUE(_line, '$.channel') <> 'o''brien'))) IS NOT TRUE THEN 'filtered'
    WHEN _rowtime <= CURRENT_WATERMARK(_rowtime) THEN 'late_event'
    ELSE NULL
  END
