"""The dead-letter rate of a contract over the last interval, from the newest run's commit ledger.

Every batch the commit stage records says how many events each contract accepted and how many lines it
dead-lettered, by reason (:class:`~pipelines.delta.ledger.TableCommit`). The rate is dead letters / (accepted + dead
letters) over the batches committed in the ``interval`` before the newest commit of the run (not before *now*: a
finished run keeps its verdict, and a stalled one is the freshness signal's business).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pipelines.contracts.model import Contract
from pipelines.delta.ledger import BatchRecord, Ledger
from pipelines.health.signals import Signal


def newest_run_records(runs: Path) -> list[BatchRecord]:
    """The done records of the run that committed last (empty when there is no run)."""
    if not runs.exists():
        return []
    best: list[BatchRecord] = []
    for run in sorted(path for path in runs.iterdir() if path.is_dir()):
        records = Ledger(run).records()
        if records and (not best or records[-1].committed_at > best[-1].committed_at):
            best = records
    return best


def dead_letter_signal(contract: Contract, records: list[BatchRecord], interval: timedelta, limit: float) -> Signal:
    """``dead_letter_rate`` of ``contract`` over ``records`` committed in the last ``interval``."""
    if not records:
        return Signal.unknown("dead_letter_rate", limit, "share", "no run ledger under the data folder")
    newest = datetime.fromisoformat(records[-1].committed_at)
    recent = [r for r in records if datetime.fromisoformat(r.committed_at) >= newest - interval]
    accepted = dead = 0
    for record in recent:
        for commit in record.tables:
            if commit.table == contract.table_name:
                accepted += commit.events_accepted
            dead += sum(commit.dead_letters.get(contract.table_name, {}).values())
    total = accepted + dead
    if total == 0:
        return Signal.measured("dead_letter_rate", 0.0, limit, "share", "no input line in the interval")
    return Signal.measured("dead_letter_rate", dead / total, limit, "share",
                           f"{dead:,} of {total:,} lines in {len(recent)} batch(es) of the last "
                           f"{interval.total_seconds():.0f}s of the run")
