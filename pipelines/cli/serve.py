"""``feature-platform serve``: the online feature API (Feast-compatible ``POST /get-online-features``).

Options override the ``FP_SERVE__*`` settings (docs/serving.md); the work is :mod:`pipelines.serving.server`. The
command checks the contracts and the store configuration first (a broken contract fails here with its message), then
blocks until SIGTERM or Ctrl-C, and exits 0 after the workers have stopped.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from pipelines.cli.console import console

if TYPE_CHECKING:
    from pipelines.config import Settings


def serve_command(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port (default 6566).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes (default: one per allowed "
                                                                    "CPU, each pinned).")] = None,
    online_store: Annotated[str | None, typer.Option(
        "--online-store", help="sqlite (the data folder's file) or redis (at FP_REDIS_URL / --redis-url).")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis as Feast's connection string host:port[,db=0].")] = None,
    deadline_ms: Annotated[float | None, typer.Option(min=0.1, help="Per-request store budget (default 50).")] = None,
    max_in_flight: Annotated[int | None, typer.Option(min=1, help="Requests per worker at once; more get 503 "
                                                                  "(default 64).")] = None,
    max_entities: Annotated[int | None, typer.Option(min=1, help="Entities per request; more get 413 "
                                                                 "(default 1000).")] = None,
    client_rate: Annotated[float | None, typer.Option(min=0.001, help="Requests/s per client; more get 429 "
                                                                      "(default: no limit).")] = None,
) -> None:
    """Serve online features over HTTP (Feast's feature-server API) with TTLs, fallbacks and load shedding."""
    from pipelines.config import Settings, get_settings
    from pipelines.serving.server import plan_server, serve_forever

    base = get_settings()
    serve = {name: value for name, value in (
        ("host", host), ("port", port), ("workers", workers), ("deadline_ms", deadline_ms),
        ("max_in_flight", max_in_flight), ("max_entities", max_entities), ("client_rate", client_rate))
        if value is not None}
    top: dict[str, object] = {}
    if online_store is not None:
        if online_store not in ("sqlite", "redis"):
            raise typer.BadParameter("must be sqlite or redis", param_hint="--online-store")
        store: Literal["sqlite", "redis"] = online_store  # type: ignore[assignment]
        top["online_store"] = store
    if redis_url is not None:
        top["redis_url"] = redis_url
    settings = Settings(**{**base.model_dump(), **top, "serve": {**base.serve.model_dump(), **serve}})
    plan = plan_server(settings)
    _export(settings)
    console.print(f"serving {', '.join(plan.views) or 'no views'} from {plan.store} on "
                  f"http://{plan.host}:{plan.port} with {plan.workers} worker(s); Ctrl-C or SIGTERM stops")
    serve_forever(settings, plan)
    console.print("stopped")


def _export(settings: Settings) -> None:
    """Hand the effective settings to the worker processes, which read them from ``FP_`` variables."""
    serve = settings.serve
    values = {"FP_ONLINE_STORE": settings.online_store, "FP_REDIS_URL": settings.redis_url,
              "FP_DATA_DIR": str(settings.data_dir), "FP_CONTRACTS_DIR": str(settings.contracts_dir),
              "FP_FEATURE_REPO_DIR": str(settings.feature_repo_dir)}
    for name, value in serve.model_dump().items():
        if value is not None and name != "run_dir":
            values[f"FP_SERVE__{name.upper()}"] = str(value)
    os.environ.update(values)
