"""Findings and reports: what checks return, so that only the CLI decides output format and exit codes.

Library code never prints or exits; it returns :class:`Finding` objects that carry everything a person or a machine
needs to act on them: the file, the line and column, the YAML path, the rule that fired and what is expected instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

#: ``info`` findings never fail a check; they say what changed (breaking-change detection) or what was measured.
Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, order=True)
class Finding:
    """One problem found in one file, located as precisely as the input allows."""

    file: str
    line: int
    column: int
    yaml_path: str
    rule: str
    message: str
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line:col: severity [rule] path: message``, the form editors and CI logs recognise."""
        where = f" {self.yaml_path}:" if self.yaml_path else ""
        return f"{self.file}:{self.line}:{self.column}: {self.severity} [{self.rule}]{where} {self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class ContractReport:
    """The outcome of checking one contract file."""

    file: str
    name: str | None = None
    version: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def infos(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "info"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "name": self.name, "version": self.version, "ok": self.ok,
                "findings": [f.to_dict() for f in sorted(self.findings)]}
