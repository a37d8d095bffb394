package dev.featureplatform.flink.lines;

import java.util.Collections;
import java.util.Set;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.impl.StreamFormatAdapter;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.connector.file.table.factories.BulkReaderFormatFactory;
import org.apache.flink.connector.file.table.format.BulkDecodingFormat;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

/**
 * The {@code fp-lines} file format: one row per line, whatever bytes the line holds.
 *
 * <p>Why: Flink 2.3's {@code raw} file reader counts its position from a restore instead of from the file start (a
 * second restore re-reads the input), and the {@code csv} reader fails the job on its delimiter or on bytes that are
 * not UTF-8. This reader runs through Flink's {@link StreamFormatAdapter}, which checkpoints "records read since the
 * file start", and never fails on content: a line is decoded leniently (invalid UTF-8 becomes U+FFFD) and a line
 * longer than {@code max-line-bytes} is kept as its first {@code max-line-bytes} bytes with the flag column set.
 *
 * <p>Kafka record values are read by {@link LinesRecordFormatFactory} (same identifier, same rules).
 *
 * <p>Physical columns, matched by type: {@code STRING} the line (without its {@code \n} or {@code \r\n}) and, optionally,
 * {@code BOOLEAN} whether the line was longer than the limit.
 */
public final class LinesFormatFactory implements BulkReaderFormatFactory {

    public static final String IDENTIFIER = "fp-lines";

    public static final ConfigOption<Integer> MAX_LINE_BYTES =
            ConfigOptions.key("max-line-bytes")
                    .intType()
                    .defaultValue(1 << 20)
                    .withDescription("Bytes kept of a line; a longer line is flagged too large.");

    @Override
    public BulkDecodingFormat<RowData> createDecodingFormat(
            DynamicTableFactory.Context context, ReadableConfig formatOptions) {
        FactoryUtil.validateFactoryOptions(this, formatOptions);
        final int maxLineBytes = formatOptions.get(MAX_LINE_BYTES);
        LineColumns.checkMaxLineBytes(maxLineBytes);
        return new BulkDecodingFormat<RowData>() {
            @Override
            public BulkFormat<RowData, FileSourceSplit> createRuntimeDecoder(
                    DynamicTableSource.Context sourceContext, DataType physicalDataType) {
                RowType rowType = (RowType) physicalDataType.getLogicalType();
                LineColumns columns = LineColumns.of(rowType);
                return new StreamFormatAdapter<>(
                        new LinesStreamFormat(
                                maxLineBytes,
                                columns.fieldCount,
                                columns.lineField,
                                columns.tooLargeField,
                                sourceContext.createTypeInformation(physicalDataType)));
            }

            @Override
            public ChangelogMode getChangelogMode() {
                return ChangelogMode.insertOnly();
            }
        };
    }

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Collections.emptySet();
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Collections.singleton(MAX_LINE_BYTES);
    }
}
