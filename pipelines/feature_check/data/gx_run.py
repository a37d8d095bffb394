"""Validate expectation specs with Great Expectations 1.x: lazily imported, ephemeral, offline.

* GX is imported inside :func:`open_context` only, so nothing else pays its import time (seconds) and the fast
  ``feature-check`` path never loads it.
* Analytics are off twice over: ``GX_ANALYTICS_ENABLED=false`` is set before the import, and the project config says
  ``analytics_enabled=False``. The context is ephemeral (in-memory stores, nothing written to disk, no Data Docs),
  progress bars are off (they would write to stderr), and nothing here opens a socket; the tests prove it with an
  audit hook that fails on any socket use.
* The frame GX sees is the Arrow snapshot converted with pandas' nullable dtypes (so an ``int64`` column with nulls
  stays ``Int64`` instead of turning into ``float64``). UTC timestamps lose their time zone on the way
  (``datetime64[us]``): GX's pandas type check cannot name a tz-aware dtype, and the zone is checked here first: a
  timestamp column that is not UTC keeps its zone, and its type expectation fails.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipelines.feature_check.data.suite import ExpectationSpec


@dataclass(frozen=True)
class SpecOutcome:
    """The result of one expectation: success, GX's result dict, and the exception message if GX raised."""

    spec: ExpectationSpec
    success: bool
    result: dict[str, Any]
    error: str | None = None


@dataclass(frozen=True)
class GxValidation:
    outcomes: list[SpecOutcome]
    frame_seconds: float
    validate_seconds: float


def open_context() -> Any:
    """An ephemeral GX context with analytics and progress bars off (imports GX on first call)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False),
                               store_backend_defaults=InMemoryStoreBackendDefaults())
    return gx.get_context(mode="ephemeral", project_config=config)


def to_frame(table: pa.Table) -> Any:
    """Arrow → pandas with nullable dtypes; UTC timestamps become naive ``datetime64[us]`` (see the module doc)."""
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.bool_(): pd.BooleanDtype(),
               pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}
    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type) and column.type.tz in ("UTC", "+00:00", "Etc/UTC"):
            column = column.cast(pa.timestamp(column.type.unit))
        columns.append(column)
    naive = pa.Table.from_arrays(columns, names=table.column_names)
    return naive.to_pandas(types_mapper=mapping.get)


def validate(context: Any, name: str, table: pa.Table, specs: Sequence[ExpectationSpec]) -> GxValidation:
    """Build a suite named ``name`` from ``specs`` and validate ``table`` with it in ``context``."""
    import great_expectations as gx

    started = time.perf_counter()
    frame = to_frame(table)
    converted = time.perf_counter()
    unique = f"{name}_{uuid.uuid4().hex[:8]}"  # one context serves many contracts and repeated runs
    source = context.data_sources.add_pandas(f"{unique}_source")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{unique}_suite"))
    try:
        batch_definition = source.add_dataframe_asset(f"{unique}_asset").add_batch_definition_whole_dataframe(unique)
        for index, spec in enumerate(specs):
            expectation_class = getattr(gx.expectations, spec.expectation)
            suite.add_expectation(expectation_class(**spec.kwargs, meta={"spec": index}))
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        results = batch.validate(suite, result_format="SUMMARY")
    finally:  # nothing accumulates in the shared context
        context.suites.delete(f"{unique}_suite")
        context.data_sources.delete(f"{unique}_source")
    by_index: dict[int, SpecOutcome] = {}
    for result in results.results:
        index = int(result.expectation_config.meta["spec"])
        by_index[index] = SpecOutcome(specs[index], bool(result.success), dict(result.result or {}),
                                      _exception_message(result.exception_info))
    return GxValidation([by_index[i] for i in sorted(by_index)], converted - started,
                        time.perf_counter() - converted)


def _exception_message(info: Any) -> str | None:
    """GX 1.x reports an exception either flat (``raised_exception``) or per metric (a dict of such dicts)."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None
