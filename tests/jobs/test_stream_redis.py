"""A Redis restart while ``feature-platform stream`` runs loses nothing.

The stream pushes into a real ``redis-server`` without persistence. After chunk 0's values are online the server is
SIGKILLed (everything in it is gone) and chunk 1 is published while it is down: Delta keeps committing, the pushes
fail and stay pending. The server comes back empty on the same port; the next push finds no version marker and
reloads the whole snapshot. At the end (SIGTERM, exit 0) the store holds, for every entity, exactly the newest window
of the independent reference, and values of windows only chunk 1 could close are there: nothing was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.testing.redis_server import RedisServer
from tests.jobs.stream_harness import (
    StreamProcess,
    assert_online_equals,
    closed_reference,
    delta_rows,
    event_chunks,
    online_has_window_after,
    publish_file,
    stream_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]


def test_a_redis_restart_during_stream_loses_nothing(tmp_path: Path,
                                                     project_contract: Callable[[str], Contract]) -> None:
    contract = project_contract("user_txn_stats")
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    settings = Settings(data_dir=tmp_path / "data", online_store="redis", redis_url=redis.url)
    chunks = event_chunks(contract, tmp_path / "generated", 2, 1_500, seed=5)
    folder = settings.events_dir / contract.source.name
    env = stream_env(settings.data_dir, FP_ONLINE_STORE="redis", FP_REDIS_URL=redis.url)
    stream = StreamProcess(env, tmp_path / "stream.log", "--contract", contract.name)
    try:
        publish_file(chunks[0], folder, "transactions-00000.jsonl")
        stream.wait_for("chunk 0's values online",
                        lambda: len(delta_rows(settings, contract)) > 0 and online_has_window_after(
                            settings, contract, delta_rows(settings, contract), pd.Timestamp("2000-01-01")))

        redis.kill()  # no persistence: every value and the version marker are gone
        publish_file(chunks[1], folder, "transactions-00001.jsonl")
        beyond_chunk0 = pd.Timestamp(chunks[0].last_event)
        stream.wait_for("chunk 1's windows committed to Delta while Redis is down",
                        lambda: (delta_rows(settings, contract)["window_end"] > beyond_chunk0).any())
        time.sleep(2)  # a few failing pushes
        redis.start()

        expected = closed_reference(contract, [line for chunk in chunks for line in chunk.lines])
        stream.wait_for("every closed window in Delta", lambda: len(delta_rows(settings, contract)) >= len(expected))
        stream.wait_for("chunk 1's windows online after the restart",
                        lambda: online_has_window_after(settings, contract, expected, chunks[0].last_event))
        assert stream.terminate_and_wait() == 0, stream.tail()
        log = (tmp_path / "stream.log").read_text(errors="replace")
        assert "not pushed yet" in log, "the outage was never seen by the online push"
        assert_online_equals(settings, contract, expected)  # read from the restarted server the stream refilled
    finally:
        stream.close()
        redis.stop()
