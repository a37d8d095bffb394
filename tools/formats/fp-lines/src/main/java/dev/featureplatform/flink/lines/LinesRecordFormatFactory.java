package dev.featureplatform.flink.lines;

import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Set;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

/**
 * The {@code fp-lines} format for message connectors (Kafka): one record value is one line, read exactly like a file
 * line of {@link LinesFormatFactory} (same identifier, as Flink's {@code csv} has a file and a record factory).
 *
 * <p>Why: Flink's {@code raw} format hands a record's bytes to SQL undecoded, so bytes that are not UTF-8 never
 * appear as U+FFFD to the platform's {@code invalid_utf8} rule, and its length is in characters. Here the value is
 * decoded leniently (invalid UTF-8 becomes U+FFFD), and a value longer than {@code max-line-bytes} bytes keeps its
 * first {@code max-line-bytes} bytes with the flag column set. A null value (a tombstone) is a NULL line.
 */
public final class LinesRecordFormatFactory implements DeserializationFormatFactory {

    @Override
    public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        FactoryUtil.validateFactoryOptions(this, formatOptions);
        final int maxLineBytes = formatOptions.get(LinesFormatFactory.MAX_LINE_BYTES);
        LineColumns.checkMaxLineBytes(maxLineBytes);
        return new DecodingFormat<DeserializationSchema<RowData>>() {
            @Override
            public DeserializationSchema<RowData> createRuntimeDecoder(
                    DynamicTableSource.Context sourceContext, DataType physicalDataType) {
                return new RecordLines(
                        maxLineBytes,
                        LineColumns.of((RowType) physicalDataType.getLogicalType()),
                        sourceContext.createTypeInformation(physicalDataType));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public String factoryIdentifier() {
        return LinesFormatFactory.IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Collections.emptySet();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Collections.singleton(LinesFormatFactory.MAX_LINE_BYTES);
    }

    /** One record value → one row: the line (decoded with replacement, at most maxLineBytes) and the flag. */
    static final class RecordLines implements DeserializationSchema<RowData> {

        private static final long serialVersionUID = 1L;

        private final int maxLineBytes;
        private final LineColumns columns;
        private final TypeInformation<RowData> producedType;

        RecordLines(int maxLineBytes, LineColumns columns, TypeInformation<RowData> producedType) {
            this.maxLineBytes = maxLineBytes;
            this.columns = columns;
            this.producedType = producedType;
        }

        @Override
        public RowData deserialize(byte[] message) {
            GenericRowData row = new GenericRowData(columns.fieldCount);
            boolean tooLarge = message != null && message.length > maxLineBytes;
            if (columns.lineField >= 0 && message != null) {
                int kept = Math.min(message.length, maxLineBytes);
                row.setField(
                        columns.lineField,
                        StringData.fromString(new String(message, 0, kept, StandardCharsets.UTF_8)));
            }
            if (columns.tooLargeField >= 0) {
                row.setField(columns.tooLargeField, tooLarge);
            }
            return row;
        }

        @Override
        public boolean isEndOfStream(RowData nextElement) {
            return false;
        }

        @Override
        public TypeInformation<RowData> getProducedType() {
            return producedType;
        }
    }
}
