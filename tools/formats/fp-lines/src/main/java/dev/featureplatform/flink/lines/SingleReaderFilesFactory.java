package dev.featureplatform.flink.lines;

import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.connector.file.table.FileSystemTableFactory;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.catalog.ResolvedCatalogTable;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.ProviderContext;
import org.apache.flink.table.connector.source.DataStreamScanProvider;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.SourceProvider;
import org.apache.flink.table.connector.source.abilities.SupportsReadingMetadata;
import org.apache.flink.table.connector.source.abilities.SupportsWatermarkPushDown;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;

/**
 * The connector {@code fp-files}: Flink's {@code filesystem} source read by ONE task that also assigns the watermark,
 * so the planner puts a rebalance behind it and everything after it (the classification, the local window aggregate)
 * runs at the job's parallelism.
 *
 * <p>Why: a file is one split, so with the plain {@code filesystem} connector the whole chain (read, rowtime,
 * watermark, classification, window pre-aggregation) ran in one thread and the job used about one core. Here the
 * reader's task reads the lines and computes the watermark (the planner pushes the table's {@code WATERMARK} into
 * the source, {@link SupportsWatermarkPushDown}), and the rebalance forwards each watermark to every downstream task
 * in its place among the rows, so every classifier sees, before each row, exactly the watermark one reader would
 * have shown it: lateness stays what it is at parallelism 1 (for bounded reads; an unbounded read needs an idle
 * timeout, which this connector is not used with).
 *
 * <p>Options: those of {@code filesystem} plus {@code scan.parallelism} (the reader's parallelism, default 1).
 */
public final class SingleReaderFilesFactory implements DynamicTableSourceFactory {

    public static final String IDENTIFIER = "fp-files";

    public static final ConfigOption<Integer> SCAN_PARALLELISM =
            ConfigOptions.key("scan.parallelism").intType().defaultValue(1)
                    .withDescription("Parallelism of the reader (and of the watermark it assigns).");

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
        return Collections.emptySet(); // the filesystem factory validates every other option itself
    }

    @Override
    public DynamicTableSource createDynamicTableSource(DynamicTableFactory.Context context) {
        ResolvedCatalogTable table = context.getCatalogTable();
        Map<String, String> options = new HashMap<>(table.getOptions());
        String parallelism = options.remove(SCAN_PARALLELISM.key());
        int readers = parallelism == null ? SCAN_PARALLELISM.defaultValue() : Integer.parseInt(parallelism);
        if (readers < 1) {
            throw new IllegalArgumentException("scan.parallelism must be at least 1, got " + readers);
        }
        options.put(FactoryUtil.CONNECTOR.key(), FileSystemTableFactory.IDENTIFIER);
        DynamicTableFactory.Context filesystem = new FactoryUtil.DefaultDynamicTableContext(
                context.getObjectIdentifier(), table.copy(options), context.getEnrichmentOptions(),
                context.getConfiguration(), context.getClassLoader(), context.isTemporary());
        ScanTableSource files = (ScanTableSource) new FileSystemTableFactory().createDynamicTableSource(filesystem);
        return new SingleReaderSource(files, readers, null);
    }

    /** The filesystem source, its watermark and its parallelism. */
    static final class SingleReaderSource
            implements ScanTableSource, SupportsReadingMetadata, SupportsWatermarkPushDown {

        private final ScanTableSource files;
        private final int readers;
        private WatermarkStrategy<RowData> watermarks;

        SingleReaderSource(ScanTableSource files, int readers, WatermarkStrategy<RowData> watermarks) {
            this.files = files;
            this.readers = readers;
            this.watermarks = watermarks;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return files.getChangelogMode();
        }

        @Override
        public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
            ScanRuntimeProvider provider = files.getScanRuntimeProvider(context);
            if (!(provider instanceof SourceProvider)) {
                throw new IllegalStateException("fp-files expects the filesystem connector to provide a Source, got "
                        + provider.getClass().getName());
            }
            Source<RowData, ?, ?> source = ((SourceProvider) provider).createSource();
            WatermarkStrategy<RowData> strategy = watermarks == null ? WatermarkStrategy.noWatermarks() : watermarks;
            boolean bounded = ((SourceProvider) provider).isBounded();
            return new DataStreamScanProvider() {
                @Override
                public DataStream<RowData> produceDataStream(
                        ProviderContext providerContext, StreamExecutionEnvironment env) {
                    return env.fromSource(source, strategy, "fp-files").setParallelism(readers);
                }

                @Override
                public boolean isBounded() {
                    return bounded;
                }

                @Override
                public Optional<Integer> getParallelism() {
                    return Optional.of(readers);
                }
            };
        }

        @Override
        public void applyWatermark(WatermarkStrategy<RowData> watermarkStrategy) {
            this.watermarks = watermarkStrategy;
        }

        @Override
        public Map<String, DataType> listReadableMetadata() {
            return ((SupportsReadingMetadata) files).listReadableMetadata();
        }

        @Override
        public void applyReadableMetadata(List<String> metadataKeys, DataType producedDataType) {
            ((SupportsReadingMetadata) files).applyReadableMetadata(metadataKeys, producedDataType);
        }

        @Override
        public boolean supportsMetadataProjection() {
            return ((SupportsReadingMetadata) files).supportsMetadataProjection();
        }

        @Override
        public DynamicTableSource copy() {
            return new SingleReaderSource((ScanTableSource) files.copy(), readers, watermarks);
        }

        @Override
        public String asSummaryString() {
            return "fp-files(" + files.asSummaryString() + ", readers=" + readers + ")";
        }
    }
}
