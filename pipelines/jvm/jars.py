"""Jars from Maven Central for the optional paths: the Flink Kafka SQL connector and a Kafka broker for tests.

Why: PyFlink ships the file connector, CSV and JSON only; Kafka needs ``flink-sql-connector-kafka``, and the tests need
a real Kafka broker, which is Java too. Both come from Maven Central through the project's own Maven files
(``tools/jars/<name>/pom.xml``), fetched by ``mvn dependency:copy-dependencies`` into ``.tools/jars/<name>/`` once and
reused afterwards. The embedded default (generator or files) never calls this, so it needs neither Maven nor network.

The cache is keyed by the pom's content: editing a version in the pom fetches again. A fetch writes into a hidden
temporary folder and renames it into place under a file lock, so parallel test processes never see half a folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipelines.config import PROJECT_ROOT
from pipelines.errors import PlatformError, Terminal

#: The Maven files, one folder per jar set.
POM_DIR = PROJECT_ROOT / "tools" / "jars"
#: Where fetched jars are kept (gitignored with the rest of ``.tools/``).
DEFAULT_CACHE_DIR = PROJECT_ROOT / ".tools" / "jars"
FLINK_KAFKA = "flink-kafka"
#: The Eclipse Java compiler, which builds the project's Java on a runtime without javac (:mod:`.java_build`).
ECJ = "ecj"
KAFKA_BROKER = "kafka-broker"
_STAMP = ".pom-sha256"


class JarFetchError(PlatformError, Terminal):
    """Maven could not fetch a jar set; the message carries Maven's last lines and what to check."""


def jar_sets() -> tuple[str, ...]:
    """Names of the jar sets this project knows (folders of ``tools/jars`` holding a pom)."""
    return tuple(sorted(p.parent.name for p in POM_DIR.glob("*/pom.xml")))


def fetch_jars(name: str, *, cache_dir: Path = DEFAULT_CACHE_DIR, timeout_s: float = 600.0) -> tuple[Path, ...]:
    """The jars of set ``name`` (sorted paths), fetched with ``mvn`` on first use and cached afterwards.

    Raises :class:`JarFetchError` when the set is unknown, Maven is missing, or the fetch fails or times out.
    """
    pom = POM_DIR / name / "pom.xml"
    if not pom.is_file():
        raise JarFetchError(f"unknown jar set {name!r}: no {pom} (known: {', '.join(jar_sets())})")
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    target = cache_dir / name
    cached = _cached(target, digest)
    if cached:
        return cached
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same set: wait, then reuse
        cached = _cached(target, digest)
        if cached:
            return cached
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
        try:
            _copy_dependencies(pom, staging, timeout_s)
            (staging / _STAMP).write_text(digest)
            if target.exists():
                shutil.rmtree(target)
            staging.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    cached = _cached(target, digest)
    if not cached:
        raise JarFetchError(f"mvn copied no jar for {name!r} into {target}")
    return cached


def jar_urls(jars: tuple[Path, ...] | list[Path]) -> list[str]:
    """``file://`` URLs, the form Flink's ``pipeline.jars`` takes."""
    return [jar.resolve().as_uri() for jar in jars]


def _cached(folder: Path, digest: str) -> tuple[Path, ...]:
    stamp = folder / _STAMP
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        return ()
    return tuple(sorted(folder.glob("*.jar")))


def _copy_dependencies(pom: Path, output: Path, timeout_s: float) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JarFetchError("Maven (`mvn`) is not on PATH; install it (Debian: `apt-get install maven`) to fetch "
                            f"the jars of {pom.parent.name!r}")
    command = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={output}",
               "-DincludeScope=runtime"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise JarFetchError(f"mvn did not fetch {pom.parent.name!r} within {timeout_s:.0f}s "
                            "(is Maven Central reachable?)") from error
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise JarFetchError(f"mvn failed to fetch {pom.parent.name!r} (exit {done.returncode}); check the network "
                            f"and {pom}:\n{tail}")
