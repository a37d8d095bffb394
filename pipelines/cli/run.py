"""``feature-platform run``: the main job (embedded default, or ``--cluster URL``), a spinner per step, a summary.

The work is :func:`pipelines.jobs.run.run_main_job`; this module turns options into :class:`MainJobOptions`, shows
progress and renders the summary (``--json`` on stdout). Exit code 1 when an input line was neither accepted nor
dead-lettered. Jobs are imported inside the command so that ``--help`` stays instant.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pipelines.cli.console import ClusterOption, cluster_settings, console, parse_instant, progress_printer
from pipelines.errors import UsageError

if TYPE_CHECKING:
    from pipelines.contracts.model import Contract


def run_command(
    events: Annotated[int | None, typer.Option(min=1, help="Events to generate per source [default: 100000].")] = None,
    events_dir: Annotated[Path | None, typer.Option(
        help="Run on your own events instead of generated ones: a folder with one sub-folder of JSON-lines files per "
             "source (e.g. DIR/transactions/*.jsonl); not combined with --events.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the event generator (same seed, same events).")] = 7,
    hours: Annotated[float, typer.Option(min=0.1, help="Event-time span of the generated events, in hours.")] = 6.0,
    entities: Annotated[int, typer.Option(min=1, help="Distinct entities per source.")] = 2_000,
    show: Annotated[int, typer.Option(min=0, help="Entities to print online values for, per contract.")] = 3,
    end: Annotated[str | None, typer.Option(help="When the generated events end, ISO 8601 (no offset: UTC; "
                                                 "default: now). A fixed end keeps runs reproducible.")] = None,
    null_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of optional source columns left null "
                                                                   "(missing input data).")] = 0.002,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    cluster: ClusterOption = None,
) -> None:
    """Generate events (or read --events-dir), compute every contract in Flink, commit to Delta, load Feast online,
    print values."""
    from pipelines.jobs.run import MainJobOptions, run_main_job

    if events_dir is not None and events is not None:
        raise UsageError("--events (a count of generated events) and --events-dir (your own events) exclude each other")
    options = MainJobOptions(events=events or 100_000, seed=seed, hours=hours, entities=entities, show=show,
                             events_dir=events_dir, end=parse_instant(end, "--end") if end is not None else None,
                             null_rate=null_rate)

    @contextmanager
    def step(name: str) -> Iterator[None]:
        if json_output:
            yield
            return
        with console.status(f"[bold]{name}[/bold] …", spinner="dots"):
            yield
        console.print(f"[green]✓[/green] {name}")

    summary = run_main_job(cluster_settings(cluster), options, progress=progress_printer(json_output), step=step)
    result = summary.to_dict()
    if json_output:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        for contract in summary.contracts:
            values = summary.online_values.get(contract.table_name)
            if values:
                _print_online_values(contract, values)
        _print_summary(result)
    if not summary.balanced:
        console.print("[red]some input lines were neither counted nor dead-lettered[/red]")
        raise typer.Exit(1)


def _print_online_values(contract: Contract, values: dict[str, list[Any]]) -> None:
    table = Table(title=f"{contract.table_name}  (online, v{contract.version})", title_justify="left")
    columns = [*contract.entity.join_keys, *(f.name for f in contract.features)]
    for name in columns:
        table.add_column(name, overflow="fold")
    for index in range(len(values[columns[0]])):
        table.add_row(*(_cell(values[name][index]) for name in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _print_summary(result: dict[str, Any]) -> None:
    table = Table(title="run summary", title_justify="left")
    for name in ("table", "events read", "rows written", "dead letters", "delta version", "online entities"):
        table.add_column(name, justify="right" if name != "table" else "left")
    for name, rows in result["rows_written"].items():
        dead = sum(result["dead_letters"][name].values())
        table.add_row(name, f"{result['events_read'][name]:,}", f"{rows:,}", f"{dead:,}",
                      str(result["delta_versions"][name]), f"{result['online_entities_loaded'][name]:,}")
    for name, info in result.get("dead_letter_tables", {}).items():
        table.add_row(name, "", f"{info['rows_written']:,}", "", str(info["delta_version"]), "")
    console.print(table)
    for name, reasons in result["dead_letters"].items():
        if reasons:
            console.print(f"dead letters {name}: " + ", ".join(f"{r} {n:,}" for r, n in reasons.items()))
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result["step_seconds"].items())
    console.print(f"[dim]steps: {steps}[/dim]")
    lag = result.get("watermark_lag_s")
    console.print(f"run {result.get('run_id', '')}: {result.get('batches', 0)} commit batch(es), "
                  f"{len(result.get('attempts', []))} flink attempt(s), watermark lag "
                  f"{f'{lag:,.1f}s' if lag is not None else 'n/a'}")
    memory = result["peak_memory_mib"]
    console.print(f"elapsed {result['elapsed_seconds']:.1f}s · peak memory: python {memory['python']:.0f} MiB, "
                  f"jvm {memory['jvm']:.0f} MiB, total {memory['total']:.0f} MiB · data in {result['data_dir']}")
