"""Dead-letter corpus: every kind of bad event, mixed with good ones, through the real Flink job into Delta.

Each bad line must be in the source's dead-letter table (``dead_letters_<source>``) with the reason the documented
classification gives it (recomputed independently by ``test_flink_vs_reference.classify``), its raw payload and
source file; every good line must be counted in the features (accepted events); the summary and the Prometheus text
carry the counts by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from pipelines.config import PROJECT_ROOT, Settings
from pipelines.contracts.load import load_contract
from pipelines.delta import dead_letters
from pipelines.jobs.compute import RunSummary, run_contracts
from pipelines.jobs.status import collect_status, prometheus_status
from pipelines.sources.generator import BAD_KINDS, SourceSpec, safe_jitter, write_events
from tests.jobs.test_flink_vs_reference import _classify_line, classify

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], RunSummary, Settings, object]:
    contract = load_contract(PROJECT_ROOT / "contracts" / "user_txn_stats.yaml").contract
    root = tmp_path_factory.mktemp("dead_letters")
    spec = SourceSpec.from_contracts([contract])
    generated = write_events(spec, root / "events", 4_000, bad_lines=3, seed=5, duration=timedelta(hours=1),
                             max_jitter=safe_jitter([contract]), entities=100)
    (path,) = generated.files
    lines = path.read_text().split("\n")[:-1]
    template = json.loads(lines[-1])
    lines += [  # wrong types and the odd shapes the generator does not make; at the end, so never late
        json.dumps({**template, "amount": True}), json.dumps({**template, "amount": {"v": 1}}),
        json.dumps({**template, "user_id": None}), json.dumps({**template, "event_ts": 12}),
        "[1, 2, 3]", "{\"user_id\": ", json.dumps({**template, "amount": "7.25"})]
    path.write_text("\n".join(lines) + "\n")
    settings = Settings(data_dir=root / "data", parallelism=2, checkpoint_interval_ms=500)
    summary = run_contracts([contract], {"transactions": path.parent}, settings)
    return lines, summary, settings, contract


def test_each_bad_line_is_in_the_dead_letter_table_with_its_reason(corpus) -> None:
    lines, _summary, settings, contract = corpus
    good, reasons = classify(lines, contract)
    table = DeltaTable(str(settings.delta_table_path(dead_letters.table_name("transactions")))).to_pandas()
    assert dict(Counter(table["reason"])) == dict(reasons)
    assert set(table["contract"]) == {contract.table_name}
    assert table["source_file"].str.endswith("transactions-00000.jsonl").all()
    assert table["processed_at"].notna().all() and table["ingested_at"].notna().all()
    # the raw payload is stored verbatim: the multiset of bad lines equals the multiset of payloads
    good_keys = len(good)
    assert len(table) == len(lines) - good_keys
    assert Counter(table["payload"].fillna("")) == Counter(_bad_lines(lines, contract))
    # every kind the generator injects shows up (late lines as late_event, empty lines as malformed_json)
    assert {"malformed_json", "missing_user_id", "missing_event_ts", "bad_event_time", "bad_amount",
            "late_event"} <= set(reasons), (reasons, BAD_KINDS)


def _bad_lines(lines: list[str], contract) -> list[str]:
    """The lines the reference rejects, one pass with the running maximum event time (as ``classify`` does)."""
    source = contract.source
    required = [*contract.entity.join_keys, source.event_time]
    required += [n for n, c in source.columns.items() if c.required and n not in required]
    max_seen, bad = None, []
    for line in lines:
        reason, _, event_time = _classify_line(line, contract, required, max_seen)
        if event_time is not None:
            max_seen = event_time if max_seen is None else max(max_seen, event_time)
        if reason is not None:
            bad.append(line)
    return bad


def test_every_good_line_is_counted_in_the_features(corpus) -> None:
    lines, summary, _settings, contract = corpus
    good, reasons = classify(lines, contract)
    (table_run,) = summary.tables
    assert table_run.events_accepted == len(good)
    assert dict(table_run.dead_letters) == dict(sorted(reasons.items()))
    assert table_run.balanced and table_run.input_lines == len(lines)


def test_counts_are_in_the_summary_and_the_prometheus_metrics(corpus) -> None:
    """The counts the product reports (run summary, ``status`` from the Delta dead-letter table, and the Prometheus
    text ``feature-platform status --prometheus`` prints) equal the reference's counts of the generated bad lines."""
    lines, summary, settings, contract = corpus
    _, reasons = classify(lines, contract)
    expected = {contract.table_name: dict(sorted(reasons.items()))}
    name = dead_letters.table_name("transactions")

    data = summary.to_dict()
    assert data["dead_letter_tables"][name]["by_contract"] == expected
    assert data["dead_letter_tables"][name]["rows_written"] == sum(reasons.values())
    assert data["dead_letters"] == expected

    assert dead_letters.dead_letter_counts(settings.delta_table_path(name)) == expected
    status = collect_status(settings, [contract])
    assert status.dead_letter_tables[name]["by_contract"] == expected
    assert status.dead_letter_tables[name]["table"].rows == sum(reasons.values())

    samples = {}
    for family in text_string_to_metric_families(prometheus_status(status)):
        if family.name == "feature_platform_dead_letters":
            for sample in family.samples:
                key = (sample.labels["source"], sample.labels["contract"], sample.labels["reason"])
                assert key not in samples, key
                samples[key] = sample.value
    assert samples == {("transactions", contract.table_name, reason): float(n) for reason, n in reasons.items()}
