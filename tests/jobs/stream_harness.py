"""What the ``stream`` end-to-end tests share: the real CLI as a subprocess, chunks of events, waits, and the checks
against the independent pandas reference of ``test_flink_vs_reference``.

The stream runs as ``feature-platform stream`` in its own session (so a signal the test sends reaches the Python
process only, as ``kill <pid>`` would), with its output in a log file that every failure message ends with. Every
wait is bounded; :meth:`StreamProcess.close` always ends the process (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.feast_sync.online import open_online_store, read_online
from pipelines.sources.generator import DEFAULT_START, SourceSpec, safe_jitter, write_events
from tests.jobs.test_flink_vs_reference import classify, reference_rows

#: Longest wait for any one thing: a JVM start and job deployment took up to 4 minutes on this 2-core machine while
#: seven other engineers ran tests (load average 35-40).
WAIT_S = 600.0
MALFORMED_EVERY = 97
DRIVER = "from pipelines.cli import app; app()"


@dataclass(frozen=True)
class Chunk:
    """One publishable piece of a source's events, in event-time order after the previous chunk."""

    path: Path
    lines: list[str]
    last_event: datetime


def event_chunks(contract: Contract, folder: Path, count: int, events: int, seed: int) -> list[Chunk]:
    """``count`` files of ``events`` lines each, consecutive in event time (40 minutes each, no late event), every
    MALFORMED_EVERY-th line replaced by a line that is not JSON (each unique, so the dead letters can be matched)."""
    spec, jitter = SourceSpec.from_contracts([contract]), safe_jitter([contract])
    chunks: list[Chunk] = []
    for index in range(count):
        begin = DEFAULT_START if not chunks else (chunks[-1].last_event + timedelta(seconds=5)).replace(tzinfo=UTC)
        generated = write_events(spec, folder / f"chunk{index}", events, seed=seed + index,
                                 start=begin, duration=timedelta(minutes=40),
                                 max_jitter=jitter, entities=60)
        (path,) = generated.files
        lines = path.read_text().split("\n")[:-1]
        lines = [f"not json #{index}-{i}" if i % MALFORMED_EVERY == MALFORMED_EVERY // 2 else line
                 for i, line in enumerate(lines)]
        path.write_text("\n".join(lines) + "\n")
        chunks.append(Chunk(path, lines, generated.last_event.replace(tzinfo=None)))
    return chunks


def publish_file(chunk: Chunk, folder: Path, name: str) -> None:
    """Atomically, as the watched folder requires: a hidden name first, then a rename in the same folder."""
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".{name}.tmp"
    hidden.write_text("\n".join(chunk.lines) + "\n")
    hidden.rename(folder / name)


class StreamProcess:
    """``feature-platform stream`` in a subprocess of its own session, logging to ``log``."""

    def __init__(self, env: Mapping[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._handle = log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-c", DRIVER, "stream", "--report-every", "2", *args],
                                        env={**os.environ, **env}, cwd=PROJECT_ROOT, stdout=self._handle,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace")
        useful = [line for line in text.splitlines() if "Deprecat" not in line and not line.startswith("    ")]
        return "\n".join(useful)[-chars:]

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the stream exited ({self.process.returncode}) while waiting for {what}\n"
                                     f"{self.tail()}")
            try:
                if condition():
                    return
            except Exception as error:  # a read racing a commit; the condition must still hold before the deadline
                last_error = error
            time.sleep(1.0)
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last read error: "
                             f"{last_error!r})\n{self.tail()}")

    def terminate_and_wait(self, timeout_s: float = WAIT_S) -> int:
        """SIGTERM to the stream's Python process only; its exit code (the stream must stop within ``timeout_s``)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._handle.close()


def stream_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """One contract's stream at parallelism 1 with 500 ms checkpoints on ``data_dir``."""
    env = {"FP_DATA_DIR": str(data_dir), "FP_PARALLELISM": "1", "FP_CHECKPOINT_INTERVAL_MS": "500",
           "FP_JVM_HEAP": "512m", **extra}
    env.pop("FP_TEST_CRASH_AT", None)
    return env


# ------------------------------------------------------------------------------------------------- reading results
def delta_rows(settings: Settings, contract: Contract) -> pd.DataFrame:
    path = settings.delta_table_path(contract.table_name)
    if not (path / "_delta_log").exists():
        return pd.DataFrame(columns=[*contract.entity.join_keys, "window_end"])
    frame = DeltaTable(str(path)).to_pandas()
    frame["window_end"] = pd.to_datetime(frame["window_end"], utc=True).dt.tz_localize(None).astype("datetime64[ns]")
    return frame


def dead_letter_payloads(settings: Settings, source: str) -> list[str]:
    path = settings.delta_table_path(dead_letters.table_name(source))
    if not (path / "_delta_log").exists():
        return []
    return sorted(DeltaTable(str(path)).to_pandas()["payload"])


def closed_reference(contract: Contract, lines: list[str]) -> pd.DataFrame:
    """The reference rows of every window the watermark has closed once all ``lines`` were read (one reader: the
    watermark is the newest event time minus the allowed lateness)."""
    good, _ = classify(lines, contract)
    expected = reference_rows(good, contract)
    ends = pd.to_datetime(expected["window_end"])
    expected["window_end"] = (ends.dt.tz_localize(None) if ends.dt.tz is not None else ends).astype("datetime64[ns]")
    newest = max(good["_t"])
    return expected[expected["window_end"] <= pd.Timestamp(newest) - contract.source.allowed_lateness] \
        .reset_index(drop=True)


def assert_delta_equals(actual: pd.DataFrame, expected: pd.DataFrame, contract: Contract) -> None:
    keys = [*contract.entity.join_keys, "window_end"]
    assert not actual.duplicated(keys).any(), f"{int(actual.duplicated(keys).sum())} duplicate rows in Delta"
    merged = expected[keys].merge(actual[keys], how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts().to_dict()
    actual = actual.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    for feature in contract.features:
        assert_feature_equal(actual[feature.name], expected[feature.name], feature.aggregation, feature.name)


def assert_feature_equal(got: pd.Series, want: pd.Series, aggregation: str, name: str) -> None:
    got, want = got.reset_index(drop=True), want.reset_index(drop=True)
    assert (got.isna() == want.isna()).all(), f"{name}: NULLs differ"
    present = want.notna()
    if aggregation in ("count", "count_distinct", "last"):
        left = got[present].map(lambda v: str(int(v)) if aggregation != "last" else str(v))
        right = want[present].map(lambda v: str(int(v)) if aggregation != "last" else str(v))
        assert (left.to_numpy() == right.to_numpy()).all(), name
    else:
        np.testing.assert_allclose(got[present].astype(float), want[present].astype(float), rtol=1e-9, err_msg=name)


def newest_per_entity(rows: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    keys = list(contract.entity.join_keys)
    return rows.sort_values([*keys, "window_end"]).groupby(keys, sort=True).tail(1).reset_index(drop=True)


def online_frame(settings: Settings, contract: Contract, entities: pd.DataFrame) -> pd.DataFrame:
    """The online values of ``entities`` (their join-key columns), as Feast reads them."""
    keys = list(contract.entity.join_keys)
    store = open_online_store(settings)
    values = read_online(store, contract, entities[keys].to_dict("records"))
    return pd.DataFrame(values)


def assert_online_equals(settings: Settings, contract: Contract, expected_rows: pd.DataFrame) -> None:
    """The online store holds, for every entity, exactly the newest expected window's values."""
    newest = newest_per_entity(expected_rows, contract)
    online = online_frame(settings, contract, newest)
    for feature in contract.features:
        assert_feature_equal(online[feature.name], newest[feature.name], feature.aggregation, f"online {feature.name}")


def online_has_window_after(settings: Settings, contract: Contract, entities: pd.DataFrame,
                            after: datetime) -> bool:
    """True when some entity's online value comes from a window ending after ``after`` (naive UTC). Feast returns
    each feature's event timestamp (the window end) as epoch seconds under ``<feature>__ts``."""
    keys = list(contract.entity.join_keys)
    store = open_online_store(settings)
    values = read_online(store, contract, entities[keys].drop_duplicates().to_dict("records"),
                         include_event_timestamps=True)
    bound = after.replace(tzinfo=UTC).timestamp()
    stamps = [stamp for feature in contract.features for stamp in values[f"{feature.name}__ts"] if stamp]
    return any(float(stamp) > bound for stamp in stamps)
