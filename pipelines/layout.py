"""What Flink hands to Delta, written once: column names, the CSV null literal, the dead-letter and hidden columns.

The generated Flink job (:mod:`pipelines.codegen.flink_sql`) writes CSV part files in this layout; the commit stage
(:mod:`pipelines.delta`) reads them back in the same layout; ``feature-check`` refuses a feature named like one of
the reserved columns. Keeping the names here, in the base layer and free of heavy imports (no pyarrow), means the
writer and the reader cannot drift apart and the lint path stays light.
"""

from __future__ import annotations

from pathlib import Path

#: Columns the platform adds to every feature table (the window the values describe, and when the row was committed).
WINDOW_START = "window_start"
WINDOW_END = "window_end"
INGESTED_AT = "ingested_at"
RESERVED_COLUMNS = frozenset({WINDOW_START, WINDOW_END, INGESTED_AT})

#: Written by Flink's CSV sink for NULL; a real value ``\\N`` is quoted by the writer, so the two never mix.
CSV_NULL_LITERAL = "\\N"

#: Columns of the dead-letter part files, in order, with their Flink SQL types.
DEAD_LETTER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reason", "STRING"),
    ("source_name", "STRING"),
    ("source_file", "STRING"),
    ("processed_at", "TIMESTAMP(3)"),
    ("line", "STRING"),
)

#: Characters of the raw line a dead letter keeps (``line``; ``payload`` in Delta): a longer line is cut there.
DEAD_LETTER_LINE_CHARS = 4096

#: Good events in a window row's last step: the commit stage sums it to prove accepted + dead letters == input.
ACCEPTED_IN_STEP = "_accepted_in_step"
#: Columns the feature part files carry after the Delta columns; read by the commit stage, never written to Delta.
HIDDEN_FEATURE_COLUMNS: tuple[tuple[str, str], ...] = ((ACCEPTED_IN_STEP, "BIGINT"),)


def is_hidden(relative: Path) -> bool:
    """Flink's rule for files that are not (yet) data: any path component starting with ``.`` or ``_``
    (in-progress part files, batch staging folders, ``_SUCCESS`` markers). Its file source skips them too."""
    return any(part.startswith((".", "_")) for part in relative.parts)


def finished_files(folder: Path) -> list[Path]:
    """Finished files under ``folder`` (sorted; nothing hidden by :func:`is_hidden`), empty when it does not exist."""
    if not folder.exists():
        return []
    return [path for path in sorted(folder.rglob("*")) if path.is_file() and not is_hidden(path.relative_to(folder))]
