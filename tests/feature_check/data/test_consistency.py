"""The distribution-shift comparison on the versions of one bounded run, built as the job builds them: sliding 1-hour
windows every 5 minutes over two hours of events, so the first and the last hour of steps hold warm-up and
end-of-input flush windows with only part of their events, and an older version is a prefix of the newest one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import DataCheckThresholds
from pipelines.contracts.load import LoadedContract
from pipelines.feature_check.data.consistency import distribution_shifts, like_with_like

START = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
HOURS = 2
ENTITIES = 150


def bounded_run(contract_step: timedelta, window: timedelta, *, seed: int = 0,
                late_scale: float = 1.0) -> pa.Table:
    """Rows (user_id, window_end, amount_sum_1h, txn_count_5m, ingested_at) of a run over ``HOURS`` of events: one
    row per entity and step whose 1-hour window holds an event, including the warm-up windows after the first event
    and the flush windows after the last. Amounts of events in the second hour are multiplied by ``late_scale`` (a
    real shift in the input); ``ingested_at`` is the window's end plus a minute (commit order follows event time)."""
    rng = np.random.default_rng(seed)
    span = HOURS * 3600
    entity = rng.integers(0, ENTITIES, 4000)
    at = np.sort(rng.uniform(0, span, 4000))
    amount = rng.lognormal(3.0, 1.0, 4000) * np.where(at >= span / 2, late_scale, 1.0)
    step, size = int(contract_step.total_seconds()), int(window.total_seconds())
    rows: dict[str, list] = {k: [] for k in ("user_id", "window_end", "amount_sum_1h", "txn_count_5m", "ingested_at")}
    for end in range(step, span + size, step):
        in_hour = (at >= end - size) & (at < end)
        in_step = (at >= end - step) & (at < end)
        for key in np.unique(entity[in_hour]):
            mine = entity == key
            stamp = START + timedelta(seconds=end)
            rows["user_id"].append(f"u{key:04d}")
            rows["window_end"].append(stamp)
            rows["amount_sum_1h"].append(float(amount[mine & in_hour].sum()))
            rows["txn_count_5m"].append(int((mine & in_step).sum()))
            rows["ingested_at"].append(stamp + timedelta(minutes=1))
    return pa.table({k: pa.array(v, pa.timestamp("us", tz="UTC")) if k in ("window_end", "ingested_at")
                     else pa.array(v) for k, v in rows.items()})


def versions(table: pa.Table, split: datetime) -> tuple[pa.Table, pa.Table]:
    """(older version, newest version) of an append-only table: the older one holds the rows committed by ``split``."""
    before = table.filter(pc.less_equal(table["ingested_at"], pa.scalar(split, table["ingested_at"].type)))
    return before, table


def test_two_versions_of_one_normal_run_are_not_flagged(
        project_loaded_contract: Callable[[str], LoadedContract]) -> None:
    contract = project_loaded_contract("user_txn_stats").contract
    run = bounded_run(contract.step, contract.max_window)
    previous, current = versions(run, START + timedelta(hours=1, minutes=50))

    older, added = like_with_like(contract, previous, current)

    # Neither side holds a warm-up window (ending less than an hour after the first event) nor a flush window
    # (ending more than a step after the last event); both cover the same number of steps.
    first_full, last_full = START + timedelta(hours=1), START + timedelta(hours=HOURS, minutes=5)
    for side in (older, added):
        ends = pc.unique(side["window_end"]).to_pylist()
        assert ends and min(ends) >= first_full and max(ends) <= last_full, ends
    assert len(pc.unique(older["window_end"])) == len(pc.unique(added["window_end"]))
    shifts = distribution_shifts(contract, previous, current, DataCheckThresholds())
    assert {s.feature for s in shifts} == {"amount_sum_1h", "txn_count_5m"}  # tested, not skipped for lack of rows
    assert not [s for s in shifts if s.breaches(DataCheckThresholds())], shifts


def test_a_real_shift_between_versions_of_a_run_is_flagged(
        project_loaded_contract: Callable[[str], LoadedContract]) -> None:
    contract = project_loaded_contract("user_txn_stats").contract
    # From the second hour on, every transaction is five times larger: the newest steps' hourly sums move.
    run = bounded_run(contract.step, contract.max_window, late_scale=5.0)
    previous, current = versions(run, START + timedelta(hours=1, minutes=50))

    shifts = distribution_shifts(contract, previous, current, DataCheckThresholds())

    flagged = {s.feature for s in shifts if s.breaches(DataCheckThresholds())}
    assert flagged == {"amount_sum_1h"}, shifts  # counts did not change, amounts did
