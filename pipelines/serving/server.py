"""Start the HTTP server: Granian with N worker processes sharing one listening socket, each running the RSGI app on
its own uvloop event loop, pinned to its own CPU.

Granian's main process binds the socket and supervises the workers; it handles SIGTERM and SIGINT by closing the
listener, letting workers finish the requests they hold and calling each app's ``__rsgi_del__`` (store connections
closed), then exits 0. What this module adds: the run folder (CPU slots, the Prometheus multiprocess files; removed
on exit), the settings handed to the workers through ``FP_`` variables, and a catalog check before any worker
starts, so a broken contract or store setting fails the command with its message instead of N worker tracebacks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.runtime.stage import allowed_cpus
from pipelines.serving.catalog import load_catalog


@dataclass(frozen=True)
class ServerPlan:
    """What :func:`serve_forever` will start: the address, the workers and the views it serves."""

    host: str
    port: int
    workers: int
    views: tuple[str, ...]
    store: str


def plan_server(settings: Settings) -> ServerPlan:
    """Check that the catalog loads and say what would be started (raises the contract or store error)."""
    catalog = load_catalog(settings)
    workers = settings.serve.workers or len(allowed_cpus())
    return ServerPlan(settings.serve.host, settings.serve.port, workers, tuple(sorted(catalog.views)),
                      settings.online_store)


def serve_forever(settings: Settings, plan: ServerPlan) -> None:
    """Run the server until SIGTERM or SIGINT. Blocks; returns after every worker has stopped."""
    from granian import Granian as Server
    from granian.constants import HTTPModes, Interfaces, Loops

    run_dir = Path(tempfile.mkdtemp(prefix="fp-serve-"))
    metrics_dir = run_dir / "metrics"
    metrics_dir.mkdir()
    overrides = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "FP_SERVE__RUN_DIR": str(run_dir),
                 "FP_SERVE__WORKERS": str(plan.workers)}
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        server = Server(
            "pipelines.serving.app:app", address=plan.host, port=plan.port, interface=Interfaces.RSGI,
            workers=plan.workers, loop=Loops.uvloop, http=HTTPModes.http1, websockets=False, backlog=2048,
            # Granian queues requests above its backpressure; ours sheds at max_in_flight, so Granian's is higher.
            backpressure=max(512, settings.serve.max_in_flight * 8), log_access=False, workers_kill_timeout=10,
            respawn_failed_workers=True)
        server.serve()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(run_dir, ignore_errors=True)
