"""The corpus of broken contracts: one file per rule, each saying in its first lines exactly what must be reported.

Every file in ``broken/`` starts with one or more ``# expect: <line>:<column> <rule-id>`` lines; the test asserts that
checking the file yields exactly those findings (no more, no fewer). A subfolder is checked as a whole, for the rules
that compare contracts with each other, and each of its files carries its own expectations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.contracts.check import RULES, check_contracts
from pipelines.contracts.load import LOADER_RULES

BROKEN = Path(__file__).resolve().parent / "broken"
EXPECT = re.compile(rb"^# expect: (\d+):(\d+) ([a-z-]+)$")


def expectations(file: Path) -> set[tuple[int, int, str]]:
    """Parse the leading ``# expect:`` lines (read as bytes: some corpus files are deliberately not UTF-8)."""
    found = set()
    for line in file.read_bytes().splitlines():
        match = EXPECT.match(line)
        if match is None:
            break
        found.add((int(match.group(1)), int(match.group(2)), match.group(3).decode()))
    assert found, f"{file.name} must start with `# expect: <line>:<column> <rule-id>`"
    return found


CASES = sorted(BROKEN.iterdir())


@pytest.mark.parametrize("target", CASES, ids=[p.name for p in CASES])
def test_broken_contract_reports_exactly_the_expected_findings(target: Path) -> None:
    reports = check_contracts([target])
    files = [target] if target.is_file() else sorted(p for p in target.iterdir() if p.suffix == ".yaml")
    assert sorted(Path(r.file).resolve() for r in reports) == [f.resolve() for f in files]
    for report in reports:
        actual = {(f.line, f.column, f.rule) for f in report.findings}
        assert actual == expectations(Path(report.file)), "\n".join(f.render() for f in report.findings)
        assert all(f.file == report.file and f.message for f in report.findings)


def test_every_rule_has_a_broken_example() -> None:
    covered = {rule for target in BROKEN.rglob("*.yaml") for (_, _, rule) in expectations(target)}
    untestable_here = {"unreadable", "too-large"}  # need a dangling link or a 256 KiB file: see test_contract_load
    assert set(RULES) | (set(LOADER_RULES) - untestable_here) <= covered
    assert covered <= set(RULES) | set(LOADER_RULES), "a corpus file expects a rule id that does not exist"


def test_only_the_listed_rules_are_warnings() -> None:
    warnings = {f.rule for r in check_contracts([BROKEN]) for f in r.findings if f.severity == "warning"}
    assert warnings == {"lateness", "ttl-step"}
