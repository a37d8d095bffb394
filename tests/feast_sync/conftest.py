"""Fixtures for the Feast tests (``settings`` is the root conftest's): real Delta tables built from a contract's own
layout (``delta_schema``), and a redis-server. No Flink: the rows are written with deltalake, as the commit stage
would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema

#: Recent, minute-aligned: TTL-bound stores must still consider the values fresh.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="session")
def user_contract(project_contract: Callable[[str], Contract]) -> Contract:
    return project_contract("user_txn_stats")


def user_row(user_id: str, window_end: datetime, *, ingested_at: datetime, count: int | None, amount: float,
             country: str | None) -> dict[str, Any]:
    """One row of the user_txn_stats table; features derived from ``count``/``amount`` so each row is distinct."""
    return {
        "user_id": user_id, "window_start": window_end - timedelta(minutes=5), "window_end": window_end,
        "txn_count_5m": count, "amount_sum_5m": amount, "amount_sum_1h": amount * 12, "amount_avg_1h": amount / 2,
        "amount_max_1h": amount + 1, "distinct_merchants_1h": None if count is None else count % 7,
        "last_country_1h": country, "ingested_at": ingested_at,
    }


@pytest.fixture
def write_delta() -> Callable[[Contract, Path, Sequence[dict[str, Any]]], None]:
    """Append rows to the contract's Delta table at a path (created on the first write)."""

    def write(contract: Contract, path: Path, rows: Sequence[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(list(rows), schema=delta_schema(contract))
        write_deltalake(str(path), table, mode="append")

    return write


# ------------------------------------------------------------------------------------------- Redis (online loading)
