"""Admission and lifecycle of a real ``feature-platform serve``: overload is shed with 503 at once (never 500) while
admitted requests answer with fallbacks at their deadline; a client over its rate gets 429 with Retry-After; SIGTERM
lets the request in flight finish, stops every worker and exits 0."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from conftest import FEATURES, VIEW, metric, online

pytestmark = pytest.mark.e2e

BODY = {"features": [f"{VIEW}:{name}" for name in FEATURES], "entities": {"user_id": ["u1", "u2"]}}


def _timed(server, headers=None):
    started = time.monotonic()
    response = online(server, BODY, headers=headers)
    return response, time.monotonic() - started


def test_overload_is_shed_at_once_and_admitted_requests_get_fallbacks_at_the_deadline(redis_store, redis,
                                                                                       start_server) -> None:
    server = start_server(redis_store, FP_SERVE__MAX_IN_FLIGHT="2", FP_SERVE__DEADLINE_MS="1500")
    assert online(server, BODY).json()["results"][1]["statuses"] == ["PRESENT", "PRESENT"]
    redis.process.send_signal(signal.SIGSTOP)  # the store stops answering: every read hangs until its deadline
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: _timed(server), range(16)))
    finally:
        redis.process.send_signal(signal.SIGCONT)
    codes = [response.status_code for response, _ in answers]
    assert set(codes) <= {200, 503} and codes.count(503) >= 8, codes
    for response, seconds in answers:
        if response.status_code == 503:
            # at once: well before the deadline (bounds loose enough for a loaded shared machine)
            assert seconds < 1.0 and response.headers["retry-after"] == "1"
        else:  # admitted: answered with the fallbacks once the deadline passed, not left waiting for the store
            assert 1.5 <= seconds < 6.0
            got = response.json()["results"]
            assert got[1]["statuses"] == ["NOT_FOUND", "NOT_FOUND"] and got[1]["values"] == [0, 0]
            assert int(response.headers["x-fallbacks"]) == 2 * len(FEATURES)
    assert metric(server, "fp_serve_shed_total", reason="overload") == codes.count(503)
    assert metric(server, "fp_serve_shed_total", reason="deadline") == codes.count(200)
    # The store is back: so are the stored values.
    assert online(server, BODY).json()["results"][1]["statuses"] == ["PRESENT", "PRESENT"]
    assert metric(server, "fp_serve_requests_total", code="500", route="/get-online-features") == 0


def test_a_client_over_its_rate_gets_429_with_retry_after(sqlite_store, start_server) -> None:
    server = start_server(sqlite_store, FP_SERVE__CLIENT_RATE="1", FP_SERVE__CLIENT_BURST="3")
    codes = [online(server, BODY, headers={"X-Client-Id": "greedy"}) for _ in range(8)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    refused = [r for r in codes if r.status_code == 429]
    assert len(refused) >= 4 and all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert "greedy" in refused[0].json()["detail"]
    assert online(server, BODY, headers={"X-Client-Id": "polite"}).status_code == 200  # others are not affected
    assert metric(server, "fp_serve_shed_total", reason="rate_limit") == len(refused)


def test_sigterm_finishes_the_request_in_flight_and_stops_every_worker(redis_store, redis, start_server) -> None:
    server = start_server(redis_store, FP_SERVE__WORKERS="2", FP_SERVE__DEADLINE_MS="1500")
    main = psutil.Process(server.process.pid)
    workers = main.children(recursive=True)
    assert len(workers) == 2
    # Each worker holds its CPU slot's lock file open in the server's run folder (and is pinned to one CPU).
    run_dirs = {Path(f.path).parent for worker in workers for f in worker.open_files() if "cpu-slot-" in f.path}
    assert len(run_dirs) == 1 and all(path.exists() for path in run_dirs)
    assert all(len(worker.cpu_affinity()) == 1 for worker in workers)
    redis.process.send_signal(signal.SIGSTOP)  # a slow request: it waits for its 1.5 s deadline
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_timed, server)
            time.sleep(0.4)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            response, _ = pending.result(timeout=30)
            assert server.process.wait(timeout=30) == 0
            stopped_after = time.monotonic() - started
    finally:
        redis.process.send_signal(signal.SIGCONT)
    assert response.status_code == 200 and response.json()["results"][1]["statuses"][0] == "NOT_FOUND"
    assert stopped_after < 15
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)
    assert not any(path.exists() for path in run_dirs)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0  # nobody listens any more
