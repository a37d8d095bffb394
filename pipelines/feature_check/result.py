"""What one ``feature-check`` run produced, in the shape every renderer reads, and the exit decision it implies."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.report import ContractReport, Finding

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
#: ``--fail-on`` → the severities that fail a run.
FAIL_ON: dict[str, tuple[str, ...]] = {"error": ("error",), "warning": ("error", "warning"), "never": ()}


@dataclass
class CheckRun:
    """Reports per file (lint, breaking changes, data checks), findings silenced by a suppression, the base compared."""

    reports: list[ContractReport]
    suppressed: list[tuple[Finding, str]] = field(default_factory=list)
    base: str | None = None
    base_commit: str | None = None
    changes: dict[str, dict[str, object]] = field(default_factory=dict)  # file → ContractChange.to_dict()

    @property
    def findings(self) -> list[Finding]:
        return [finding for report in self.reports for finding in sorted(report.findings)]

    def summary(self) -> dict[str, int]:
        reports = self.reports
        return {
            "contracts": len(reports),
            "passed": sum(1 for r in reports if r.ok),
            "failed": sum(1 for r in reports if not r.ok),
            "errors": sum(len(r.errors) for r in reports),
            "warnings": sum(len(r.warnings) for r in reports),
            "infos": sum(len(r.infos) for r in reports),
            "suppressed": len(self.suppressed),
        }

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def fails(self, fail_on: str = "error") -> bool:
        """True when a finding (not suppressed) is at or above ``fail_on`` (``error``, ``warning`` or ``never``)."""
        failing = FAIL_ON[fail_on]
        return any(finding.severity in failing for finding in self.findings)


def all_rules() -> dict[str, tuple[str, str]]:
    """Every rule id → (default severity, description), for SARIF's rule table and the docs."""
    from pipelines.contracts.check import RULES
    from pipelines.contracts.load import LOADER_RULES
    from pipelines.feature_check.compat.rules import COMPAT_RULES
    from pipelines.feature_check.compat.suppressions import SUPPRESSION_RULES

    rules: dict[str, tuple[str, str]] = {rule: ("error", text) for rule, text in LOADER_RULES.items()}
    for rule, text in {**RULES, **SUPPRESSION_RULES}.items():
        rules[rule] = ("warning" if "(warning)" in text else "error", text)
    rules.update({rule.id: (rule.severity, rule.description) for rule in COMPAT_RULES.values()})
    return rules
