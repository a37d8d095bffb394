"""``feature-platform health``: the health of each contract version, for people, CI and the rollout controller.

The work is :func:`pipelines.health.check.check_health` over the repository's contracts and, during a rollout, the
stable major kept in the rollout state; this module renders the report (lines on stderr, ``--json``
or ``--prometheus`` on stdout) and picks the exit code: 0 healthy, 1 unhealthy (each failing signal named with its
value and limit), 2 cannot tell (a table, the online store or serving could not be read; named).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape

from pipelines.cli.console import console, parse_instant
from pipelines.errors import UsageError

_COLOURS = {"ok": "green", "fail": "red", "unknown": "yellow"}


def health_command(
    contract: Annotated[list[str] | None, typer.Option("--contract", help="Check only this contract (by name); "
                                                                          "repeatable.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Print Prometheus metrics on stdout.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="TIME", help="Judge freshness as of this ISO-8601 "
                                              "time instead of now (e.g. a finished run's end).")] = None,
) -> None:
    """Freshness, null rates, dead letters, online coverage (and serving errors/latency) per contract version."""
    from pipelines.config import get_settings
    from pipelines.contracts.valid import load_valid_contracts
    from pipelines.health.check import check_health
    from pipelines.rollout.operations import stable_contracts_in_rollout

    now = parse_instant(as_of, "--as-of") if as_of is not None else None
    settings = get_settings()
    contracts = load_valid_contracts(settings.contracts_dir)
    contracts += stable_contracts_in_rollout(settings)  # during a rollout, both majors are checked
    if contract:
        unknown = sorted(set(contract) - {c.name for c in contracts})
        if unknown:
            raise UsageError(f"no contract named {', '.join(unknown)} in {settings.contracts_dir}")
        contracts = [c for c in contracts if c.name in contract]
    report = check_health(contracts, settings, now=now)
    if json_output:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    elif prometheus:
        sys.stdout.write(report.prometheus())
    else:
        for health in report.contracts:
            colour = _COLOURS[health.verdict]
            console.print(f"[{colour}]{health.verdict:7}[/{colour}] {health.table} ({health.version})",
                          highlight=False)
            for signal in health.signals:
                mark = _COLOURS[signal.verdict]
                console.print(f"  [{mark}]{signal.verdict:7}[/{mark}] {escape(signal.describe())}", highlight=False)
    raise typer.Exit(report.exit_code())
