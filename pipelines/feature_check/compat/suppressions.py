"""Scoped, reviewable suppressions: a YAML file in the repository silences one rule for one contract, with a reason.

```yaml
suppressions:
  - rule: feature-deleted
    contract: user_txn_stats
    reason: The fraud model v3 stopped reading amount_sum_1h (PR #412); agreed with risk-ml.
    path: features          # optional: only findings at this YAML path or below
```

The file goes through the contract loader's guards (size, text, aliases, depth, duplicate keys) and a strict model:
every suppression names a rule, a contract and a reason of at least 10 characters, so each one is reviewed like code.
A suppressed finding is not dropped: outputs list it as suppressed with its reason (SARIF ``suppressions``). An entry
that matches nothing is a warning (``suppression-unused``), so stale ones get cleaned up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.contracts.load import ContractLoadError, parse_yaml_text, read_contract_text
from pipelines.report import Finding

DEFAULT_FILE = "feature-check-suppressions.yaml"
SUPPRESSION_RULES = {
    "suppressions-invalid": "the suppressions file cannot be read or does not follow its format",
    "suppression-unused": "a suppression matches no finding (warning)",
}


class Suppression(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    rule: str = Field(pattern=r"^[a-z][a-z-]*$")
    contract: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    reason: str = Field(min_length=10, max_length=1000)
    path: str | None = Field(None, max_length=300)

    def matches(self, contract: str | None, finding: Finding) -> bool:
        if finding.rule != self.rule or contract != self.contract:
            return False
        return self.path is None or finding.yaml_path == self.path or finding.yaml_path.startswith(
            (f"{self.path}.", f"{self.path}["))


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suppressions: list[Suppression] = Field(default_factory=list, max_length=1000)


@dataclass(frozen=True)
class Suppressions:
    file: str
    entries: tuple[Suppression, ...]
    lines: tuple[int, ...]


def load_suppressions(path: Path) -> Suppressions:
    """Parse the suppressions file; raises :class:`ContractLoadError` with located findings when it is invalid."""
    display = str(path)
    text = read_contract_text(path, display)
    data, positions = parse_yaml_text(text, display)
    try:
        parsed = _File.model_validate(data if data is not None else {})
    except ValidationError as exc:
        findings = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            pos = next((positions[loc[:end]] for end in range(len(loc), -1, -1) if loc[:end] in positions), None)
            where = ".".join(str(p) for p in loc)
            findings.append(Finding(display, pos.line if pos else 1, pos.column if pos else 1, where,
                                    "suppressions-invalid", f"{where}: {error['msg']}"))
        raise ContractLoadError(findings) from None
    lines = tuple(positions.get(("suppressions", i)).line if ("suppressions", i) in positions else 1  # type: ignore[union-attr]
                  for i in range(len(parsed.suppressions)))
    return Suppressions(display, tuple(parsed.suppressions), lines)
