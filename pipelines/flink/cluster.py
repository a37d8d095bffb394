"""A remote Flink cluster as a job target: the keys that send a job there, and its REST API (status, errors, cancel).

Why the Python client submits instead of ``flink run -py``: the job is the same generated SQL either way, and a
TableEnvironment configured with ``execution.target: remote`` plus ``rest.address``/``rest.port`` compiles the job
graph in the client and submits it to the JobManager over REST, uploading the jars of ``pipeline.jars`` (connectors)
with it. The run then keeps doing what it does on the mini-cluster: poll the job and commit finished part files.
Nothing Python runs on the TaskManagers (the jobs are pure SQL), so the cluster needs no Python environment for them.

On a cluster a job must survive the loss of a TaskManager, so the restart strategy is a bounded **exponential delay**
(``restart_attempts`` restarts, the first after ``restart_delay_ms``, each wait doubling up to
``restart_max_delay_ms``): each restart resumes from the newest completed checkpoint, and a job that keeps failing
still fails instead of looping forever (the local mini-cluster keeps ``none``: there a failure is a bug to see at
once, and there is no machine to lose). Why not a fixed delay: until the JobManager has declared the lost TaskManager
dead and a new one has offered its slots, every restart fails at once; 10 restarts 1 s apart were used up that way
before a replacement registered (measured, on a loaded machine), while 1, 2, 4, … 60 s give the cluster about five
minutes.

The cluster outlives the client, so status, failure causes and cancellation come from its REST API
(:class:`ClusterRest`) rather than from the client's JVM: a client restarted after a crash can still see, and cancel,
the job its predecessor left running.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipelines.errors import PlatformError, Terminal, Transient

TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})


class ClusterUnreachableError(PlatformError, Transient):
    """The cluster's REST API did not answer (down, wrong address, or a network problem)."""


class UnknownJobError(PlatformError, Terminal):
    """The cluster does not know the job (it was never submitted there, or the cluster restarted and forgot it)."""


@dataclass(frozen=True)
class ClusterTarget:
    """Where and how a job runs on a remote cluster (from :class:`pipelines.config.Settings`)."""

    rest_url: str
    restart_attempts: int = 10
    restart_delay_ms: int = 1000
    restart_max_delay_ms: int = 60_000

    @property
    def host(self) -> str:
        return urlsplit(self.rest_url).hostname or "localhost"

    @property
    def port(self) -> int:
        return urlsplit(self.rest_url).port or 8081


def remote_configuration(target: ClusterTarget) -> dict[str, str]:
    """The keys that submit the job to ``target`` and let it recover from a lost TaskManager."""
    return {
        "execution.target": "remote",
        "rest.address": target.host,
        "rest.port": str(target.port),
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": f"{target.restart_delay_ms}ms",
        "restart-strategy.exponential-delay.max-backoff": f"{target.restart_max_delay_ms}ms",
        "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": str(target.restart_attempts),
    }


class ClusterRest:
    """The parts of the JobManager's REST API a run needs; every request is bounded by ``timeout`` seconds."""

    def __init__(self, rest_url: str, timeout: float = 5.0) -> None:
        self.base = rest_url.rstrip("/")
        self.timeout = timeout

    def _request(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            if error.code == 404 and path.startswith("/jobs/"):
                raise UnknownJobError(f"the Flink cluster at {self.base} knows no job at {path}") from error
            raise ClusterUnreachableError(f"Flink cluster at {self.base} answered {method} {path} with HTTP "
                                          f"{error.code}") from error
        except OSError as error:
            raise ClusterUnreachableError(f"Flink cluster at {self.base} did not answer {method} {path}: {error}",
                                          hint="check that the JobManager runs and FP_FLINK_REST_ADDRESS / "
                                               "--cluster point at its REST port") from error
        return json.loads(body) if body else None

    def overview(self) -> dict[str, Any]:
        """``/overview``: TaskManagers, slots, jobs by state, Flink version."""
        return dict(self._request("/overview"))

    def job(self, job_id: str) -> dict[str, Any]:
        """``/jobs/<id>``: state, vertices, timestamps."""
        return dict(self._request(f"/jobs/{job_id}"))

    def job_state(self, job_id: str) -> str:
        """RUNNING, RESTARTING, FINISHED, FAILED, CANCELED, …"""
        return str(self.job(job_id)["state"])

    def failure_cause(self, job_id: str) -> str:
        """The root exception of a failed job (Flink's first lines), or a note that the cluster gave none."""
        try:
            history = self._request(f"/jobs/{job_id}/exceptions")
        except (ClusterUnreachableError, ValueError):
            return "the cluster gave no failure cause"
        root = (history.get("exceptionHistory") or {}).get("entries") or []
        text = root[0].get("stacktrace") if root else history.get("root-exception")
        return str(text) if text else "the cluster gave no failure cause"

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        """``/jobs/<id>/checkpoints``: counts, the latest completed and the restored checkpoint."""
        return dict(self._request(f"/jobs/{job_id}/checkpoints"))

    def cancel(self, job_id: str, wait_s: float = 30.0) -> str:
        """Cancel the job unless it already ended; wait up to ``wait_s`` for a terminal state and return it."""
        state = self.job_state(job_id)
        if state not in TERMINAL_STATES:
            self._request(f"/jobs/{job_id}?mode=cancel", method="PATCH")
        deadline = time.monotonic() + wait_s
        while state not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.2)
            state = self.job_state(job_id)
        return state
