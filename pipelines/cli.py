"""``feature-platform``: the platform's jobs as console commands. Renders reports and picks exit codes, nothing else.

``feature-platform run`` is the main job on the embedded default: contracts → generated events → Flink SQL in the
local mini-cluster → Delta → Feast online store → online values printed for a few entities, with a run summary.
The work itself lives in the step packages (``sources``, ``flink``, ``delta``, ``feast_sync``); this module wires them
in data-flow order and shows progress.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipelines.commands.common import console, load_valid_contracts
from pipelines.config import Settings, get_settings
from pipelines.contracts.model import Contract
from pipelines.resources import peak_memory_mib

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Run the feature platform's jobs. Contracts are checked with the separate `feature-check`.")


@dataclass
class StepTimer:
    """Wall time of each named step, in the order they ran."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, quiet: bool) -> Iterator[None]:
        started = time.perf_counter()
        if quiet:
            yield
        else:
            with console.status(f"[bold]{name}[/bold] …", spinner="dots"):
                yield
        self.seconds[name] = time.perf_counter() - started
        if not quiet:
            console.print(f"[green]✓[/green] {name} [dim]({self.seconds[name]:.1f}s)[/dim]")


def _say(quiet: bool) -> Callable[[str], None]:
    """A progress callback for the step packages: dim lines under the current step, or nothing in quiet mode."""
    return (lambda _message: None) if quiet else (lambda message: console.print(f"  [dim]{message}[/dim]"))


def _reset_run_data(settings: Settings, contracts: list[Contract]) -> None:
    """The demo starts from scratch: old events, Flink runs, the contracts' Delta tables and the dead-letter tables of
    their sources are removed."""
    from pipelines.delta.dead_letters import table_name as dead_letter_table

    tables = {c.table_name for c in contracts} | {dead_letter_table(c.source.name) for c in contracts}
    for folder in (settings.events_dir, settings.flink_dir, *(settings.delta_table_path(t) for t in sorted(tables))):
        shutil.rmtree(folder, ignore_errors=True)


def _generate_events(settings: Settings, contracts: list[Contract], events: int, seed: int, hours: float,
                     entities: int) -> dict[str, Path]:
    from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

    folders = {}
    for source in sorted({c.source.name for c in contracts}):
        readers = [c for c in contracts if c.source.name == source]
        folder = settings.events_dir / source
        write_events(SourceSpec.from_contracts(readers), folder, events, seed=seed, duration=timedelta(hours=hours),
                     max_jitter=safe_jitter(readers), entities=entities)
        folders[source] = folder
    return folders


def _sample_entities(contract: Contract, settings: Settings, count: int) -> list[dict[str, Any]]:
    """The ``count`` most active entities of the newest window, so the printed values are interesting."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pyarrow_table()
    if rows.num_rows == 0:
        return []
    frame = rows.to_pandas()
    first_feature = contract.features[0].name
    newest = frame[frame["window_end"] == frame["window_end"].max()]
    newest = newest.sort_values([first_feature, *contract.entity.join_keys], ascending=False).head(count)
    return [{key: row[key] for key in contract.entity.join_keys} for _, row in newest.iterrows()]


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


@app.callback()
def _commands() -> None:
    """Keep `run` a named subcommand (typer would otherwise collapse a single command into the program itself)."""


@app.command()
def run(
    events: Annotated[int, typer.Option(min=1, help="Events to generate per source.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the event generator (same seed, same events).")] = 7,
    hours: Annotated[float, typer.Option(min=0.1, help="Event-time span of the generated events, in hours.")] = 6.0,
    entities: Annotated[int, typer.Option(min=1, help="Distinct entities per source.")] = 2_000,
    show: Annotated[int, typer.Option(min=0, help="Entities to print online values for, per contract.")] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Generate events, compute every contract in Flink, commit to Delta, load Feast online, print values."""
    settings = get_settings()
    quiet = json_output
    timer = StepTimer()
    started = time.perf_counter()
    say = _say(quiet)

    with timer.step("check contracts", quiet):
        contracts = load_valid_contracts(settings.contracts_dir)
        _reset_run_data(settings, contracts)
    say(f"{len(contracts)} contract(s): {', '.join(c.table_name for c in contracts)}; data in {settings.data_dir}")

    with timer.step(f"generate {events:,} events per source", quiet):
        folders = _generate_events(settings, contracts, events, seed, hours, entities)

    from pipelines.flink.job import FlinkJobError
    from pipelines.flink.run import run_contracts

    try:
        with timer.step("flink job and delta commits", quiet):
            summary = run_contracts(contracts, folders, settings, progress=say)
    except FlinkJobError as error:
        console.print("[red]the Flink job failed; nothing was committed to Delta.[/red]")
        console.print(str(error), markup=False, highlight=False)
        raise typer.Exit(1) from None

    from pipelines.feast_sync.online import load_latest_online, read_online
    from pipelines.feast_sync.store import apply_repo, open_store

    with timer.step("feast apply and online load", quiet):
        store = open_store(settings)
        applied = apply_repo(store, [(c, settings.delta_table_path(c.table_name)) for c in contracts])
        say(f"feast: {len(applied.changes)} change(s) applied")
        loads = {c.table_name: load_latest_online(store, c, settings.delta_table_path(c.table_name))
                 for c in contracts}
        for load in loads.values():
            say(f"online: {load.table_name} {load.rows_loaded:,} entities from Delta version {load.delta_version}")

    online_values = {}
    for contract in contracts:
        entity_rows = _sample_entities(contract, settings, show)
        online_values[contract.table_name] = read_online(store, contract, entity_rows) if entity_rows else {}
        if not quiet and entity_rows:
            _print_online_values(contract, online_values[contract.table_name])

    memory = peak_memory_mib()
    result = {
        **summary.to_dict(),
        "events_generated_per_source": events,
        "online_entities_loaded": {name: load.rows_loaded for name, load in loads.items()},
        "online_values": online_values,
        "step_seconds": {name: round(seconds, 2) for name, seconds in timer.seconds.items()},
        "elapsed_seconds": round(time.perf_counter() - started, 2),
        "peak_memory_mib": memory,
        "data_dir": str(settings.data_dir),
    }
    if json_output:
        sys.stdout.write(json.dumps(result, indent=2, default=str) + "\n")
    else:
        _print_summary(result)
    if not summary.balanced:
        console.print("[red]some input lines were neither counted nor dead-lettered[/red]")
        raise typer.Exit(1)


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
    lag = result.get("watermark_lag_s")
    console.print(f"run {result.get('run_id', '')}: {result.get('batches', 0)} commit batch(es), "
                  f"{len(result.get('attempts', []))} flink attempt(s), watermark lag "
                  f"{f'{lag:,.1f}s' if lag is not None else 'n/a'}")
    memory = result["peak_memory_mib"]
    console.print(f"elapsed {result['elapsed_seconds']:.1f}s · peak memory: python {memory['python']:.0f} MiB, "
                  f"jvm {memory['jvm']:.0f} MiB, total {memory['total']:.0f} MiB · data in {result['data_dir']}")


from pipelines.commands.training_set import training_set_command  # noqa: E402

app.command("training-set")(training_set_command)

from pipelines.commands.materialize import materialize_command  # noqa: E402

app.command("materialize")(materialize_command)

from pipelines.commands.backfill import backfill_command  # noqa: E402

app.command("backfill")(backfill_command)

from pipelines.commands.status import status_command  # noqa: E402

app.command("status")(status_command)
