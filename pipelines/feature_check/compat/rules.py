"""The breaking-change rules: stable ids, default severities, which promise each change breaks, and its version class.

A change can break two promises (the contract's ``compatibility`` mode says which ones it makes):

* ``backward``: consumers of the NEW version can still use data written under the OLD one (history in the same Delta
  table, backfills, training sets);
* ``forward``: consumers of the OLD version keep working with data written under the NEW one (live models).

A third, ``table``, is always protected: changes the existing Delta table cannot absorb (its key or column types).
How a rule's finding is graded (:func:`grade`): a change that breaks a promise the contract makes is the rule's
severity and needs a **major** version (which gets a new table ``<name>_v<major>`` beside the old one, so once the
major version is bumped the finding is only ``info``); a breaking change that the mode does not promise is a
``warning`` and needs a **minor** version; every other rule has its own severity and class (``minor`` for additions,
``patch`` for metadata only). Version discipline then checks that the declared bump equals the largest class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["backward", "forward", "table"]
ChangeClass = Literal["major", "minor", "patch"]
Severity = Literal["error", "warning", "info"]

MODES: dict[str, frozenset[str]] = {
    "BACKWARD": frozenset({"backward"}),
    "FORWARD": frozenset({"forward"}),
    "FULL": frozenset({"backward", "forward"}),
    "NONE": frozenset(),
}
CLASS_ORDER: dict[str, int] = {"patch": 1, "minor": 2, "major": 3}


@dataclass(frozen=True)
class CompatRule:
    id: str
    severity: Severity
    breaks: frozenset[str]
    change: ChangeClass
    description: str


def _rule(rule_id: str, severity: Severity, breaks: str, change: ChangeClass, description: str) -> CompatRule:
    return CompatRule(rule_id, severity, frozenset(breaks.split()), change, description)


_ALL = (
    # structure
    _rule("contract-deleted", "error", "forward", "major", "a contract was deleted without being deprecated first"),
    _rule("contract-renamed", "error", "backward forward table", "major",
          "a contract's name changed: a delete plus an add (new table, new feature view)"),
    _rule("contract-added", "info", "", "minor", "a new contract"),
    _rule("contract-deprecated", "info", "", "minor", "a contract was marked deprecated"),
    _rule("feature-deleted", "error", "forward", "major",
          "a feature was deleted without being deprecated and its name reserved first"),
    _rule("feature-renamed", "error", "backward forward", "major",
          "a feature's name changed (same definition under a new name): a delete plus an add"),
    _rule("feature-added", "info", "", "minor", "a new feature"),
    _rule("feature-deprecated", "info", "", "minor", "a feature was marked deprecated"),
    _rule("reserved-deleted", "error", "forward", "major", "a name was removed from `reserved`"),
    _rule("reserved-reused", "error", "backward forward", "major", "a feature takes a name listed in `reserved`"),
    # types and keys
    _rule("feature-type-changed", "error", "backward forward table", "major",
          "a feature's type changed in a way that is not a declared widening"),
    _rule("feature-type-widened", "error", "forward", "major",
          "a feature's type was widened (int64 → double): new readers accept old data, old readers break"),
    _rule("column-type-changed", "error", "backward", "major",
          "a source column's type changed in a way that is not a widening: events valid before are rejected now"),
    _rule("column-type-widened", "info", "", "minor", "a source column's type was widened (int32 → int64 → double)"),
    _rule("entity-changed", "error", "backward forward table", "major",
          "the entity, its join keys or a join key's type changed"),
    # semantics with the same name
    _rule("feature-aggregation-changed", "error", "backward forward", "major",
          "a feature's aggregation changed under the same name"),
    _rule("feature-window-changed", "error", "backward forward", "major",
          "a feature's window (size or slide) changed under the same name"),
    _rule("feature-column-changed", "error", "backward forward", "major",
          "a feature's input column changed under the same name"),
    _rule("feature-unit-changed", "error", "backward forward", "major", "a feature's unit changed under the same name"),
    _rule("event-time-changed", "error", "backward forward", "major", "the event-time column changed"),
    _rule("source-changed", "error", "backward forward", "major", "the contract reads another source"),
    _rule("required-changed", "error", "backward forward", "major",
          "a source column flipped between required and optional"),
    _rule("fallback-changed", "error", "forward", "major", "a feature's fallback changed or was removed"),
    _rule("fallback-added", "warning", "", "minor", "a feature got a fallback it did not have"),
    # constraints, SLA, serving
    _rule("constraint-tightened", "error", "backward", "major",
          "fewer events are accepted: a shorter allowed_lateness, a new or changed source filter"),
    _rule("constraint-loosened", "warning", "", "minor",
          "more events are accepted: a longer allowed_lateness, a source filter removed"),
    _rule("sla-loosened", "warning", "", "minor", "a weaker promise: a longer freshness or a higher null-rate limit"),
    _rule("sla-tightened", "info", "", "minor",
          "a stronger promise: `feature-check --data` verifies that current data keeps it"),
    _rule("ttl-changed", "warning", "", "minor", "serving.ttl changed: consumers see values expire at another age"),
    _rule("online-serving-removed", "error", "forward", "major", "serving.online changed from true to false"),
    _rule("online-serving-added", "info", "", "minor", "serving.online changed from false to true"),
    _rule("compatibility-loosened", "warning", "", "minor", "the compatibility mode promises less than before"),
    _rule("compatibility-tightened", "info", "", "minor", "the compatibility mode promises more than before"),
    _rule("metadata-changed", "info", "", "patch", "descriptions, owner or rollout changed (no effect on data)"),
    # version discipline
    _rule("version-not-bumped", "error", "", "patch", "the contract changed but its version did not increase"),
    _rule("version-bump-mismatch", "error", "", "patch",
          "the declared version bump does not match the change (major breaking, minor additive, patch metadata)"),
)

COMPAT_RULES: dict[str, CompatRule] = {rule.id: rule for rule in _ALL}

#: Declared widenings: (old, new) pairs whose values all convert without loss of meaning.
FEATURE_WIDENINGS = frozenset({("int64", "double")})
COLUMN_WIDENINGS = frozenset({("int32", "int64"), ("int32", "double"), ("int64", "double"), ("float", "double"),
                              ("int32", "float")})


@dataclass(frozen=True)
class Grade:
    severity: Severity
    change: ChangeClass
    note: str = ""


def grade(rule_id: str, mode: str, major_bumped: bool) -> Grade:
    """Severity and version class of one detected change under the contract's compatibility ``mode``."""
    rule = COMPAT_RULES[rule_id]
    if not rule.breaks:
        return Grade(rule.severity, rule.change)
    protected = MODES[mode] | {"table"}
    broken = sorted(rule.breaks & protected)
    if broken:
        if major_bumped:
            return Grade("info", "major", "allowed by the major version bump (it writes a new table)")
        return Grade(rule.severity, "major", f"breaks {' and '.join(broken)} compatibility ({mode}); bump the "
                                             f"major version or revert")
    return Grade("warning", "minor", f"breaks {' and '.join(sorted(rule.breaks))} compatibility, which this "
                                     f"contract ({mode}) does not promise")
