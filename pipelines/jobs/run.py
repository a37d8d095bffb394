"""The main job, ``feature-platform run``: contracts → generated events → Flink → Delta → Feast online → values.

Steps, each timed: check the contracts (the one loader, every rule) and start from scratch (old events, Flink runs,
the contracts' Delta tables and their sources' dead-letter tables removed) → generate a seeded stream of events per
source, ending now unless ``end`` is given → compute every contract in one Flink job with exactly-once Delta commits
(:mod:`pipelines.jobs.compute`) → apply the Feast repository and load the newest values into the online store → read
online values for the most active entities of the newest window → publish lineage when an OpenMetadata server is
configured (a failure there is reported in the summary, never fails the run: :mod:`pipelines.lineage.hook`). Returns a
:class:`MainJobSummary`; the CLI renders it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts
from pipelines.delta.dead_letters import table_name as dead_letter_table
from pipelines.delta.tables import read_table
from pipelines.errors import UsageError
from pipelines.feast_sync.online import LoadResult, load_latest_online, read_online
from pipelines.feast_sync.store import apply_repo, open_store
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.jobs.progress import Progress, silent
from pipelines.layout import WINDOW_END
from pipelines.lineage.hook import LineageOutcome, publish_if_configured
from pipelines.resources import peak_memory_mib
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events

#: Wraps each step (the CLI shows a spinner); the default does nothing.
StepWrapper = Callable[[str], AbstractContextManager[object]]


@dataclass(frozen=True)
class MainJobOptions:
    """What ``feature-platform run`` generates and shows (its command-line options)."""

    events: int = 100_000
    seed: int = 7
    hours: float = 6.0
    entities: int = 2_000
    show: int = 3
    #: The user's own events instead of generated ones: one sub-folder per source (``<dir>/<source>/*.jsonl``).
    events_dir: Path | None = None
    #: When the generated events end (UTC). ``None``: now, so freshness means something in the demo; a fixed value
    #: keeps runs reproducible (same seed and end, same events).
    end: datetime | None = None
    #: Share of optional source columns left null: a little missing input data, below every shipped contract's SLA.
    null_rate: float = 0.002

    def events_end(self) -> datetime:
        return (self.end or datetime.now(UTC)).astimezone(UTC)


@dataclass
class MainJobSummary:
    """What the main job did: the compute run, the online loads, sampled online values, timings and memory."""

    contracts: list[Contract]
    compute: RunSummary
    online_loads: dict[str, LoadResult]
    online_values: dict[str, dict[str, list[Any]]]
    options: MainJobOptions
    data_dir: Path
    step_seconds: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    peak_memory_mib: dict[str, float] = field(default_factory=dict)
    #: Lineage published to OpenMetadata after the run (None: no server configured; see pipelines.lineage.hook).
    lineage: LineageOutcome | None = None

    @property
    def balanced(self) -> bool:
        return self.compute.balanced

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``feature-platform run --json``)."""
        return {
            **self.compute.to_dict(),
            "events_generated_per_source": None if self.options.events_dir else self.options.events,
            "events_dir": str(self.options.events_dir) if self.options.events_dir else None,
            "online_entities_loaded": {name: load.rows_loaded for name, load in self.online_loads.items()},
            "online_values": self.online_values,
            "step_seconds": {name: round(seconds, 2) for name, seconds in self.step_seconds.items()},
            "elapsed_seconds": round(self.elapsed_seconds, 2),
            "peak_memory_mib": self.peak_memory_mib,
            "data_dir": str(self.data_dir),
            **({"lineage": self.lineage.to_dict()} if self.lineage is not None else {}),
        }


class _Steps:
    """Times each step and wraps it with the caller's step wrapper (a spinner in the CLI)."""

    def __init__(self, wrap: StepWrapper | None) -> None:
        self.wrap = wrap or (lambda _name: nullcontext())
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        with self.wrap(name):
            yield
        self.seconds[name] = time.perf_counter() - started


def run_main_job(settings: Settings, options: MainJobOptions | None = None, *, progress: Progress = silent,
                 step: StepWrapper | None = None) -> MainJobSummary:
    """Run the main job (see the module docstring). Raises :class:`~pipelines.errors.PlatformError` subclasses:
    ``ContractLoadError`` for an invalid contract, ``FlinkJobError`` when the job fails (nothing committed after)."""
    options = options or MainJobOptions()
    started = time.perf_counter()
    steps = _Steps(step)
    with steps.step("check contracts"):
        contracts = load_valid_contracts(settings.contracts_dir)
        if options.events_dir is not None:
            folders = own_event_folders(options.events_dir, contracts)
        reset_run_data(settings, contracts, keep_events=options.events_dir is not None)
    progress(f"{len(contracts)} contract(s): {', '.join(c.table_name for c in contracts)}; "
             f"data in {settings.data_dir}")
    if options.events_dir is None:
        with steps.step(f"generate {options.events:,} events per source"):
            folders = generate_events(settings, contracts, options)
    with steps.step("flink job and delta commits"):
        compute = run_contracts(contracts, folders, settings, progress=progress)
    with steps.step("feast apply and online load"):
        store = open_store(settings)
        applied = apply_repo(store, [(c, settings.delta_table_path(c.table_name)) for c in contracts])
        progress(f"feast: {len(applied.changes)} change(s) applied")
        loads = {c.table_name: load_latest_online(store, c, settings.delta_table_path(c.table_name))
                 for c in contracts}
        for load in loads.values():
            progress(f"online: {load.table_name} {load.rows_loaded:,} entities from Delta version "
                     f"{load.delta_version}")
    values = {}
    for contract in contracts:
        entity_rows = most_active_entities(contract, settings, options.show)
        values[contract.table_name] = read_online(store, contract, entity_rows) if entity_rows else {}
    lineage = None
    if settings.openmetadata.url is not None:
        with steps.step("lineage to openmetadata"):
            lineage = publish_if_configured(settings, contracts, sources=folders, progress=progress)
    return MainJobSummary(contracts, compute, loads, values, options, settings.data_dir, steps.seconds,
                          time.perf_counter() - started, peak_memory_mib(), lineage)


def reset_run_data(settings: Settings, contracts: list[Contract], *, keep_events: bool = False) -> None:
    """The demo starts from scratch: old events (unless ``keep_events``: the user's own), Flink runs, the contracts'
    Delta tables and the dead-letter tables of their sources are removed."""
    tables = {c.table_name for c in contracts} | {dead_letter_table(c.source.name) for c in contracts}
    folders = [settings.flink_dir, *(settings.delta_table_path(t) for t in sorted(tables))]
    for folder in ([] if keep_events else [settings.events_dir]) + folders:
        shutil.rmtree(folder, ignore_errors=True)


def own_event_folders(events_dir: Path, contracts: list[Contract]) -> dict[str, Path]:
    """``<events_dir>/<source>`` for every source the contracts read; raises :class:`UsageError` naming each missing
    folder (nothing is removed or generated before the check)."""
    if not events_dir.is_dir():
        raise UsageError(f"--events-dir {events_dir} is not a folder",
                         hint="give a folder with one sub-folder of JSON-lines files per source")
    sources = sorted({c.source.name for c in contracts})
    missing = [name for name in sources if not (events_dir / name).exists()]
    if missing:
        raise UsageError(f"--events-dir {events_dir} has no folder for source(s) {missing}",
                         hint=f"put each source's JSON-lines files under {events_dir}/<source>/ "
                              f"(sources: {', '.join(sources)})")
    return {name: (events_dir / name).resolve() for name in sources}


def generate_events(settings: Settings, contracts: list[Contract], options: MainJobOptions) -> dict[str, Path]:
    """A seeded stream of events per source under the data folder's ``events/<source>``."""
    folders = {}
    for source in sorted({c.source.name for c in contracts}):
        readers = [c for c in contracts if c.source.name == source]
        folder = settings.events_dir / source
        duration, jitter = timedelta(hours=options.hours), safe_jitter(readers)
        # events end at `end` (the jitter may push an event up to `jitter` later, so the span starts that much earlier)
        write_events(SourceSpec.from_contracts(readers), folder, options.events, seed=options.seed,
                     start=options.events_end() - duration - jitter, duration=duration, max_jitter=jitter,
                     entities=options.entities, null_rate=options.null_rate)
        folders[source] = folder
    return folders


def most_active_entities(contract: Contract, settings: Settings, count: int) -> list[dict[str, Any]]:
    """The ``count`` most active entities of the newest windows, so the printed values are interesting.

    Entities are taken from the newest window first, then from older ones until there are ``count`` of them: the
    newest window of a short-lived entity (a session) may hold fewer than ``count`` entities."""
    if count == 0:
        return []
    rows = read_table(settings.delta_table_path(contract.table_name))
    if rows is None or rows.num_rows == 0:
        return []
    keys = list(contract.entity.join_keys)
    frame = rows.to_pandas().sort_values([WINDOW_END, contract.features[0].name, *keys], ascending=False)
    chosen = frame.drop_duplicates(subset=keys).head(count)
    return [{key: row[key] for key in keys} for _, row in chosen.iterrows()]
