"""The done-when test of ``feature-check --base``: a pull request (base commit + head commit in a temporary git repo).

Each breaking-change rule fires with the expected severity, in the expected file, on the line that holds the change
(checked against the text of that line, not against the loader's bookkeeping); version discipline catches wrong bumps;
suppressions are scoped and reported; every output format is produced and JSON and SARIF validate against schemas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from pipelines.feature_check.compat.rules import COMPAT_RULES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prshape import git, pull_request

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("feature-check")
HEAVY = ("pyflink", "feast", "great_expectations", "pandas", "pyarrow", "deltalake", "metadata", "numpy", "typer")

#: rule → (severity, file, text on the reported line). Every compat rule must appear here.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "contract-deleted": ("error", "contracts/gone.yaml", ""),
    "contract-renamed": ("error", "contracts/ren.yaml", "name: ren_new"),
    "contract-added": ("info", "contracts/new.yaml", "name: new"),
    "contract-deprecated": ("info", "contracts/minor.yaml", "deprecated: true"),
    "feature-deleted": ("error", "contracts/full.yaml", "features:"),
    "feature-renamed": ("error", "contracts/full.yaml", "name: f_ren2"),
    "feature-added": ("info", "contracts/full.yaml", "name: f_new"),
    "feature-deprecated": ("info", "contracts/full.yaml", "deprecated: true"),
    "reserved-deleted": ("error", "contracts/full.yaml", "reserved:"),
    "reserved-reused": ("error", "contracts/full.yaml", "name: r_used"),
    "feature-type-changed": ("error", "contracts/full.yaml", "type: int64"),
    "feature-type-widened": ("error", "contracts/full.yaml", "type: double"),
    "column-type-changed": ("error", "contracts/full.yaml", "code: int64"),
    "column-type-widened": ("info", "contracts/full.yaml", "n: int64"),
    "entity-changed": ("error", "contracts/full.yaml", "join_keys:"),
    "feature-aggregation-changed": ("error", "contracts/full.yaml", "aggregation: max"),
    "feature-window-changed": ("error", "contracts/full.yaml", "window:"),
    "feature-column-changed": ("error", "contracts/full.yaml", "column: amount"),
    "feature-unit-changed": ("error", "contracts/full.yaml", "unit: USD"),
    "event-time-changed": ("error", "contracts/full.yaml", "event_time: ts2"),
    "source-changed": ("error", "contracts/full.yaml", "name: src_full2"),
    "required-changed": ("error", "contracts/full.yaml", "channel:"),
    "fallback-changed": ("error", "contracts/full.yaml", "f_count:"),
    "fallback-added": ("warning", "contracts/full.yaml", "f_sum:"),
    "constraint-tightened": ("error", "contracts/full.yaml", "filter: amount > 0"),
    "constraint-loosened": ("warning", "contracts/full.yaml", "allowed_lateness: 30s"),
    "sla-loosened": ("warning", "contracts/full.yaml", "freshness: 2m"),
    "sla-tightened": ("info", "contracts/full.yaml", "null_rate_max: 0.05"),
    "ttl-changed": ("warning", "contracts/full.yaml", "ttl: 2d"),
    "online-serving-removed": ("error", "contracts/full.yaml", "online: false"),
    "online-serving-added": ("info", "contracts/minor.yaml", "online: true"),
    "compatibility-loosened": ("warning", "contracts/full.yaml", "compatibility: BACKWARD"),
    "compatibility-tightened": ("info", "contracts/minor.yaml", "compatibility: FULL"),
    "metadata-changed": ("info", "contracts/full.yaml", "description: The full features, now described"),
    "version-not-bumped": ("error", "contracts/full.yaml", "version: 1.0.0"),
    "version-bump-mismatch": ("error", "contracts/minor.yaml", "version: 2.0.0"),
}


def feature_check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([str(SCRIPT), *args], cwd=repo, capture_output=True, text=True, timeout=120, check=False,
                          env=env)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pr") / "repo"
    pull_request(path)
    return path


@pytest.fixture(scope="module")
def outputs(repo: Path) -> dict[str, object]:
    out = repo.parent / "out"
    out.mkdir(exist_ok=True)
    result = feature_check(repo, "contracts", "--base", "base", "--format", "json",
                           *(f"--format={fmt}={out / fmt}" for fmt in ("text", "markdown", "github", "junit", "sarif")))
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    texts = {fmt: (out / fmt).read_text() for fmt in ("text", "markdown", "github", "junit", "sarif")}
    return {"json": json.loads(result.stdout), **texts}


def test_every_compat_rule_is_exercised() -> None:
    assert set(EXPECTED) == set(COMPAT_RULES)


def test_each_rule_fires_with_its_severity_file_and_line(repo: Path, outputs: dict[str, object]) -> None:
    document = outputs["json"]
    found = [f for c in document["contracts"] for f in c["findings"]]  # type: ignore[index]
    for rule, (severity, file, text) in EXPECTED.items():
        hits = [f for f in found if f["rule"] == rule and f["severity"] == severity and f["file"] == file]
        assert hits, f"{rule}: no {severity} finding in {file}; got {[f for f in found if f['rule'] == rule]}"
        lines = (repo / file).read_text().splitlines() if (repo / file).exists() else []
        on_line = [f for f in hits if not text or (0 < f["line"] <= len(lines) and text in lines[f["line"] - 1])]
        assert on_line, f"{rule}: expected on a line containing {text!r}, got lines {[f['line'] for f in hits]}"


def test_compatibility_mode_and_major_bump_change_the_grade(outputs: dict[str, object]) -> None:
    by_file = {c["file"]: c for c in outputs["json"]["contracts"]}  # type: ignore[index]
    wid = {f["rule"]: f["severity"] for f in by_file["contracts/wid.yaml"]["findings"]}
    assert wid["feature-type-widened"] == "warning"  # BACKWARD does not promise old readers; FULL does (error)
    major = by_file["contracts/major.yaml"]
    assert [(f["rule"], f["severity"]) for f in major["findings"]] == [("feature-deleted", "info")]
    assert major["ok"] is True and major["change"]["required_bump"] == "major"
    assert "feature-platform rollout start" in major["change"]["rollout_plan"]  # the new major's rollout, stated
    old = by_file["contracts/old.yaml"]["findings"]
    assert [(f["rule"], f["severity"]) for f in old] == [("contract-deleted", "info")]  # deprecated first


def test_version_discipline(outputs: dict[str, object]) -> None:
    by_file = {c["file"]: c for c in outputs["json"]["contracts"]}  # type: ignore[index]
    assert by_file["contracts/full.yaml"]["change"] == {"name": "full", "base_version": "1.0.0",
                                                        "head_version": "1.0.0", "required_bump": "major",
                                                        "declared_bump": "none", "rollout_plan": None}
    minor = next(f for f in by_file["contracts/minor.yaml"]["findings"] if f["rule"] == "version-bump-mismatch")
    assert "major bump, but the changes are minor" in minor["message"] and "declare 1.1.0" in minor["message"]
    wid = next(f for f in by_file["contracts/wid.yaml"]["findings"] if f["rule"] == "version-bump-mismatch")
    assert "minor bump, but the changes are major" in wid["message"] and "declare 2.0.0" in wid["message"]


def test_json_validates_against_its_schema(outputs: dict[str, object]) -> None:
    schema = json.loads((ROOT / "docs" / "feature-check.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(outputs["json"], schema)
    assert outputs["json"]["base"]["ref"] == "base"  # type: ignore[index]


def test_sarif_validates_and_locates_results(outputs: dict[str, object]) -> None:
    schema = json.loads((Path(__file__).parent / "sarif-2.1.0-subset.schema.json").read_text())
    sarif = json.loads(str(outputs["sarif"]))
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(sarif)
    results = sarif["runs"][0]["results"]
    rules = [r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    renamed = next(r for r in results if r["ruleId"] == "contract-renamed")
    assert renamed["level"] == "error"
    assert renamed["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "contracts/ren.yaml", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 1, "startColumn": 7}}
    assert {r["level"] for r in results} == {"error", "warning", "note"}


def test_text_markdown_github_and_junit(outputs: dict[str, object]) -> None:
    text = str(outputs["text"])
    assert "contracts/ren.yaml:1:7: error [contract-renamed] name: contract `ren` was renamed" in text
    assert text.splitlines()[-1].startswith("8 contracts checked against base: 3 passed, 5 failed;")
    markdown = str(outputs["markdown"])
    assert markdown.startswith("## ❌ **feature-check failed** against `base`")
    assert "| `full` | 1.0.0 | 1.0.0 | major | none |" in markdown
    github = str(outputs["github"]).splitlines()
    assert "::error file=contracts/ren.yaml,line=1,col=7,title=feature-check [contract-renamed]::name: contract" \
           in "\n".join(github)
    assert any(line.startswith("::notice file=contracts/new.yaml,line=1,col=7,") for line in github)
    suite = ET.fromstring(str(outputs["junit"]).split("\n", 1)[1])
    cases = suite.findall("./testsuite/testcase")
    assert len(cases) == 8
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert failed == {"full", "minor", "ren_new", "wid", "gone"}


def test_fail_on_levels(repo: Path) -> None:
    clean = ["contracts/new.yaml", "contracts/major.yaml"]  # infos only, and an info with a major bump
    assert feature_check(repo, *clean, "--base", "base").returncode == 0
    assert feature_check(repo, "contracts/wid.yaml", "--base", "base", "--fail-on", "never").returncode == 0
    assert feature_check(repo, "contracts/wid.yaml", "--base", "base").returncode == 1
    lateness_only = feature_check(repo, "contracts/gone.yaml", "--base", "base", "--fail-on", "warning")
    assert lateness_only.returncode == 2  # gone.yaml does not exist in the head: a usage error, not a pass


def test_suppressions_are_scoped_reported_and_unused_ones_warn(repo: Path) -> None:
    (repo / "feature-check-suppressions.yaml").write_text(
        "suppressions:\n"
        "  - rule: feature-type-widened\n    contract: wid\n"
        "    reason: The only reader casts to double already (PR 7).\n"
        "  - rule: feature-type-widened\n    contract: full\n    path: features[2]\n"
        "    reason: Scoped to one feature of one contract.\n"
        "  - rule: ttl-changed\n    contract: nobody\n    reason: Left behind after a revert.\n")
    try:
        result = feature_check(repo, "contracts", "--base", "base", "--format", "json")
    finally:
        (repo / "feature-check-suppressions.yaml").unlink()
    document = json.loads(result.stdout)
    suppressed = {(s["file"], s["rule"]) for s in document["suppressed"]}
    assert suppressed == {("contracts/wid.yaml", "feature-type-widened"),
                          ("contracts/full.yaml", "feature-type-widened")}
    assert all(s["reason"] for s in document["suppressed"])
    by_file = {c["file"]: c for c in document["contracts"]}
    unused = by_file["feature-check-suppressions.yaml"]["findings"]
    assert [(f["rule"], f["line"], f["severity"]) for f in unused] == [("suppression-unused", 9, "warning")]


def test_an_invalid_suppressions_file_is_an_error(repo: Path) -> None:
    bad = repo.parent / "bad-suppressions.yaml"
    bad.write_text("suppressions:\n  - rule: feature-deleted\n    contract: full\n    reason: short\n")
    result = feature_check(repo, "contracts/new.yaml", "--base", "base", "--suppressions", str(bad))
    assert result.returncode == 1
    assert "error [suppressions-invalid]" in result.stdout and ":4:13:" in result.stdout


def test_usage_errors_exit_2(repo: Path) -> None:
    for args, message in [
        (("--base", "no-such-ref"), "unknown revision 'no-such-ref'"),
        (("--base=--upload-pack=evil",), "not a revision"),
        (("--format", "json", "--format", "text"), "only one format can go to stdout"),
        (("--format", "xml"), "unknown format 'xml'"),
    ]:
        result = feature_check(repo, "contracts/new.yaml", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_base_side_guards(tmp_path: Path) -> None:
    """A symlink or an oversized blob in the base revision is refused, never followed or read."""
    repo = tmp_path / "repo"
    (repo / "contracts").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "contracts" / "link.yaml").symlink_to("/etc/passwd")
    (repo / "contracts" / "huge.yaml").write_text("# " + "x" * 300_000 + "\n")
    (repo / "contracts" / "bomb.yaml").write_text((ROOT / "tests/contracts/broken/yaml-alias-billion-laughs.yaml")
                                                  .read_text())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    for name in ("link.yaml", "huge.yaml", "bomb.yaml"):
        (repo / "contracts" / name).unlink()
    (repo / "contracts" / "ok.yaml").write_text((ROOT / "contracts" / "user_txn_stats.yaml").read_text())
    result = feature_check(repo, "contracts", "--base", "HEAD", "--format", "json")
    assert result.returncode == 0, result.stderr  # shown as infos: the pull request did not write the base
    shown = {(Path(f["file"]).name, f["rule"], f["severity"]) for c in json.loads(result.stdout)["contracts"]
             for f in c["findings"]}
    assert {("link.yaml", "unreadable", "info"), ("huge.yaml", "too-large", "info"),
            ("bomb.yaml", "yaml-alias", "info"), ("ok.yaml", "contract-added", "info")} == shown
    from pipelines.feature_check.compat.git import read_base

    snapshot = read_base("HEAD", [Path("contracts")], cwd=repo)
    assert snapshot.contracts == {}
    assert sorted((Path(f.file).name, f.rule) for f in snapshot.problems) == [
        ("bomb.yaml", "yaml-alias"), ("huge.yaml", "too-large"), ("link.yaml", "unreadable")]


def test_base_path_imports_nothing_heavy(repo: Path) -> None:
    code = ("import sys; from pipelines.feature_check.cli import run; run(['contracts', '--base', 'base', '--format', "
            "'sarif']); print(','.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                            check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    loaded = set(result.stderr.strip().splitlines()[-1].split(","))
    assert "pipelines" in loaded and "yaml" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_data_hook_reports_a_missing_module_as_a_usage_error(repo: Path, tmp_path: Path) -> None:
    """``--data`` imports feature_check.data lazily; without it (a copy of the package minus data/): exit 2."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(ROOT / "pipelines", copy / "pipelines", ignore=shutil.ignore_patterns("data", "__pycache__"))
    code = "import sys; from pipelines.feature_check.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "contracts/new.yaml", "--data"], cwd=repo,
                            capture_output=True, text=True, timeout=120, check=False,
                            env={**os.environ, "PYTHONPATH": str(copy), "PYTHONSAFEPATH": "1"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("feature-check: error: --data needs the data checks (pipelines.feature_check.data)")
    assert "Traceback" not in result.stderr


def test_docs_list_every_rule_and_format() -> None:
    import re

    from pipelines.feature_check.compat.suppressions import SUPPRESSION_RULES
    from pipelines.feature_check.output import FORMATS

    doc = (ROOT / "docs" / "feature-check.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", doc, flags=re.MULTILINE))
    assert set(COMPAT_RULES) <= documented
    assert all(f"`{rule}`" in doc for rule in SUPPRESSION_RULES)
    assert set(FORMATS) <= documented
