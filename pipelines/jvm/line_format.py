"""The ``fp-lines`` file format (``tools/formats/fp-lines``) as a jar, and the line reader a file source uses.

Why a format of our own: a file source must turn every line into one row whatever bytes it holds, and keep an exact
position across restores. Flink 2.3 offers neither: its ``raw`` file reader counts its position from the last restore
(a second restore re-reads the input, docs/exactly-once.md) and its ``csv`` reader fails the job on a line holding its
delimiter or bytes that are not UTF-8. ``fp-lines`` reads lines through Flink's own ``StreamFormatAdapter`` (exact
positions), decodes leniently and flags a line longer than a limit instead of holding it (docs/sources.md). How it
builds on a machine with only a Java runtime, and how it is cached: :mod:`.java_build`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.config import PROJECT_ROOT
from pipelines.jvm.java_build import JavaBuildError, JavaSources, build_jar

log = logging.getLogger(__name__)

_ROOT = PROJECT_ROOT / "tools" / "formats" / "fp-lines" / "src" / "main"
#: The format's sources: Java under ``src/main/java``, the factory's service file under ``src/main/resources``.
SOURCES = JavaSources("fp-lines", _ROOT / "java", _ROOT / "resources")
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".tools" / "formats"


@dataclass(frozen=True)
class LineReader:
    """How a file source turns lines into rows: the ``fp-lines`` format (with its jar) or the ``csv`` fallback."""

    format: Literal["fp-lines", "csv"]
    jar: Path | None = None


@functools.cache
def line_reader() -> LineReader:
    """``fp-lines`` with its jar when it can be built here, else ``csv`` (logged: a line holding U+0001 or bytes
    that are not UTF-8 then fails the job instead of becoming a dead letter). Decided once per process, so the SQL
    (:func:`pipelines.codegen.flink_sql.build_job_sql`'s ``line_format``) and the environment's jars agree."""
    try:
        return LineReader("fp-lines", line_format_jar())
    except JavaBuildError as error:
        log.warning("file sources fall back to the csv line reader: %s", error)
        return LineReader("csv")


def line_format_jar(*, cache_dir: Path = DEFAULT_CACHE_DIR, timeout_s: float = 600.0) -> Path:
    """The built ``fp-lines`` jar: from the cache, or compiled now."""
    return build_jar(SOURCES, cache_dir=cache_dir, timeout_s=timeout_s)
