"""Fixtures for the data-check tests (``settings`` is the root conftest's): the project's contracts loaded with
positions, and a builder of real Delta tables in the exact layout of :func:`pipelines.delta.schema.delta_schema`
(created with the commit stage's own :func:`~pipelines.delta.write.ensure_table`, rows appended with deltalake)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import LoadedContract, load_contract_text
from pipelines.contracts.model import Contract
from pipelines.delta.schema import delta_schema
from pipelines.delta.write import ensure_table

CONTRACTS = PROJECT_ROOT / "contracts"
#: The newest window of the tables the builder writes ends here (minute-aligned, UTC).
END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def merchant(project_loaded_contract: Callable[[str], LoadedContract]) -> LoadedContract:
    return project_loaded_contract("merchant_risk_profile")


def edited(loaded: LoadedContract, old: str, new: str) -> LoadedContract:
    """The contract with one text replacement, re-loaded so positions match the edited text."""
    text = Path(loaded.file).read_text()
    assert old in text, old
    return load_contract_text(text.replace(old, new, 1), loaded.file)


def feature_rows(contract: Contract, *, entities: int = 50, windows: int = 24, end: datetime = END, seed: int = 0,
                 null_share: Mapping[str, float] | None = None, scale: float = 1.0,
                 ingested_at: datetime | None = None) -> pa.Table:
    """``entities`` x ``windows`` rows (one per entity and window, ending at ``end``) with plausible feature values.

    ``null_share`` sets the exact share of nulls per feature (a prefix of the rows); ``scale`` multiplies every
    numeric value (a controlled distribution shift).
    """
    rng = np.random.default_rng(seed)
    n = entities * windows
    step, size = contract.step, contract.max_window
    naive_end = end.astimezone(UTC).replace(tzinfo=None)
    ends = np.array([naive_end - step * i for i in range(windows)], dtype="datetime64[us]")
    window_end = np.tile(ends, entities)
    key = contract.entity.join_keys[0]
    columns: dict[str, Any] = {key: pa.array([f"k{i:05d}" for i in np.repeat(np.arange(entities), windows)])}
    columns["window_start"] = pa.array(window_end - np.timedelta64(int(size.total_seconds()), "s"))
    columns["window_end"] = pa.array(window_end)
    for feature in contract.features:
        if feature.type == "int64":
            values = pa.array((rng.poisson(5, n) * scale).astype(np.int64))
        elif feature.type == "double":
            # min < any other value < max, so `max >= min` holds unless a test breaks it on purpose
            offset = {"min": 0.0, "max": 1000.0}.get(feature.aggregation, 100.0)
            values = pa.array((rng.uniform(1, 50, n) + offset) * scale)
        elif feature.type == "string":
            values = pa.array([f"v{i}" for i in rng.integers(0, 5, n)])
        else:
            values = pa.array(rng.random(n) < 0.5)
        share = (null_share or {}).get(feature.name, 0.0)
        if share:
            mask = np.zeros(n, dtype=bool)
            mask[: round(n * share)] = True
            values = pa.compute.if_else(pa.array(mask), pa.scalar(None, values.type), values)
        columns[feature.name] = values
    stamp = ingested_at or end + timedelta(minutes=1)
    columns["ingested_at"] = pa.array([stamp] * n, pa.timestamp("us", tz="UTC"))
    schema = delta_schema(contract)
    arrays = [pa.array(columns[f.name]).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


@pytest.fixture
def write_table(settings: Settings) -> Callable[..., Path]:
    """``write_table(contract, rows, mode="append")`` → the table path (created with the contract's layout)."""

    def write(contract: Contract, rows: pa.Table, mode: str = "append") -> Path:
        path = settings.delta_table_path(contract.table_name)
        table = ensure_table(contract, path)
        write_deltalake(table, rows, mode=mode)
        return path

    return write
