"""The seeded event generator: same seed → same bytes; lines respect the source schema; bad lines are as announced."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.sources.generator import BAD_KINDS, SourceSpec, safe_jitter, write_events


def _contracts(source: str) -> list[Contract]:
    loaded = [load_contract(path).contract for path in sorted((PROJECT_ROOT / "contracts").glob("*.yaml"))]
    return [c for c in loaded if c.source.name == source]


@pytest.mark.parametrize("source", ["transactions", "clicks"])
def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path, source: str) -> None:
    spec = SourceSpec.from_contracts(_contracts(source))
    first = write_events(spec, tmp_path / "a", 2000, files=3, seed=3)
    again = write_events(spec, tmp_path / "b", 2000, files=3, seed=3)
    other = write_events(spec, tmp_path / "c", 2000, files=3, seed=4)
    assert [p.read_bytes() for p in first.files] == [p.read_bytes() for p in again.files]
    assert [p.read_bytes() for p in first.files] != [p.read_bytes() for p in other.files]
    assert not list((tmp_path / "a").glob(".*")), "no hidden temporary file may be left behind"


@pytest.mark.parametrize("source", ["transactions", "clicks"])
def test_lines_follow_the_schema_in_event_time_order_within_the_jitter(tmp_path: Path, source: str) -> None:
    contracts = _contracts(source)
    spec = SourceSpec.from_contracts(contracts)
    jitter = safe_jitter(contracts)
    generated = write_events(spec, tmp_path, 5000, files=2, seed=1, max_jitter=jitter, duration=timedelta(hours=1))
    lines = [line for path in generated.files for line in path.read_text().splitlines()]
    assert len(lines) == generated.lines == 5000
    newest = datetime(2000, 1, 1)
    for line in lines:
        event = json.loads(line)
        assert set(event) == set(spec.columns)
        for name in spec.never_null:
            assert event[name] is not None, name
        for name, column in spec.columns.items():
            value = event[name]
            if value is None:
                continue
            match column.type:
                case "string":
                    assert isinstance(value, str)
                case "int32" | "int64":
                    assert isinstance(value, int)
                case "double" | "float":
                    assert isinstance(value, int | float)
                case "timestamp":
                    assert value.endswith("Z") and "T" in value
        at = datetime.fromisoformat(event[spec.event_time].replace("Z", ""))
        assert at > newest - jitter, "an event is later than the jitter allows: it would count as late"
        newest = max(newest, at)


def test_bad_lines_are_injected_per_kind_without_changing_the_line_count(tmp_path: Path) -> None:
    spec = SourceSpec.from_contracts(_contracts("clicks"))
    generated = write_events(spec, tmp_path, 3000, bad_lines=2, seed=5)
    lines = generated.files[0].read_text().split("\n")[:-1]
    assert len(lines) == 3000
    assert generated.bad_lines == {kind: 2 for kind in BAD_KINDS}
    unparsable = sum(1 for line in lines if not line.startswith("{") or not line.endswith("}"))
    assert unparsable == 4  # 2 truncated objects + 2 empty lines
    assert sum(1 for line in lines if '"yesterday"' in line) == 2


def test_unknown_source_falls_back_to_generic_values_by_type(tmp_path: Path) -> None:
    contract = _contracts("clicks")[0]
    source = contract.source.model_copy(update={"name": "sensor_readings"})
    spec = SourceSpec.from_contracts([contract.model_copy(update={"source": source})])
    generated = write_events(spec, tmp_path, 100, seed=0, null_rate=0.0)
    event = json.loads(generated.files[0].read_text().splitlines()[0])
    assert isinstance(event["dwell_ms"], int) and isinstance(event["price"], float)
    assert event["page_id"].startswith("page_id_")


def test_encoding_in_chunks_on_threads_gives_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes depend on the seed only, not on how the encoding is split over threads (or the files over chunks)."""
    import pipelines.sources.generator as generator

    spec = SourceSpec.from_contracts(_contracts("transactions"))
    whole = write_events(spec, tmp_path / "whole", 5000, files=2, bad_lines=1, seed=9, entities=40)
    monkeypatch.setattr(generator, "ENCODE_CHUNK", 777)
    chunked = write_events(spec, tmp_path / "chunked", 5000, files=2, bad_lines=1, seed=9, entities=40)
    chunked_clean = write_events(spec, tmp_path / "chunked_clean", 5000, files=3, seed=9, entities=40)
    monkeypatch.setattr(generator, "ENCODE_CHUNK", 1 << 20)
    whole_clean = write_events(spec, tmp_path / "whole_clean", 5000, files=3, seed=9, entities=40)
    assert [p.read_bytes() for p in whole.files] == [p.read_bytes() for p in chunked.files]
    assert [p.read_bytes() for p in whole_clean.files] == [p.read_bytes() for p in chunked_clean.files]
    assert sum(p.read_bytes().count(b"\n") for p in chunked_clean.files) == 5000
