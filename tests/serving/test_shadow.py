"""Shadow comparison without a server: the per-entity outcomes and comparisons (values in Feast's byte format, the
time passed in), and the bound on in-flight shadow reads over a real SQLite online store."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest
from prometheus_client import REGISTRY

from pipelines.feast_sync.online_encoding import encode_values
from pipelines.feast_sync.store import online_store_path
from pipelines.serving.catalog import ViewSpec, view_spec
from pipelines.serving.outcomes import FLOAT_REL_TOL, compare, entity_outcome, same_value
from pipelines.serving.shadow import ShadowReads
from pipelines.serving.stores import Lookup, SqliteReader, Stored
from pipelines.serving.values import KeyEncoder

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def view(project_contract) -> ViewSpec:
    return view_spec(project_contract("user_txn_stats"), "feature_platform")


def double(value: float) -> bytes:
    return encode_values(pa.array([value], pa.float64()), "double")[0]


def count(value: int) -> bytes:
    return encode_values(pa.array([value], pa.int64()), "int64")[0]


def row(age_s: float = 0.0, **values: bytes) -> Stored:
    return Stored(int(NOW - age_s), 0, dict(values))


FEATURES = ("txn_count_5m", "amount_sum_5m")


def test_entity_outcomes(view: ViewSpec) -> None:
    ttl = view.ttl_seconds
    assert entity_outcome(view, row(txn_count_5m=count(1), amount_sum_5m=double(2.0)), FEATURES, NOW) == "present"
    assert entity_outcome(view, None, FEATURES, NOW) == "missing"
    assert entity_outcome(view, row(ttl + 1, txn_count_5m=count(1), amount_sum_5m=double(2)), FEATURES, NOW) == \
        "missing"  # older than the TTL: no live value
    assert entity_outcome(view, row(txn_count_5m=count(1)), FEATURES, NOW) == "fallback"


def test_comparisons_and_differences(view: ViewSpec) -> None:
    full = row(txn_count_5m=count(3), amount_sum_5m=double(10.0))
    assert compare(view, full, view, row(txn_count_5m=count(3), amount_sum_5m=double(10.0)), FEATURES, NOW) == (
        "match", [])
    assert compare(view, full, view, row(txn_count_5m=count(4), amount_sum_5m=double(11.0)), FEATURES, NOW) == (
        "differ", [("txn_count_5m", "different"), ("amount_sum_5m", "different")])
    assert compare(view, full, view, row(amount_sum_5m=double(10.0)), FEATURES, NOW) == (
        "differ", [("txn_count_5m", "stable_only")])
    assert compare(view, row(amount_sum_5m=double(10.0)), view, full, FEATURES, NOW) == (
        "differ", [("txn_count_5m", "candidate_only")])
    assert compare(view, full, view, None, FEATURES, NOW)[0] == "candidate_missing"
    assert compare(view, None, view, full, FEATURES, NOW)[0] == "stable_missing"
    assert compare(view, None, view, row(view.ttl_seconds + 5, **full.values), FEATURES, NOW)[0] == "both_missing"


def test_floats_are_equal_within_the_documented_tolerance() -> None:
    assert same_value(100.0, 100.0 * (1 + FLOAT_REL_TOL / 10))
    assert not same_value(100.0, 100.0 * (1 + FLOAT_REL_TOL * 10))
    assert same_value(3, 3.0) and not same_value(3, 4)
    assert not same_value(True, 1) and same_value("FR", "FR") and not same_value("FR", "DE")


def test_in_flight_shadow_reads_are_capped_and_the_excess_counted(sqlite_store) -> None:
    view = view_spec(sqlite_store.contract, "feature_platform")
    reader = SqliteReader(online_store_path(sqlite_store.settings), busy_timeout_s=0.02)
    labels = {"contract": view.contract}

    def value(name: str, **extra: str) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    dropped, matched = value("fp_rollout_shadow_dropped_total"), value("fp_rollout_shadow_comparisons_total",
                                                                         outcome="match")

    async def run() -> list[bool]:
        shadow = ShadowReads(reader, lambda v: KeyEncoder(v.join_keys, v.key_types), max_in_flight=1, sample=1.0,
                             deadline_s=1.0, child=lambda metric, *names: metric.labels(*names))
        entities = {"user_id": ["u1", "u2"]}
        keys = KeyEncoder(view.join_keys, view.key_types).keys(entities, [0, 1])
        stored = (await reader.read([Lookup(view, keys, FEATURES)]))[0]
        started = [shadow.submit(view, view, FEATURES, entities, 2, stored, 0.001) for _ in range(3)]
        while shadow.in_flight:
            await asyncio.sleep(0.01)
        return started

    try:
        assert asyncio.run(run()) == [True, False, False]  # the first holds the only slot until the loop runs it
    finally:
        asyncio.run(reader.close())
    assert value("fp_rollout_shadow_dropped_total") - dropped == 4  # two requests of two entities
    assert value("fp_rollout_shadow_comparisons_total", outcome="match") - matched == 2  # v1 against itself


def test_sampling_zero_shadows_nothing(view: ViewSpec) -> None:
    shadow = ShadowReads(None, lambda v: KeyEncoder(v.join_keys, v.key_types),  # type: ignore[arg-type]
                         max_in_flight=4, sample=0.0, deadline_s=1.0,
                         child=lambda metric, *names: metric.labels(*names))
    assert not shadow.submit(view, view, FEATURES, {"user_id": ["u1"]}, 1, [None], 0.001)
    assert shadow.in_flight == 0
