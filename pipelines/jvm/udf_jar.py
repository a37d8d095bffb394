"""The parse-once Java functions (``tools/udf/parse-once``) as a jar, built once per source version.

Why Java at all: Flink 2.3's ``JSON_VALUE`` parses the whole line on every call, and the classification calls it
about eight times per line; the functions in ``tools/udf/parse-once`` parse a line once and answer every later call
on it from that parse (see ``ParsedLine.java``), with the exact semantics of ``JSON_VALUE`` and ``IS JSON OBJECT``.
How it builds on a machine with only a Java runtime, and how it is cached: :mod:`.java_build`. A failed build raises
:class:`~pipelines.jvm.java_build.JavaBuildError`; the caller decides whether to fall back to the plain SQL path
(:mod:`pipelines.flink.parse_once`).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.config import PROJECT_ROOT
from pipelines.jvm.java_build import JavaSources, build_jar

SOURCES = JavaSources("parse-once", PROJECT_ROOT / "tools" / "udf" / "parse-once" / "src")
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".tools" / "udf"


def parse_once_jar(*, cache_dir: Path = DEFAULT_CACHE_DIR, timeout_s: float = 600.0) -> Path:
    """The built parse-once jar: from the cache, or compiled now (first use may fetch ecj: ~20-40 s)."""
    return build_jar(SOURCES, cache_dir=cache_dir, timeout_s=timeout_s)
