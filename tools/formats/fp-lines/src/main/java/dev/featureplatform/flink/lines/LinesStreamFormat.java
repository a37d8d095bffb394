package dev.featureplatform.flink.lines;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.connector.file.src.reader.StreamFormat;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;

/**
 * Reads a file as lines of bytes split on {@code \n} (a trailing {@code \r} is dropped, a last line without newline
 * counts), never holding more than {@code maxLineBytes} bytes of one line. Not splittable: one split per file, so
 * the adapter's checkpointed position (records read since the file start) is exact.
 */
final class LinesStreamFormat extends SimpleStreamFormat<RowData> {

    private static final long serialVersionUID = 1L;
    private static final int BUFFER_BYTES = 1 << 16;

    private final int maxLineBytes;
    private final int fieldCount;
    private final int lineField;
    private final int tooLargeField;
    private final TypeInformation<RowData> producedType;

    LinesStreamFormat(
            int maxLineBytes,
            int fieldCount,
            int lineField,
            int tooLargeField,
            TypeInformation<RowData> producedType) {
        this.maxLineBytes = maxLineBytes;
        this.fieldCount = fieldCount;
        this.lineField = lineField;
        this.tooLargeField = tooLargeField;
        this.producedType = producedType;
    }

    @Override
    public StreamFormat.Reader<RowData> createReader(Configuration config, FSDataInputStream stream) {
        return new LineReader(stream, maxLineBytes, fieldCount, lineField, tooLargeField);
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return producedType;
    }

    private static final class LineReader implements StreamFormat.Reader<RowData> {

        private final InputStream in;
        private final int maxLineBytes;
        private final int fieldCount;
        private final int lineField;
        private final int tooLargeField;
        private final byte[] buffer = new byte[BUFFER_BYTES];
        private int position;
        private int limit;
        private byte[] line = new byte[256];

        LineReader(InputStream in, int maxLineBytes, int fieldCount, int lineField, int tooLargeField) {
            this.in = in;
            this.maxLineBytes = maxLineBytes;
            this.fieldCount = fieldCount;
            this.lineField = lineField;
            this.tooLargeField = tooLargeField;
        }

        @Override
        public RowData read() throws IOException {
            int kept = 0;
            long total = 0;
            boolean sawAnything = false;
            boolean newline = false;
            while (true) {
                if (position == limit) {
                    limit = in.read(buffer, 0, buffer.length);
                    position = 0;
                    if (limit <= 0) {
                        limit = 0;
                        break;
                    }
                }
                sawAnything = true;
                int start = position;
                while (position < limit && buffer[position] != '\n') {
                    position++;
                }
                int length = position - start;
                total += length;
                int room = maxLineBytes - kept;
                if (room > 0) {
                    int take = Math.min(room, length);
                    ensureCapacity(kept + take);
                    System.arraycopy(buffer, start, line, kept, take);
                    kept += take;
                }
                if (position < limit) {
                    position++; // the newline
                    newline = true;
                    break;
                }
            }
            if (!sawAnything) {
                return null;
            }
            if (newline && total <= maxLineBytes && kept > 0 && line[kept - 1] == '\r') {
                kept--;
                total--;
            }
            boolean tooLarge = total > maxLineBytes;
            GenericRowData row = new GenericRowData(fieldCount);
            if (lineField >= 0) {
                row.setField(lineField, StringData.fromString(new String(line, 0, kept, StandardCharsets.UTF_8)));
            }
            if (tooLargeField >= 0) {
                row.setField(tooLargeField, tooLarge);
            }
            return row;
        }

        private void ensureCapacity(int needed) {
            if (needed > line.length) {
                byte[] larger = new byte[Math.max(needed, Math.min(maxLineBytes, line.length * 2))];
                System.arraycopy(line, 0, larger, 0, line.length);
                line = larger;
            }
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
