"""A Markdown summary fit for a pull-request comment or the job summary: verdict, table per contract, findings.

GitHub limits a comment to 65,536 characters, so the findings table is cut at :data:`MAX_CHARS` with a note saying how
many were left out (the SARIF and JSON outputs always hold all of them).
"""

from __future__ import annotations

from pipelines.feature_check.result import SEVERITY_ORDER, CheckRun

MAX_CHARS = 60_000
_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def render_markdown(run: CheckRun) -> str:
    total = run.summary()
    verdict = "✅ **feature-check passed**" if run.ok else "❌ **feature-check failed**"
    against = f" against `{_cell(run.base)}`" if run.base else ""
    lines = [f"## {verdict}{against}", "",
             f"{total['contracts']} contracts: {total['passed']} passed, {total['failed']} failed · "
             f"{total['errors']} errors · {total['warnings']} warnings · {total['infos']} notes · "
             f"{total['suppressed']} suppressed", ""]
    if run.changes:
        lines += ["| contract | base | head | change needs | declared |", "| --- | --- | --- | --- | --- |"]
        for change in run.changes.values():
            lines.append(f"| `{change['name']}` | {change['base_version'] or '—'} | {change['head_version'] or '—'} | "
                         f"{change['required_bump'] or 'none'} | {change['declared_bump'] or '—'} |")
        lines.append("")
        plans = [change for change in run.changes.values() if change.get("rollout_plan")]
        if plans:
            lines += ["**Rollout after merge**", ""]
            lines += [f"- `{change['name']}` {change['head_version']}: {_cell(str(change['rollout_plan']))}"
                      for change in plans]
            lines.append("")
    findings = sorted(run.findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.file, f.line, f.column))
    if findings:
        lines += ["| | rule | where | message |", "| --- | --- | --- | --- |"]
        text = "\n".join(lines)
        for shown, finding in enumerate(findings):
            row = (f"\n| {_ICON[finding.severity]} | `{finding.rule}` | `{_cell(finding.file)}:{finding.line}` | "
                   f"{_cell(finding.message)} |")
            if len(text) + len(row) > MAX_CHARS:
                text += f"\n\n… {len(findings) - shown} more findings not shown (see the SARIF or JSON output)."
                break
            text += row
        lines = [text, ""]
    if run.suppressed:
        lines += ["<details><summary>Suppressed findings</summary>", ""]
        lines += [f"- `{f.rule}` {_cell(f.file)}:{f.line}: {_cell(reason)}" for f, reason in run.suppressed[:200]]
        lines += ["", "</details>", ""]
    return "\n".join(lines).rstrip() + "\n"
