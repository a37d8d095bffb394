"""A bounded Kafka run saves the offsets it pinned with the run; a resumed run reads exactly those again."""

from __future__ import annotations

from pathlib import Path

from pipelines.jobs.compute import _remember_pins, _repinned
from pipelines.jobs.run_state import load_run_state
from pipelines.sources.location import FileSource, KafkaSource


def _pinned(start: dict[int, int], stop: dict[int, int]) -> KafkaSource:
    return KafkaSource("t", "127.0.0.1:9092", "g", startup_mode="specific-offsets", start_offsets=start,
                       bounded_mode="specific-offsets", stop_offsets=stop)


def test_the_first_attempts_pins_are_saved_once_and_survive_a_reload(tmp_path: Path) -> None:
    state = load_run_state(tmp_path, "r")
    _remember_pins(state, {"tx": _pinned({0: 3, 1: 0}, {0: 10, 1: 7}), "files": FileSource("file:///e")}, tmp_path)
    _remember_pins(state, {"tx": _pinned({0: 10, 1: 7}, {0: 99, 1: 99})}, tmp_path)  # a later attempt: kept as is
    reloaded = load_run_state(tmp_path, "r")
    assert reloaded.pinned_offsets == {"tx": {"start": {"0": 3, "1": 0}, "stop": {"0": 10, "1": 7}}}


def test_a_resumed_run_reads_the_saved_offsets_instead_of_the_log_end() -> None:
    live = KafkaSource("t", "127.0.0.1:9092", "g", bounded_mode="latest-offset")
    again = _repinned(live, {"start": {"0": 3, "1": 0}, "stop": {"0": 10, "1": 7}})
    assert isinstance(again, KafkaSource)
    assert (again.startup_mode, again.bounded_mode) == ("specific-offsets", "specific-offsets")
    assert again.start_offsets == {0: 3, 1: 0} and again.stop_offsets == {0: 10, 1: 7}
    assert _repinned(live, None) is live
    assert _repinned(Path("/events"), {"start": {}, "stop": {}}) == Path("/events")
