"""``feature-platform rollout``: start, watch, promote or abort the canary of a contract's new major version.

The work is :mod:`pipelines.rollout.operations` and :mod:`pipelines.rollout.controller`; this module renders states
and audit entries (stderr, or ``--json`` on stdout). ``rollout controller`` runs the controller in the foreground.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.cli.console import console

rollout_app = typer.Typer(no_args_is_help=True, help="Canary rollouts of a contract's new major version.")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@rollout_app.command("start")
def start_command(
    name: Annotated[str, typer.Argument(help="Contract name.")],
    to: Annotated[int, typer.Option("--to", help="The candidate major (the contract file's major).")],
    from_major: Annotated[int | None, typer.Option("--from", help="The stable major (default: --to minus 1).")] = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between gate evaluations.")] = 60.0,
    failure_limit: Annotated[int, typer.Option(min=1, help="Consecutive failed evaluations that abort.")] = 2,
    stable_contract: Annotated[Path | None, typer.Option(
        help="The stable major's contract file (e.g. from `git show HEAD^:contracts/NAME.yaml`): serving keeps "
             "serving that major from it.")] = None,
) -> None:
    """Start rolling NAME out to major --to, following the contract's rollout plan."""
    from pipelines.config import get_settings
    from pipelines.rollout.operations import open_store, start_rollout

    settings = get_settings()
    state = start_rollout(settings, open_store(settings), name, to, from_major=from_major, interval_s=interval,
                          failure_limit=failure_limit, stable_contract=stable_contract)
    console.print(f"started {state.rollout_id}: v{state.stable_major} -> v{state.candidate_major}, steps "
                  f"{list(state.steps)}, dwell {state.dwell_s:.0f}s, now {state.phase} at {state.weight}%")


@rollout_app.command("status")
def status_command(json_output: Annotated[bool, typer.Option("--json", help="Print as JSON on stdout.")] = False,
                   ) -> None:
    """Current step, time in step, gate values against limits and the history of every rollout."""
    from pipelines.config import get_settings
    from pipelines.rollout.operations import open_store, status

    states = status(open_store(get_settings()))
    if json_output:
        sys.stdout.write(json.dumps(states, indent=2) + "\n")
        return
    if not states:
        console.print("no rollouts")
    for state in states:
        console.print(f"[bold]{state['contract']}[/bold] {state['rollout_id']}: v{state['stable_major']} -> "
                      f"v{state['candidate_major']} {state['phase']} at {state['weight']}% for "
                      f"{state['time_in_step_s']:.0f}s" + (f" ({escape(state['reason'])})" if state["reason"] else ""),
                      highlight=False)
        table = Table("gate", "value", "limit", "verdict", title_justify="left")
        for gate in state["gates"].values():
            table.add_row(gate["gate"], f"{gate['value']:.4g}" if gate["value"] is not None else "n/a",
                          f"{gate['limit']:.4g}" if gate["limit"] is not None else "-", gate["verdict"])
        console.print(table)
        for entry in state["history"]:
            if entry["kind"] != "evaluate":
                console.print(f"  {_when(entry['at'])} {entry['kind']:8} {entry['actor']:10} {entry['weight']:3}% "
                              f"{escape(entry['detail'])}", highlight=False)


@rollout_app.command("promote")
def promote_command(name: Annotated[str, typer.Argument(help="Contract name.")]) -> None:
    """Make the candidate serve every entity now (a person's decision always wins)."""
    from pipelines.config import get_settings
    from pipelines.rollout.controller import promote
    from pipelines.rollout.operations import open_store

    state = promote(open_store(get_settings()), name, now=time.time())
    console.print(f"promoted {state.rollout_id}: v{state.candidate_major} serves every entity")


@rollout_app.command("abort")
def abort_command(name: Annotated[str, typer.Argument(help="Contract name.")],
                  reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]) -> None:
    """Send every entity back to the stable major now."""
    from pipelines.config import get_settings
    from pipelines.rollout.controller import abort
    from pipelines.rollout.operations import open_store

    state = abort(open_store(get_settings()), name, reason=reason, now=time.time())
    console.print(f"aborted {state.rollout_id}: v{state.stable_major} serves every entity")


@rollout_app.command("controller")
def controller_command(once: Annotated[bool, typer.Option("--once", help="Evaluate once and exit.")] = False,
                       tick: Annotated[float, typer.Option(min=0.1, help="Seconds between passes.")] = 1.0,
                       metrics_port: Annotated[int | None, typer.Option(
                           help="Serve fp_rollout_* on this port (/metrics) while running.")] = None,
                       metrics_host: Annotated[str, typer.Option(help="Address of the metrics port.")] = "127.0.0.1",
                       ) -> None:
    """Run the controller: evaluate gates at each rollout's interval, step, promote or abort."""
    from pipelines.config import get_settings
    from pipelines.rollout.controller import Controller
    from pipelines.rollout.operations import health_gates, open_store

    settings = get_settings()
    controller = Controller(open_store(settings), health_gates(settings))
    if once:
        for state in controller.tick():
            console.print(f"{state.contract}: {state.phase} at {state.weight}%")
        return
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)  # fp_rollout_* (pipelines/rollout/metrics.py)
    controller.run(tick_s=tick)
