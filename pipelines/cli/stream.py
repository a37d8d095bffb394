"""``feature-platform stream``: the continuous job until Ctrl-C or SIGTERM, then a clean stop and a summary.

The work is :func:`pipelines.jobs.stream.run_stream`; this module turns options into :class:`StreamOptions`, starts
the Prometheus endpoint (``--metrics-port``), turns the first SIGINT/SIGTERM into the job's stop flag (a second one
aborts at once: the next start then resumes from the latest checkpoint) and renders the summary (``--json`` on
stdout). Exit code 0 after a clean stop, 1 when the job failed.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated, Any, Literal

import typer

from pipelines.cli.console import ClusterOption, cluster_settings, console, progress_printer


def stream_command(
    contract: Annotated[str | None, typer.Option(help="Run only this contract (name or table name).")] = None,
    source: Annotated[Literal["auto", "kafka", "files"] | None, typer.Option(
        help="Read Kafka topics or the watched events folder; default: the `stream_source` setting (auto: Kafka "
             "when FP_KAFKA_BOOTSTRAP_SERVERS is set).")] = None,
    metrics_port: Annotated[int | None, typer.Option(min=0, max=65535,
                                                     help="Serve Prometheus metrics on this port (/metrics).")] = None,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics endpoint binds to.")] = "127.0.0.1",
    report_every: Annotated[float, typer.Option(min=0.5, help="Seconds between two progress reports.")] = 5.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON on stdout.")] = False,
    cluster: ClusterOption = None,
) -> None:
    """Run every contract continuously over Kafka or the watched events folder, committing to Delta and pushing
    fresh values online, until Ctrl-C or SIGTERM (then stop with a savepoint; the next `stream` resumes there)."""
    from pipelines.jobs.stream import StreamOptions, run_stream
    from pipelines.jobs.stream_metrics import serve_metrics

    # PyFlink's own calls of its deprecated APIs and Beam's pyparsing use warn on every start: noise in a long-running
    # command's log that the user cannot act on.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(pyflink|httplib2)(\.|$)")
    options = StreamOptions(contract=contract, source=source, report_every_s=report_every)
    stop = threading.Event()
    server: Any = serve_metrics(metrics_port, metrics_host) if metrics_port is not None else None
    if server is not None:
        console.print(f"metrics on http://{metrics_host}:{server.server_port}/metrics")
    try:
        with _stop_on_signals(stop):
            summary = run_stream(cluster_settings(cluster), options, stop=stop, progress=progress_printer(False))
    finally:
        if server is not None:
            server.shutdown()
    result = summary.to_dict()
    if json_output:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        console.print(f"stream {result['stream_id']} stopped cleanly; savepoint {result['savepoint']}")
        for table, info in result["contracts"].items():
            console.print(f"  {table}: {info['batches']} batch(es), {info['rows_committed']:,} rows committed, "
                          f"{info['rows_pushed']:,} pushed online (Delta v{info['delta_version']}, online "
                          f"v{info['online_version']})")
        if result["pending_online"]:
            console.print(f"[yellow]not yet online (pushed on the next start): {result['pending_online']}[/yellow]")


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGINT/SIGTERM sets ``stop`` (clean stop); a second one raises KeyboardInterrupt (abort)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        console.print(f"[yellow]{signal.Signals(signum).name}: stopping cleanly (again to abort)[/yellow]")
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
