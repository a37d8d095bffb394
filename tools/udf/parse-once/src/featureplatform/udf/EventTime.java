package featureplatform.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.data.binary.BinaryStringDataUtil;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code FP_EVENT_TIME(line, 'key')}: the ISO-8601 event time at the line's top-level {@code key} as a UTC
 * {@code TIMESTAMP(3)}, or NULL: exactly what the generated SQL's ISO-8601 parse of
 * {@code JSON_VALUE(line, '$.key')} returns (pipelines/codegen/flink_sql.py, {@code _parse_iso8601}).
 *
 * <p>Why: that SQL expression reads the value about twenty times (its {@code CASE} looks at the character before the
 * last two, cuts off a trailing {@code +hh:mm}/{@code -hh:mm} and subtracts it), and the job evaluates it twice per
 * line (the rowtime before the watermark, and the {@code bad_event_time} rule of the classification). This function
 * does it once per call, from the line's one parse ({@link ParsedLine}).
 *
 * <p>Exactness: every step calls the runtime function Flink's generated code calls for the SQL it replaces
 * ({@code SUBSTR}: {@link BinaryStringDataUtil#substringSQL}; {@code CHAR_LENGTH}: {@link BinaryStringData#numChars};
 * {@code REPLACE}: {@link String#replace}; {@code TRY_CAST(.. AS TIMESTAMP(3))} and {@code TRY_CAST(.. AS INT)}:
 * {@link BinaryStringDataUtil#toTimestamp} and {@link BinaryStringDataUtil#toInt} after {@link BinaryStringData#trim},
 * a failure giving NULL;
 * {@code TIMESTAMPADD(MINUTE, ..)}: adding minutes to the epoch milliseconds), and
 * tests/codegen/test_parse_once.py compares both on a corpus of valid and broken times in a real job.
 */
public final class EventTime extends ScalarFunction {

    private static final BinaryStringData COLON = BinaryStringData.fromString(":");
    private static final BinaryStringData PLUS = BinaryStringData.fromString("+");
    private static final BinaryStringData MINUS = BinaryStringData.fromString("-");

    public @DataTypeHint(value = "TIMESTAMP(3)", bridgedTo = TimestampData.class) TimestampData eval(
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line, String key) {
        if (line == null) {
            return null;
        }
        StringData raw = ParsedLine.value(line, key);
        return raw == null ? null : iso8601((BinaryStringData) raw);
    }

    /** The SQL's {@code CASE}, branch for branch. */
    static TimestampData iso8601(BinaryStringData raw) {
        int length = raw.numChars();
        if (!COLON.equals(BinaryStringDataUtil.substringSQL(raw, length - 2, 1))) {
            return utc(raw);
        }
        BinaryStringData sign = BinaryStringDataUtil.substringSQL(raw, length - 5, 1);
        boolean plus = PLUS.equals(sign);
        if (!plus && !MINUS.equals(sign)) {
            return utc(raw);
        }
        Integer hours = tryInt(BinaryStringDataUtil.substringSQL(raw, length - 4, 2));
        Integer minutes = tryInt(BinaryStringDataUtil.substringSQL(raw, length - 1, 2));
        BinaryStringData local = BinaryStringDataUtil.substringSQL(raw, 1, length - 6);
        TimestampData time = local == null ? null : tryTimestamp(local.toString().replace("T", " "));
        if (hours == null || minutes == null || time == null) {
            return null;
        }
        int offset = hours * 60 + minutes;
        long shift = (plus ? -offset : offset) * 60_000L;
        return TimestampData.fromEpochMillis(time.getMillisecond() + shift, time.getNanoOfMillisecond());
    }

    private static TimestampData utc(BinaryStringData raw) {
        return tryTimestamp(raw.toString().replace("T", " ").replace("Z", ""));
    }

    private static TimestampData tryTimestamp(String text) {
        try {
            return BinaryStringDataUtil.toTimestamp(BinaryStringData.fromString(text), 3);
        } catch (RuntimeException e) {
            return null;
        }
    }

    private static Integer tryInt(BinaryStringData text) {
        if (text == null) {
            return null;
        }
        try {
            return BinaryStringDataUtil.toInt(text.trim());  // the cast rule trims first
        } catch (RuntimeException e) {
            return null;
        }
    }
}
