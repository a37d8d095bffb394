"""Text for people (the default) and GitHub workflow commands (annotations on the pull request's diff)."""

from __future__ import annotations

from pipelines.feature_check.result import CheckRun


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def render_text(run: CheckRun) -> str:
    """One ``file:line:col: severity [rule] path: message`` line per finding, one line per contract, the total."""
    lines = [finding.render() for finding in run.findings]
    lines += [f"{finding.render()} (suppressed: {reason})" for finding, reason in run.suppressed]
    if lines:
        lines.append("")
    for report in run.reports:
        mark = "✓" if report.ok else "✗"
        title = f"{report.name} {report.version}" if report.name else "(not loaded)"
        counts = [_plural(len(report.errors), "error")] if report.errors else []
        counts += [_plural(len(report.warnings), "warning")] if report.warnings else []
        detail = f": {', '.join(counts)}" if counts else ""
        lines.append(f"{mark} {title} ({report.file}){detail}")
    for change in run.changes.values():
        if change.get("rollout_plan"):
            lines.append(f"rollout of {change['name']} {change['head_version']}: {change['rollout_plan']}")
    total = run.summary()
    against = f" against {run.base}" if run.base else ""
    extra = f", {total['suppressed']} suppressed" if total["suppressed"] else ""
    lines.append(f"{_plural(total['contracts'], 'contract')} checked{against}: {total['passed']} passed, "
                 f"{total['failed']} failed; {_plural(total['errors'], 'error')}, "
                 f"{_plural(total['warnings'], 'warning')}{extra}")
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def render_github(run: CheckRun) -> str:
    """``::error file=…,line=…,col=…,title=…::message`` per finding: GitHub shows them on the changed lines."""
    lines = []
    for finding in run.findings:
        where = f"file={_escape_property(finding.file)}"
        if finding.line > 0:
            where += f",line={finding.line},col={finding.column}"
        title = _escape_property(f"feature-check [{finding.rule}]")
        path = f"{finding.yaml_path}: " if finding.yaml_path else ""
        lines.append(f"::{_COMMAND[finding.severity]} {where},title={title}::{_escape_data(path + finding.message)}")
    return "\n".join(lines)
