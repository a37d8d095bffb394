"""End to end, one real job at parallelism 1: lines of any content, the lateness boundary with a filter, and every
event-time format, each compared with the independent reference of ``test_flink_vs_reference``.

Four sources feed one job (one JVM start for all), each read by a variant of ``user_txn_stats``:

* ``poison``: generated events plus lines no reader may fail on (control bytes incl. U+0001 and NUL, a lone CR, bytes
  that are not UTF-8, a line over the limit, nesting far too deep, escaped control characters in accepted values).
  Each ends under the reason the reference gives it; the dead letters keep at most ``DEAD_LETTER_LINE_CHARS``.
* ``boundary``: ordered events, then a jump of the newest event time (more than the 200 ms after which Flink emits a
  watermark eagerly, so the watermark is exactly ``newest - allowed_lateness``), then events exactly at, 1 ms before
  and 1 ms after that watermark; the contract has a ``source.filter``. At or behind the watermark is ``late_event``.
* ``epoch_s`` / ``epoch_ms`` / ``epoch_us`` and ``iso_offset``: the same generated events with the event time rewritten
  in that format (ISO with random offsets), plus values in a wrong format (``bad_event_time``). The reference
  normalises the times with Python's own datetime arithmetic, then classifies as usual.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.contracts.model import Contract
from pipelines.delta import dead_letters
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.layout import DEAD_LETTER_LINE_CHARS
from pipelines.sources.generator import SourceSpec, safe_jitter, write_events
from tests.jobs.test_flink_vs_reference import RELATIVE_TOLERANCE, _classify_line, reference_rows

pytestmark = pytest.mark.e2e

EVENTS = 1_000
MAX_LINE_BYTES = 10_000
LATENESS = timedelta(seconds=30)
EPOCH = datetime(1970, 1, 1)
FORMATS = ("epoch_s", "epoch_ms", "epoch_us", "iso_offset")


def _variant(name: str, source: str, **changes: object) -> Contract:
    base = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract.model_dump(by_alias=True)
    base["name"] = name
    base["source"].update({"name": source, "allowed_lateness": LATENESS, **changes})
    return Contract.model_validate(base)


def _filter(row: dict) -> bool:
    """The boundary contract's ``source.filter`` (``amount > 20``), evaluated independently."""
    return row.get("amount") is not None and row["amount"] > 20


CONTRACTS = {
    "poison": _variant("poison_stats", "poison"),
    "boundary": _variant("boundary_stats", "boundary", filter="amount > 20"),
    **{fmt: _variant(f"{fmt}_stats", fmt, event_time_format="iso8601" if fmt == "iso_offset" else fmt)
       for fmt in FORMATS},
}


# ------------------------------------------------------------------------------------------------------ reference


def reference_classify(raw_lines: list[bytes], contract: Contract, *, accept=None,
                       to_iso=None) -> tuple[pd.DataFrame, Counter]:
    """``classify`` of the reference for raw bytes: the line-level reasons first (``too_large`` over the byte limit,
    ``invalid_utf8`` for bytes that are not UTF-8 or hold U+FFFD), then the usual rules; ``accept`` is the filter,
    ``to_iso`` rewrites the event time of a parsed object into ISO text (None: not a time in the format)."""
    source = contract.source
    required = [*contract.entity.join_keys, source.event_time]
    required += [n for n, c in source.columns.items() if c.required and n not in required]
    max_seen = None
    good, reasons = [], Counter()
    for raw in raw_lines:
        if len(raw) > MAX_LINE_BYTES:
            reasons["too_large"] += 1
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = None
        if line is None or "\ufffd" in line:
            reasons["invalid_utf8"] += 1
            continue
        if to_iso is not None:
            line = to_iso(line)
        try:  # without the newest time seen: the late rule comes after the filter here
            reason, row, event_time = _classify_line(line, contract, required, None)
        except RecursionError:  # nested deeper than Python's parser goes (Flink's parser refuses it too)
            reason, row, event_time = "malformed_json", {}, None
        if reason is None and accept is not None and not accept(row):
            reason = "filtered"
        if reason is None and max_seen is not None and event_time <= max_seen - source.allowed_lateness:
            reason = "late_event"
        if event_time is not None:
            max_seen = event_time if max_seen is None else max(max_seen, event_time)
        if reason is None:
            good.append(row)
        else:
            reasons[reason] += 1
    return pd.DataFrame(good), reasons


# ---------------------------------------------------------------------------------------------------------- inputs


def _generated(source: str, root: Path, seed: int) -> list[bytes]:
    contract = CONTRACTS[source]
    spec = SourceSpec.from_contracts([contract])
    (path,) = write_events(spec, root / "gen" / source, EVENTS, seed=seed, duration=timedelta(minutes=40),
                           max_jitter=safe_jitter([contract]), entities=50).files
    return path.read_bytes().split(b"\n")[:-1]


def _poison_lines(template: dict) -> list[bytes]:
    good = json.dumps(template).encode()
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    return [
        good.replace(b'"txn_id": "', b'"txn_id": "\x01'),            # U+0001, the old csv delimiter
        good.replace(b'"txn_id": "', b'"txn_id": "\x00'),            # NUL
        good.replace(b'"txn_id": "', b'"txn_id": "a\rb'),            # a lone CR inside a value
        b"\x01\x02\x03",                                              # control bytes only
        good.replace(b'"txn_id": "', b'"txn_id": "\xff\xfe'),       # not UTF-8
        good.replace(b'"txn_id": "', b'"txn_id": "\xed\xa0\x80'),   # an encoded surrogate (not UTF-8)
        good.replace(b'"txn_id": "', b'"txn_id": "' + b"x" * (MAX_LINE_BYTES + 10)),   # too large (valid JSON)
        b"y" * (3 * MAX_LINE_BYTES),                                  # too large, not JSON
        deep,                                                         # nested far too deep (and too large)
        b'{"a":' * 1_500 + b"1" + b"}" * 1_500,                       # nested deeper than the parsers allow
        deep[:MAX_LINE_BYTES // 2] + b"1",                            # deep and cut off: malformed
        (b"[" * 900) + (b"]" * 900),                                  # a deep array: not an object
        good.replace(b'"merchant_id": "', b'"merchant_id": "\\u0001\\u0000'),  # escaped: valid, accepted
        good.replace(b'"txn_id": "', b'"txn_id": "\\r\\n'),         # escaped CR LF in a value: accepted
        good + b"\r",                                                 # CRLF line end: the CR is not part of it
        b"",                                                          # empty line
        b"\xef\xbb\xbf" + good,                                       # a byte-order mark: not JSON
    ]


def _boundary_lines(generated: list[bytes]) -> list[bytes]:
    objects = [json.loads(line) for line in generated]
    newest = max(datetime.fromisoformat(o["event_ts"].replace("Z", "")) for o in objects)
    jump = newest + timedelta(seconds=5)
    template = {**objects[-1], "amount": 50.0}

    def at(moment: datetime, **extra: object) -> bytes:
        text = moment.isoformat(timespec="milliseconds") + "Z"
        return json.dumps({**template, "event_ts": text, **extra}).encode()

    watermark = jump - LATENESS
    return [*generated, at(jump),
            at(watermark), at(watermark - timedelta(milliseconds=1)),            # late: at and behind the watermark
            at(watermark + timedelta(milliseconds=1)),                             # on time by 1 ms
            at(watermark + timedelta(milliseconds=1), amount=20.0),                # on time but filtered
            at(watermark, amount=1.0),                                             # filtered wins over late
            at(jump + timedelta(milliseconds=100))]


def _in_format(fmt: str, moment: datetime, rng: np.random.Generator) -> object:
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    match fmt:
        case "epoch_s":
            value = Decimal(micros) / 1_000_000
            return float(value) if rng.random() < 0.5 else str(value)
        case "epoch_ms":
            return micros // 1000 if rng.random() < 0.5 else str(Decimal(micros) / 1000)
        case "epoch_us":
            return micros if rng.random() < 0.5 else str(micros)
    minutes = int(rng.integers(-12 * 60, 14 * 60))
    offset = timedelta(minutes=minutes)
    sign = "+" if minutes >= 0 else "-"
    hh, mm = divmod(abs(minutes), 60)
    return (moment + offset).isoformat(timespec="milliseconds") + f"{sign}{hh:02d}:{mm:02d}"


def _from_format(fmt: str, value: object) -> str | None:
    """The reference's own reading of a value in ``fmt`` as ISO text in UTC (None: not a valid value)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        if fmt == "iso_offset":
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            moment = parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
        else:
            number = Decimal(str(value))
            exact = number * {"epoch_s": 1000, "epoch_ms": 1, "epoch_us": Decimal("0.001")}[fmt]
            if not 0 <= exact <= 253_402_300_799_999:
                return None
            moment = EPOCH + timedelta(milliseconds=int(exact))
    except (ValueError, ArithmeticError):
        return None
    return moment.isoformat(sep=" ", timespec="milliseconds")


def _format_lines(fmt: str, generated: list[bytes], seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    lines = []
    for raw in generated:
        obj = json.loads(raw)
        moment = datetime.fromisoformat(obj["event_ts"].replace("Z", ""))
        lines.append(json.dumps({**obj, "event_ts": _in_format(fmt, moment, rng)}).encode())
    template = json.loads(lines[-1])
    wrong = ["2026-01-01T00:00:00Z", "-5", "abc", True, "1e400"] if fmt != "iso_offset" else \
        ["yesterday", "1767225600", "2026-01-01T00:00:00+ab:cd"]
    # valid times AT the rowtime's sentinel instant (1970-01-01 00:00:00 UTC, what an unparsable time becomes in
    # _rowtime): they must stay valid (here far behind the watermark: late_event), never bad_event_time, whatever
    # rule reads the rowtime (a rule testing `_rowtime = sentinel` first was tried, docs/performance.md)
    sentinel = [0, "0", 0.0] if fmt != "iso_offset" else ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00.000+01:00"]
    return [*lines, *(json.dumps({**template, "event_ts": value}).encode() for value in [*wrong, *sentinel])]


def _iso_rewriter(fmt: str):
    def rewrite(line: str) -> str:
        try:
            obj = json.loads(line)
        except ValueError:
            return line
        if not isinstance(obj, dict) or "event_ts" not in obj:
            return line
        return json.dumps({**obj, "event_ts": _from_format(fmt, obj["event_ts"]) or "not a time"})
    return rewrite


# ------------------------------------------------------------------------------------------------------------ run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Settings, dict[str, list[bytes]]]:
    root = tmp_path_factory.mktemp("line_edge_cases")
    inputs: dict[str, list[bytes]] = {}
    generated = _generated("poison", root, seed=3)
    inputs["poison"] = [*generated, *_poison_lines(json.loads(generated[-1]))]
    inputs["boundary"] = _boundary_lines(_generated("boundary", root, seed=4))
    for i, fmt in enumerate(FORMATS):
        inputs[fmt] = _format_lines(fmt, _generated(fmt, root, seed=10 + i), seed=20 + i)
    folders = {}
    for source, lines in inputs.items():
        folder = root / "events" / source
        folder.mkdir(parents=True)
        (folder / f"{source}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        folders[source] = folder
    settings = Settings(data_dir=root / "data", parallelism=1, max_line_bytes=MAX_LINE_BYTES)
    summary = run_contracts(list(CONTRACTS.values()), folders, settings)
    return summary, settings, inputs


def _expected(source: str, lines: list[bytes]) -> tuple[pd.DataFrame, Counter]:
    contract = CONTRACTS[source]
    if source == "boundary":
        return reference_classify(lines, contract, accept=_filter)
    if source in FORMATS:
        return reference_classify(lines, contract, to_iso=_iso_rewriter(source))
    return reference_classify(lines, contract)


@pytest.mark.parametrize("source", list(CONTRACTS))
def test_every_line_ends_accepted_or_under_the_reference_reason(run, source: str) -> None:
    summary, _settings, inputs = run
    contract = CONTRACTS[source]
    good, reasons = _expected(source, inputs[source])
    table_run = next(t for t in summary.tables if t.table == contract.table_name)
    assert table_run.input_lines == len(inputs[source])
    assert dict(table_run.dead_letters) == dict(sorted(reasons.items())), source
    assert table_run.events_accepted == len(good), source
    assert table_run.balanced
    if source == "poison":
        assert {"too_large", "invalid_utf8", "malformed_json"} <= set(reasons)
    if source == "boundary":
        assert reasons["late_event"] == 2 and reasons["filtered"] >= 2, reasons
    if source in FORMATS:
        assert reasons["bad_event_time"] >= 3, reasons


@pytest.mark.parametrize("source", list(CONTRACTS))
def test_delta_rows_equal_the_reference(run, source: str) -> None:
    _summary, settings, inputs = run
    contract = CONTRACTS[source]
    good, _ = _expected(source, inputs[source])
    expected = reference_rows(good, contract)
    actual = DeltaTable(str(settings.delta_table_path(contract.table_name))).to_pandas()
    keys = [*contract.entity.join_keys, "window_end"]
    for frame in (actual, expected):
        for column in ("window_start", "window_end"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
        frame.sort_values(keys, inplace=True, ignore_index=True)
    assert len(actual) == len(expected), source
    assert (actual[keys] == expected[keys]).all(axis=None), source
    for feature in contract.features:
        got, want = actual[feature.name], expected[feature.name]
        assert (got.isna() == want.isna()).all(), f"{source}.{feature.name}"
        present = want.notna()
        if feature.aggregation in ("count", "count_distinct"):
            assert (got.astype("int64") == want.astype("int64")).all(), f"{source}.{feature.name}"
        elif feature.aggregation == "last":
            assert (got[present].to_numpy() == want[present].to_numpy()).all(), f"{source}.{feature.name}"
        else:
            np.testing.assert_allclose(got[present].astype(float), want[present].astype(float),
                                       rtol=RELATIVE_TOLERANCE, atol=0, err_msg=f"{source}.{feature.name}")


def test_dead_letters_keep_a_bounded_prefix_of_each_raw_line(run) -> None:
    _summary, settings, _inputs = run
    table = DeltaTable(str(settings.delta_table_path(dead_letters.table_name("poison")))).to_pandas()
    assert len(table) > 0
    assert table["payload"].str.len().max() <= DEAD_LETTER_LINE_CHARS
    too_large = table[table["reason"] == "too_large"]["payload"]
    assert len(too_large) == 3 and (too_large.str.len() == DEAD_LETTER_LINE_CHARS).all()
    control = table[table["payload"].str.contains("\x01", regex=False)]
    assert set(control["reason"]) == {"malformed_json"}
