package featureplatform.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code FP_JSON_VALUE(line, 'key')}: what {@code JSON_VALUE(line, '$.key')} returns (the top-level key's scalar value
 * as text; NULL when the line is not a JSON object, the key is absent, null, an object or an array), parsing each
 * line once however many keys are read from it ({@link ParsedLine}).
 */
public final class JsonFieldValue extends ScalarFunction {

    public @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData eval(
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line, String key) {
        return line == null ? null : ParsedLine.value(line, key);
    }
}
