"""Counting the lines of a local JSON-lines file or folder, exactly as Flink's file source will read them.

A bounded run proves completeness (accepted events + dead letters == input lines), so it must know its input before
the job starts. Hidden files (any path component starting with ``.`` or ``_``) are skipped, as Flink skips them; a
last line without a newline still counts.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.layout import finished_files


def count_input_lines(path: Path) -> int:
    """Lines Flink will read from a file or folder (hidden ``.``/``_`` files skipped, as Flink does)."""
    files = [path] if path.is_file() else finished_files(path)
    total = 0
    for file in files:
        with file.open("rb") as handle:
            last = b""
            while chunk := handle.read(1 << 22):
                total += chunk.count(b"\n")
                last = chunk[-1:]
            total += 1 if last not in (b"", b"\n") else 0
    return total
