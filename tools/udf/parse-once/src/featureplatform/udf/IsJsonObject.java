package featureplatform.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.ScalarFunction;

import java.util.Map;

/**
 * {@code FP_IS_JSON_OBJECT(line)}: what {@code line IS JSON OBJECT} returns (TRUE for a JSON object, FALSE for
 * anything else, NULL for NULL), sharing the one parse of the line with {@link JsonFieldValue}.
 */
public final class IsJsonObject extends ScalarFunction {

    public Boolean eval(@DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData line) {
        return line == null ? null : ParsedLine.of(line) instanceof Map;
    }
}
