package featureplatform.udf;

import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.runtime.functions.SqlJsonUtils;

import org.apache.flink.shaded.com.jayway.jsonpath.spi.json.JsonProvider;

import java.lang.reflect.Field;
import java.util.Collection;
import java.util.Map;

/**
 * The one parse of a line, shared by every call on the same line in the same task thread.
 *
 * <p>Why: each {@code JSON_VALUE(line, '$.c')} of Flink 2.3 parses the whole line again (about eight parses per line
 * in the generated classification). The functions of this package ask this cache instead: the first call on a line
 * parses it, the next calls on an equal line (compared byte for byte) reuse the parsed value. Operators chained in one
 * task run in one thread, so a thread-local single entry is enough and needs no locking.
 *
 * <p>Exactness: the line is parsed by the very JSON provider instance Flink's own JSON functions use (read from
 * {@link SqlJsonUtils} once), from the same decoded Java string, so the parsed value, its number types and its
 * failures are those of {@code JSON_VALUE} and {@code IS JSON OBJECT}.
 */
final class ParsedLine {

    /** Marks a line that is not valid JSON (any parse failure, as Flink's functions see it). */
    static final Object INVALID = new Object();

    private static final JsonProvider PROVIDER = flinkJsonProvider();
    private static final ThreadLocal<ParsedLine> LAST = ThreadLocal.withInitial(ParsedLine::new);

    private BinaryStringData line;
    private Object parsed;

    private ParsedLine() {}

    /** The parsed value of {@code line} (a Map, a List, a scalar, null for JSON null) or {@link #INVALID}. */
    static Object of(StringData line) {
        ParsedLine last = LAST.get();
        BinaryStringData binary = (BinaryStringData) line;
        if (last.line == null || !last.line.equals(binary)) {
            last.parsed = parse(binary.toString());
            last.line = binary.copy();
        }
        return last.parsed;
    }

    /** What {@code JSON_VALUE(line, '$.key')} returns: the key's scalar value as text, else null. */
    static StringData value(StringData line, String key) {
        Object parsed = of(line);
        if (!(parsed instanceof Map)) {
            return null;
        }
        Object value = ((Map<?, ?>) parsed).get(key);
        if (value == null || value instanceof Map || value instanceof Collection) {
            return null;
        }
        return StringData.fromString(String.valueOf(value));
    }

    private static Object parse(String text) {
        try {
            return PROVIDER.parse(text);
        } catch (Exception e) {
            return INVALID;
        }
    }

    private static JsonProvider flinkJsonProvider() {
        try {
            Field field = SqlJsonUtils.class.getDeclaredField("JSON_PATH_JSON_PROVIDER");
            field.setAccessible(true);
            return (JsonProvider) field.get(null);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("Flink's SqlJsonUtils has no JSON provider field: the parse-once "
                    + "functions were built for another Flink version", e);
        }
    }
}
