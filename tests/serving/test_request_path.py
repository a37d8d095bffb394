"""The request path's pure steps without a server: Feast's byte formats read back exactly, request validation, and
the TTL/fallback table (with the time passed in, no sleeping)."""

from __future__ import annotations

import math

import orjson
import pyarrow as pa
import pytest

from pipelines.feast_sync.online_encoding import encode_entity_keys, encode_values, timestamp_proto
from pipelines.serving.catalog import Catalog
from pipelines.serving.fallbacks import Tally, serve_group
from pipelines.serving.request import BadRequest, parse_request
from pipelines.serving.resolve import NewestMajorRouter, resolve
from pipelines.serving.stores import Stored, parse_redis_url
from pipelines.serving.values import KeyEncoder, decode_value, timestamp_proto_seconds, timestamp_text


@pytest.fixture(scope="module")
def catalog(project_contract) -> Catalog:
    return Catalog.of([project_contract("user_txn_stats")], "feature_platform")


def test_values_decode_to_what_feasts_server_returns() -> None:
    cases = {"double": ([1.5, -0.0, None, 1e300, math.inf, -math.inf], pa.float64()),
             "int64": ([0, 1, 127, 128, 16384, -1, None, 2**62, -(2**63)], pa.int64()),
             "string": (["a", "", None, "é" * 100, "x" * 300], pa.string()),
             "boolean": ([True, False, None], pa.bool_())}
    for kind, (values, arrow_type) in cases.items():
        encoded = encode_values(pa.array(values, arrow_type), kind)  # byte-identical to Feast's (feast_sync tests)
        expected = [("Infinity" if v > 0 else "-Infinity") if isinstance(v, float) and math.isinf(v) else v
                    for v in values]
        assert [decode_value(raw) for raw in encoded] == expected, kind


def test_entity_keys_and_timestamps_match_feasts_encoding() -> None:
    rows = pa.table({"user_id": ["u1", "ü-2"], "n": pa.array([7, -3], pa.int64())})
    expected = encode_entity_keys(rows, ["user_id", "n"], ["string", "int64"])
    encoder = KeyEncoder(("user_id", "n"), ("string", "int64"))
    assert encoder.keys({"user_id": ["u1", "ü-2"], "n": [7, -3]}, [0, 1]) == expected
    for micros in (0, 1_700_000_000_000_000, 1_700_000_000_123_000, 1_700_000_000_000_001):
        assert timestamp_proto_seconds(timestamp_proto(micros)) == (micros // 10**6, micros % 10**6 * 1000)
    assert timestamp_text(0) == "1970-01-01T00:00:00Z"
    assert timestamp_text(1_700_000_000, 123_000_000) == "2023-11-14T22:13:20.123Z"
    assert timestamp_text(1_700_000_000, 1_000) == "2023-11-14T22:13:20.000001Z"


def test_redis_url_is_read_like_feasts_connection_string() -> None:
    assert parse_redis_url("10.0.0.5:6380,db=2,password=s3cret") == {"host": "10.0.0.5", "port": 6380, "db": 2,
                                                                     "password": "s3cret"}


@pytest.mark.parametrize(("body", "status", "named"), [
    (b"{", 400, "malformed JSON"),
    (b'{"features": ["v:f"], "entities": {"user_id": ["a", "b", "c"]}}', 413, "limit is 2"),
    (b'{"features": "v:f", "entities": {"user_id": ["a"]}}', 400, "features"),
    (b'{"feature_service": 3, "entities": {"user_id": ["a"]}}', 400, "feature_service"),
])
def test_bad_requests_name_the_problem(body: bytes, status: int, named: str) -> None:
    with pytest.raises(BadRequest) as error:
        parse_request(body, max_entities=2)
    assert error.value.status == status and named in error.value.message


def test_resolve_names_unknown_views_features_and_mistyped_keys(catalog) -> None:
    def plan(features, users, full=False):
        body = {"features": features, "entities": {"user_id": users}, "full_feature_names": full}
        return resolve(parse_request(orjson.dumps(body), max_entities=10), catalog, NewestMajorRouter())

    assert plan(["user_txn_stats:txn_count_5m"], ["a"], full=True).output_names == ["user_txn_stats__txn_count_5m"]
    for features, users, named in ((["nope_v1:x"], ["a"], "nope_v1"), (["user_txn_stats_v1:x"], ["a"], ":x"),
                                   (["user_txn_stats_v1:txn_count_5m"], [1], "must be a string"),
                                   (["user_txn_stats_v1:txn_count_5m", "user_txn_stats:txn_count_5m"], ["a"],
                                    "full_feature_names")):
        with pytest.raises(BadRequest, match=named):
            plan(features, users)


def test_ttl_and_each_fallback_kind(catalog) -> None:
    """TTL 1 day. fresh: PRESENT; stale: OUTSIDE_MAX_AGE with default / last_known / none; missing: NOT_FOUND."""
    view = catalog.views["user_txn_stats_v1"]
    names = ["txn_count_5m", "amount_sum_1h", "last_country_1h"]  # default 0, last_known, none
    body = {"features": [f"user_txn_stats_v1:{n}" for n in names], "entities": {"user_id": ["fresh", "old", "x"]}}
    group = resolve(parse_request(orjson.dumps(body), max_entities=10), catalog,
                    NewestMajorRouter()).groups[0]
    now = 2_000_000_000.0
    values = {"txn_count_5m": encode_values(pa.array([5], pa.int64()), "int64")[0],
              "amount_sum_1h": encode_values(pa.array([9.5]), "double")[0],
              "last_country_1h": encode_values(pa.array(["DE"]), "string")[0]}
    rows = [Stored(int(now) - 60, 0, values), Stored(int(now - view.ttl_seconds) - 1, 0, values), None]
    tally = Tally()
    count, amount, country = serve_group(group, rows, now, tally)
    assert count.statuses == amount.statuses == country.statuses == ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert count.values == [5, 0, 0]  # default
    assert amount.values == [9.5, 9.5, None]  # last_known: the stored value when stale; nothing when missing
    assert country.values == ["DE", None, None]  # none
    assert country.timestamps[2] == "1970-01-01T00:00:00Z"
    assert tally.fallbacks == {("user_txn_stats_v1", "txn_count_5m", "default"): 2,
                               ("user_txn_stats_v1", "amount_sum_1h", "last_known"): 2,
                               ("user_txn_stats_v1", "last_country_1h", "none"): 2}
    assert tally.versions == {("user_txn_stats", 1): 3}
