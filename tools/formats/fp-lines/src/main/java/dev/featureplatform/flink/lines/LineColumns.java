package dev.featureplatform.flink.lines;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

/**
 * Where the line and the too-large flag go in a row of the {@code fp-lines} formats (files and Kafka record values
 * alike): the {@code STRING} column is the line, the optional {@code BOOLEAN} column says whether it was longer than
 * {@code max-line-bytes}.
 */
final class LineColumns implements java.io.Serializable {

    private static final long serialVersionUID = 1L;

    final int fieldCount;
    final int lineField;
    final int tooLargeField;

    private LineColumns(int fieldCount, int lineField, int tooLargeField) {
        this.fieldCount = fieldCount;
        this.lineField = lineField;
        this.tooLargeField = tooLargeField;
    }

    static LineColumns of(RowType rowType) {
        int lineField = -1;
        int tooLargeField = -1;
        for (int i = 0; i < rowType.getFieldCount(); i++) {
            LogicalTypeRoot root = rowType.getTypeAt(i).getTypeRoot();
            if (root == LogicalTypeRoot.VARCHAR && lineField < 0) {
                lineField = i;
            } else if (root == LogicalTypeRoot.BOOLEAN && tooLargeField < 0) {
                tooLargeField = i;
            } else {
                throw new ValidationException(
                        "fp-lines reads one STRING column (the line) and optionally one BOOLEAN column "
                                + "(longer than max-line-bytes), got " + rowType);
            }
        }
        return new LineColumns(rowType.getFieldCount(), lineField, tooLargeField);
    }

    static void checkMaxLineBytes(int maxLineBytes) {
        if (maxLineBytes < 1) {
            throw new IllegalArgumentException("max-line-bytes must be at least 1, got " + maxLineBytes);
        }
    }
}
