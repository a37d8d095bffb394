"""``feature-platform serve`` over real HTTP against a real store (SQLite file and redis-server): the values Feast's own
``get_online_features`` returns for the same request, TTL and every fallback kind, and every kind of bad request
answered 4xx naming the problem, never 500."""

from __future__ import annotations

import random

import pytest
import requests
from conftest import FEATURES, FRESH, NULLS, STALE, VIEW, by_name, metric, online

pytestmark = pytest.mark.e2e


def _feast(store, features, users, *, full=False):
    from feast.feature_server_utils import convert_response_to_dict

    response = store.feast.get_online_features(features=features, entity_rows={"user_id": users},
                                               full_feature_names=full)
    return convert_response_to_dict(response.proto)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def served(request, tmp_path_factory):
    """(store, server) for each online store; one server per store for the module."""
    from pipelines.testing.serve_process import ServeProcess

    store = request.getfixturevalue(f"{request.param}_store")
    server = ServeProcess({"FP_SERVE__WORKERS": "2", **store.env},
                          log=tmp_path_factory.mktemp("log") / "serve.log")
    server.start()
    yield store, server
    assert server.stop() == 0


def test_fresh_values_equal_feasts_own_read(served) -> None:
    store, server = served
    refs = [f"{VIEW}:{name}" for name in FEATURES]
    users = [*FRESH, NULLS, "u1"]
    ours = online(server, {"features": refs, "entities": {"user_id": users}})
    assert ours.status_code == 200, ours.text
    assert by_name(ours.json()) == by_name(_feast(store, refs, users))
    # Features in the order requested (Feast's order within a view is a set's), entity column first.
    assert ours.json()["metadata"]["feature_names"] == ["user_id", *FEATURES]
    # The stored nulls are served as Feast serves them: PRESENT, null.
    nulls = by_name(ours.json())["last_country_1h"]
    assert (nulls["values"][3], nulls["statuses"][3]) == (None, "PRESENT")


def test_feature_service_with_full_names_equals_feasts_read(served) -> None:
    store, server = served
    ours = online(server, {"feature_service": VIEW, "entities": {"user_id": FRESH}, "full_feature_names": True})
    assert ours.status_code == 200, ours.text
    service = store.feast.get_feature_service(VIEW)
    assert by_name(ours.json()) == by_name(_feast(store, service, FRESH, full=True))
    assert ours.json()["metadata"]["feature_names"] == ["user_id", *(f"{VIEW}__{name}" for name in FEATURES)]


def test_stale_values_are_outside_max_age_with_the_contracts_fallbacks(served) -> None:
    """user_txn_stats: txn_count_5m default 0, amount_sum_5m default 0.0, amount_sum_1h and amount_avg_1h
    last_known, last_country_1h none, amount_max_1h and distinct_merchants_1h no plan (= none)."""
    store, server = served
    refs = [f"{VIEW}:{name}" for name in FEATURES]
    before = metric(server, "fp_serve_fallbacks_total", feature="amount_sum_1h", feature_view=VIEW, kind="last_known")
    response = online(server, {"features": refs, "entities": {"user_id": [STALE]}})
    assert response.status_code == 200
    got = by_name(response.json())
    stored = by_name(_feast(store, refs, [STALE]))  # Feast does not enforce the TTL: it returns the stored values
    assert {name: got[name]["statuses"] for name in FEATURES} == {name: ["OUTSIDE_MAX_AGE"] for name in FEATURES}
    assert got["txn_count_5m"]["values"] == [0]
    assert got["amount_sum_5m"]["values"] == [0.0] and isinstance(got["amount_sum_5m"]["values"][0], float)
    assert got["amount_sum_1h"]["values"] == stored["amount_sum_1h"]["values"] == [70.5 * 12]
    assert got["amount_avg_1h"]["values"] == stored["amount_avg_1h"]["values"]
    for name in ("last_country_1h", "amount_max_1h", "distinct_merchants_1h"):
        assert got[name]["values"] == [None], name
    assert got["txn_count_5m"]["event_timestamps"] == stored["txn_count_5m"]["event_timestamps"]
    assert response.headers["x-fallbacks"] == str(len(FEATURES))
    after = metric(server, "fp_serve_fallbacks_total", feature="amount_sum_1h", feature_view=VIEW, kind="last_known")
    assert after - before >= 1  # another worker may answer /metrics: the samples of every worker are summed
    assert metric(server, "fp_serve_feature_statuses_total", status="OUTSIDE_MAX_AGE") >= len(FEATURES)


def test_missing_entity_is_not_found_with_defaults_and_nulls(served) -> None:
    _, server = served
    response = online(server, {"features": [f"{VIEW}:{name}" for name in FEATURES],
                               "entities": {"user_id": ["nobody", "u1"]}})
    got = by_name(response.json())
    assert {name: got[name]["statuses"][0] for name in FEATURES} == dict.fromkeys(FEATURES, "NOT_FOUND")
    assert got["txn_count_5m"]["values"][0] == 0 and got["amount_sum_5m"]["values"][0] == 0.0
    # last_known has nothing to fall back on; none is null
    assert [got[name]["values"][0] for name in FEATURES[2:]] == [None] * 5
    assert got["txn_count_5m"]["event_timestamps"][0] == "1970-01-01T00:00:00Z"
    assert got["txn_count_5m"]["statuses"][1] == "PRESENT"
    assert metric(server, "fp_serve_fallbacks_total", feature="txn_count_5m", feature_view=VIEW, kind="default") >= 1


def test_unversioned_contract_reference_is_served_by_the_current_major(served) -> None:
    _, server = served
    response = online(server, {"features": ["user_txn_stats:txn_count_5m"], "entities": {"user_id": ["u1"]},
                               "full_feature_names": True})
    assert response.status_code == 200, response.text
    assert response.json()["metadata"]["feature_names"] == ["user_id", "user_txn_stats__txn_count_5m"]
    assert response.json()["results"][1]["values"] == [1]
    assert metric(server, "fp_serve_version_requests_total", contract="user_txn_stats", version="1") >= 1


BAD = [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"features": ["nope_v1:x"], "entities": {"user_id": ["u1"]}}', 400, "nope_v1"),
    (b'{"features": ["user_txn_stats_v1:nope"], "entities": {"user_id": ["u1"]}}', 400, "user_txn_stats_v1:nope"),
    (b'{"features": ["user_txn_stats_v1"], "entities": {"user_id": ["u1"]}}', 400, "view:feature"),
    (b'{"feature_service": "nope", "entities": {"user_id": ["u1"]}}', 400, "nope"),
    (b'{"features": [], "entities": {"user_id": ["u1"]}}', 400, "features"),
    (b'{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {"merchant_id": ["m"]}}', 400, "user_id"),
    (b'{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {"user_id": [7]}}', 400, "user_id"),
    (b'{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {"user_id": ["a"], "x": []}}', 400, "length"),
    (b'{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {}}', 400, "entities"),
    (b'{"features": ["user_txn_stats_v1:txn_count_5m"], "entities": {"user_id": ["u1"]}, '
     b'"full_feature_names": "yes"}', 400, "full_feature_names"),
]


def test_every_bad_request_is_a_4xx_naming_the_problem(sqlite_store, start_server) -> None:
    server = start_server(sqlite_store, FP_SERVE__MAX_ENTITIES="5")
    for body, status, named in BAD:
        response = online(server, body)
        assert (response.status_code, named in response.json()["detail"]) == (status, True), (body, response.text)
    too_many = online(server, {"features": [f"{VIEW}:txn_count_5m"], "entities": {"user_id": ["u"] * 6}})
    assert too_many.status_code == 413 and "limit is 5" in too_many.json()["detail"]
    assert requests.get(server.url + "/get-online-features", timeout=5).status_code == 405
    assert requests.get(server.url + "/nowhere", timeout=5).status_code == 404
    # Garbage of every shape: never a 500.
    rng = random.Random(11)
    pieces = [b"{", b"}", b"[", b"]", b'"features"', b'"entities"', b":", b",", b'"user_id"', b"null", b"1e999",
              b'"\\ud800"', b"true", b"\xff", b'"user_txn_stats_v1:txn_count_5m"', b"-0", b'{"user_id": [1]}']
    for _ in range(200):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert online(server, body).status_code < 500, body
    assert metric(server, "fp_serve_requests_total", code="500", route="/get-online-features") == 0
