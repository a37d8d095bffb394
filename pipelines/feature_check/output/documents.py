"""Machine documents: JSON (schema in ``docs/feature-check.schema.json``), JUnit XML and SARIF 2.1.0."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from pipelines.feature_check.result import CheckRun, all_rules
from pipelines.report import Finding

TOOL_URI = "https://github.com/feature-platform/feature-platform/blob/main/docs/feature-check.md"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_json(run: CheckRun) -> str:
    """``{"ok", "base", "contracts": [...], "suppressed": [...], "summary": {...}}``; stable keys, documented."""
    contracts = []
    for report in run.reports:
        entry = report.to_dict()
        if report.file in run.changes:
            entry["change"] = run.changes[report.file]
        contracts.append(entry)
    document = {
        "ok": run.ok,
        "base": {"ref": run.base, "commit": run.base_commit} if run.base else None,
        "contracts": contracts,
        "suppressed": [{**finding.to_dict(), "reason": reason} for finding, reason in run.suppressed],
        "summary": run.summary(),
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def render_junit(run: CheckRun) -> str:
    """One test case per contract file; each error is a ``<failure>``, warnings and infos go to ``<system-out>``."""
    total = run.summary()
    suites = ET.Element("testsuites", name="feature-check", tests=str(total["contracts"]),
                        failures=str(total["failed"]), errors="0")
    suite = ET.SubElement(suites, "testsuite", name="feature-check", tests=str(total["contracts"]),
                          failures=str(total["failed"]), errors="0", skipped="0")
    for report in run.reports:
        case = ET.SubElement(suite, "testcase", classname=report.file, name=report.name or report.file)
        for finding in sorted(report.errors):
            failure = ET.SubElement(case, "failure", message=f"[{finding.rule}] {finding.message}", type=finding.rule)
            failure.text = finding.render()
        others = [f.render() for f in sorted(report.findings) if f.severity != "error"]
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(others)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _sarif_result(finding: Finding, index: dict[str, int], reason: str | None = None) -> dict[str, object]:
    location: dict[str, object] = {"artifactLocation": {"uri": finding.file.replace("\\", "/"),
                                                        "uriBaseId": "%SRCROOT%"}}
    if finding.line > 0:  # a finding about a Delta table rather than a line has line 0: no region
        location["region"] = {"startLine": finding.line, "startColumn": max(1, finding.column)}
    result: dict[str, object] = {
        "ruleId": finding.rule,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{finding.yaml_path}: {finding.message}" if finding.yaml_path else finding.message},
        "locations": [{"physicalLocation": location}],
    }
    if finding.rule in index:
        result["ruleIndex"] = index[finding.rule]
    if reason is not None:
        result["suppressions"] = [{"kind": "external", "justification": reason}]
    return result


def render_sarif(run: CheckRun) -> str:
    """SARIF 2.1.0: one run, the full rule table, one result per finding (suppressed ones carry ``suppressions``)."""
    rules = all_rules()
    used = sorted({f.rule for f in run.findings} | {f.rule for f, _ in run.suppressed} | set(rules))
    index = {rule: i for i, rule in enumerate(used)}
    descriptors = [{"id": rule, "shortDescription": {"text": rules.get(rule, ("error", rule))[1]},
                    "defaultConfiguration": {"level": _LEVEL[rules.get(rule, ("error", ""))[0]]},
                    "helpUri": f"{TOOL_URI}#rules"} for rule in used]
    results = [_sarif_result(f, index) for f in run.findings]
    results += [_sarif_result(f, index, reason) for f, reason in run.suppressed]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "feature-check", "informationUri": TOOL_URI, "rules": descriptors}},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)
