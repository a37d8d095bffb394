"""Compare the contracts of a base revision with the working tree: one finding per change, then version discipline.

Contracts are matched by ``name`` (a moved file is not a change). A name that disappears while another appears in the
same file is a rename. Every finding is located in the head file (for a deletion: at the list or key that lost it; for
a deleted contract: line 1 of its old path) and graded by :func:`pipelines.feature_check.compat.rules.grade` under
the base's compatibility mode, the promise in force when the pull request was opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pipelines.contracts.durations import format_duration
from pipelines.contracts.load import KEY, LoadedContract, YamlPath
from pipelines.contracts.model import Contract, Feature
from pipelines.feature_check.compat.rollout_plan import rollout_plan
from pipelines.feature_check.compat.rules import (
    CLASS_ORDER,
    COLUMN_WIDENINGS,
    COMPAT_RULES,
    FEATURE_WIDENINGS,
    MODES,
    grade,
)
from pipelines.report import Finding

Raw = tuple[str, YamlPath, str]  # rule id, head YAML path, message


@dataclass
class ContractChange:
    """The outcome of comparing one contract: graded findings and the version verdict (for JSON and Markdown)."""

    name: str
    file: str
    base_version: str | None
    head_version: str | None
    required: str | None = None  # "major" | "minor" | "patch" | None (no change)
    declared: str | None = None  # "major" | "minor" | "patch" | "none" | "lower"
    findings: list[Finding] = field(default_factory=list)
    rollout_plan: str | None = None  # a new major: how it will be rolled out (compat.rollout_plan)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "base_version": self.base_version, "head_version": self.head_version,
                "required_bump": self.required, "declared_bump": self.declared, "rollout_plan": self.rollout_plan}


def _semver(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def declared_bump(base: str, head: str) -> str:
    """``major``/``minor``/``patch`` for an increase, ``none`` when equal, ``lower`` when it went down."""
    old, new = _semver(base), _semver(head)
    if new == old:
        return "none"
    if new < old:
        return "lower"
    if new[0] > old[0]:
        return "major"
    return "minor" if new[1] > old[1] else "patch"


# --- detection ---------------------------------------------------------------------------------------------------


def _definition(feature: Feature) -> tuple[object, ...]:
    return feature.aggregation, feature.column, feature.window, feature.type


def _features(base: Contract, head: Contract) -> Iterator[Raw]:
    old = {f.name: f for f in base.features}
    new = {f.name: (i, f) for i, f in enumerate(head.features)}
    deleted = [name for name in old if name not in new]
    added = [name for name in new if name not in old]
    for name in list(deleted):
        twin = next((a for a in added if _definition(new[a][1]) == _definition(old[name])), None)
        if twin is not None:
            deleted.remove(name)
            added.remove(twin)
            yield ("feature-renamed", ("features", new[twin][0], "name"),
                   f"feature `{name}` was renamed to `{twin}`: consumers reading `{name}` lose it and history under "
                   f"the old name is not carried over; keep `{name}` (deprecate it) and add `{twin}` beside it")
    for name in deleted:
        if old[name].deprecated and name in head.reserved:
            yield ("feature-deleted", ("reserved", KEY), f"feature `{name}` was deleted after being deprecated and its "
                                                     f"name is reserved: allowed")
        else:
            hint = "mark it `deprecated: true` in a release first, then delete it and list its name in `reserved`"
            yield ("feature-deleted", ("features", KEY), f"feature `{name}` was deleted; consumers reading it break. "
                                                         f"{hint}")
    for name in added:
        index, feature = new[name]
        if name in head.reserved:
            yield ("reserved-reused", ("features", index, "name"),
                   f"feature `{name}` takes a reserved name: it was deleted before, and reusing it gives old "
                   f"consumers a different feature under the name they know; pick another name")
        else:
            yield "feature-added", ("features", index, "name"), f"feature `{feature.name}` was added"
    for name, (index, feature) in new.items():
        if name not in old:
            continue
        yield from _feature(old[name], feature, ("features", index))


def _feature(old: Feature, new: Feature, path: YamlPath) -> Iterator[Raw]:
    name = new.name
    if old.type != new.type:
        rule = "feature-type-widened" if (old.type, new.type) in FEATURE_WIDENINGS else "feature-type-changed"
        yield rule, (*path, "type"), f"feature `{name}` changed type from {old.type} to {new.type}"
    if old.aggregation != new.aggregation:
        yield ("feature-aggregation-changed", (*path, "aggregation"),
               f"feature `{name}` now aggregates with {new.aggregation} instead of {old.aggregation}: same name, "
               f"different meaning; add a new feature instead")
    if old.window != new.window:
        yield ("feature-window-changed", (*path, "window", KEY),
               f"feature `{name}` now covers {_window(new)} instead of {_window(old)}: same name, different meaning; "
               f"add a new feature instead")
    if old.column != new.column:
        yield ("feature-column-changed", (*path, "column"),
               f"feature `{name}` now reads column `{new.column}` instead of `{old.column}`")
    if old.unit != new.unit:
        yield ("feature-unit-changed", (*path, "unit"),
               f"feature `{name}` changed unit from {old.unit or 'none'} to {new.unit or 'none'}")
    if old.description != new.description:
        yield "metadata-changed", (*path, "description"), f"the description of feature `{name}` changed"
    if new.deprecated and not old.deprecated:
        yield "feature-deprecated", (*path, "deprecated"), f"feature `{name}` is now deprecated"


def _window(feature: Feature) -> str:
    window = feature.window
    size = format_duration(window.size)
    return f"{size} every {format_duration(window.slide)}" if window.slide not in (None, window.size) else size


def _source(base: Contract, head: Contract) -> Iterator[Raw]:
    old, new = base.source, head.source
    if old.name != new.name:
        yield "source-changed", ("source", "name"), f"the contract now reads `{new.name}` instead of `{old.name}`"
    if old.event_time != new.event_time:
        yield ("event-time-changed", ("source", "event_time"),
               f"event time is now `{new.event_time}` instead of `{old.event_time}`: every window changes meaning")
    for column, spec in new.columns.items():
        before = old.columns.get(column)
        if before is None:
            continue
        path = ("source", "schema", column)
        if before.type != spec.type:
            rule = "column-type-widened" if (before.type, spec.type) in COLUMN_WIDENINGS else "column-type-changed"
            yield rule, (*path, "type"), f"column `{column}` changed type from {before.type} to {spec.type}"
        if before.required != spec.required:
            now = "required" if spec.required else "optional"
            effect = ("events without it now go to the dead-letter table" if spec.required
                      else "features over it may now be computed from events without it")
            yield "required-changed", (*path, KEY), f"column `{column}` is now {now}: {effect}"
        if before.description != spec.description:
            yield "metadata-changed", (*path, KEY), f"the description of column `{column}` changed"
    if new.allowed_lateness < old.allowed_lateness:
        yield ("constraint-tightened", ("source", "allowed_lateness"),
               f"allowed_lateness went down from {format_duration(old.allowed_lateness)} to "
               f"{format_duration(new.allowed_lateness)}: events counted before are now dead letters")
    elif new.allowed_lateness > old.allowed_lateness:
        yield ("constraint-loosened", ("source", "allowed_lateness"),
               f"allowed_lateness went up from {format_duration(old.allowed_lateness)} to "
               f"{format_duration(new.allowed_lateness)}: more events count, results come later")
    if new.filter is not None and new.filter != old.filter:
        what = "was added" if old.filter is None else "changed"
        yield ("constraint-tightened", ("source", "filter"),
               f"the source filter {what}: the set of counted events changes for every feature")
    elif new.filter is None and old.filter is not None:
        yield "constraint-loosened", ("source", KEY), "the source filter was removed: every event counts now"
    if old.description != new.description:
        yield "metadata-changed", ("source", "description"), "the description of the source changed"


def _entity(base: Contract, head: Contract) -> Iterator[Raw]:
    old, new = base.entity, head.entity
    if old.name != new.name or old.join_keys != new.join_keys:
        yield ("entity-changed", ("entity", "join_keys", KEY) if old.join_keys != new.join_keys else ("entity", "name"),
               f"the entity changed from {old.name}{old.join_keys} to {new.name}{new.join_keys}: every row is keyed "
               f"differently; a new entity is a new contract or a new major version")
    for key in new.join_keys:
        before, after = base.source.columns.get(key), head.source.columns.get(key)
        if key in old.join_keys and before is not None and after is not None and before.type != after.type:
            yield ("entity-changed", ("source", "schema", key, "type"),
                   f"join key `{key}` changed type from {before.type} to {after.type}: the table's key changes")
    if old.description != new.description:
        yield "metadata-changed", ("entity", "description"), "the description of the entity changed"


def _serving_and_sla(base: Contract, head: Contract) -> Iterator[Raw]:
    if base.serving.online and not head.serving.online:
        yield "online-serving-removed", ("serving", "online"), "online serving was switched off; online readers break"
    elif head.serving.online and not base.serving.online:
        yield "online-serving-added", ("serving", "online"), "online serving was switched on"
    if base.serving.ttl != head.serving.ttl:
        yield ("ttl-changed", ("serving", "ttl"), f"serving.ttl changed from {format_duration(base.serving.ttl)} to "
                                                  f"{format_duration(head.serving.ttl)}")
    old, new = base.sla, head.sla
    yield from _limit(old.freshness, new.freshness, ("sla", "freshness"), "sla.freshness", format_duration)
    yield from _limit(old.null_rate_max, new.null_rate_max, ("sla", "null_rate_max"), "sla.null_rate_max", str)
    for name in sorted(set(old.features) | set(new.features)):
        before, after = old.features.get(name), new.features.get(name)
        path: YamlPath = ("sla", "features", name, KEY) if after is not None else ("sla", KEY)
        fresh = (before.freshness if before else None) or old.freshness, (after.freshness if after else None) or \
            new.freshness
        nulls = ((before.null_rate_max if before else None) or old.null_rate_max,
                 (after.null_rate_max if after else None) or new.null_rate_max)
        if fresh[0] != old.freshness or fresh[1] != new.freshness:
            yield from _limit(*fresh, path, f"the freshness of `{name}`", format_duration)
        if nulls[0] != old.null_rate_max or nulls[1] != new.null_rate_max:
            yield from _limit(*nulls, path, f"the null-rate limit of `{name}`", str)
    for name in sorted(set(base.degradation) | set(head.degradation)):
        before, after = base.degradation.get(name), head.degradation.get(name)
        if before == after:
            continue
        if before is None:
            yield "fallback-added", ("degradation", name, KEY), f"feature `{name}` got the fallback `{after.fallback}`"
        elif after is None:
            yield ("fallback-changed", ("degradation", KEY),
                   f"the fallback of `{name}` (`{before.fallback}`) was removed: serving now returns nothing for it")
        else:
            yield ("fallback-changed", ("degradation", name, KEY),
                   f"the fallback of `{name}` changed from {_fallback(before)} to {_fallback(after)}: what consumers "
                   f"receive when the value is missing changes")


def _fallback(spec: object) -> str:
    kind = getattr(spec, "fallback", "")
    return f"`default {getattr(spec, 'value', None)!r}`" if kind == "default" else f"`{kind}`"


def _limit(old: object, new: object, path: YamlPath, what: str, show: object) -> Iterator[Raw]:
    if old == new:
        return
    render = show if callable(show) else str
    rule = "sla-loosened" if new > old else "sla-tightened"  # type: ignore[operator]
    yield rule, path, f"{what} changed from {render(old)} to {render(new)}"


def _top_level(base: Contract, head: Contract) -> Iterator[Raw]:
    if base.compatibility != head.compatibility:
        weaker = not MODES[head.compatibility] >= MODES[base.compatibility]
        yield ("compatibility-loosened" if weaker else "compatibility-tightened", ("compatibility",),
               f"compatibility changed from {base.compatibility} to {head.compatibility}")
    for key in ("owner", "description"):
        if getattr(base, key) != getattr(head, key):
            yield "metadata-changed", (key,), f"`{key}` changed"
    if base.rollout != head.rollout:
        yield "metadata-changed", ("rollout", KEY), "the rollout plan changed"
    if head.deprecated and not base.deprecated:
        yield "contract-deprecated", ("deprecated",), f"contract `{head.name}` is now deprecated"
    for name in base.reserved:
        if name not in head.reserved:
            yield ("reserved-deleted", ("reserved", KEY),
                   f"`{name}` was removed from `reserved`; a reserved name stays reserved for good")


DETECTORS = (_top_level, _entity, _source, _features, _serving_and_sla)


# --- grading and version discipline -------------------------------------------------------------------------------


def compare_contract(base: LoadedContract, head: LoadedContract) -> ContractChange:
    """Every change between two versions of one contract, graded, plus the version-discipline verdict."""
    old, new = base.contract, head.contract
    bump = declared_bump(old.version, new.version)
    change = ContractChange(new.name, head.file, old.version, new.version, declared=bump,
                            rollout_plan=rollout_plan(old, new))
    raws = [raw for detect in DETECTORS for raw in detect(old, new)]
    classes: list[str] = []
    for rule_id, path, message in raws:
        graded = grade(rule_id, old.compatibility, bump == "major")
        if rule_id == "feature-deleted" and message.endswith(": allowed"):
            graded = type(graded)("info", "minor", "")
        classes.append(graded.change)
        text = f"{message} ({graded.note})" if graded.note else message
        change.findings.append(head.finding(path, rule_id, text, graded.severity))
    if not raws:
        return change
    change.required = max(classes, key=CLASS_ORDER.__getitem__)
    if bump in ("none", "lower"):
        said = "did not change" if bump == "none" else f"went down from {old.version}"
        change.findings.append(head.finding(("version",), "version-not-bumped",
                                            f"the contract changed ({change.required} change) but its version {said}; "
                                            f"declare a {change.required} bump from {old.version}"))
    elif bump != change.required:
        change.findings.append(head.finding(("version",), "version-bump-mismatch",
                                            f"version {old.version} → {new.version} is a {bump} bump, but the "
                                            f"changes are {change.required} ({_why(raws, classes, change.required)}); "
                                            f"declare {_next(old.version, change.required)}"))
    return change


def _why(raws: list[Raw], classes: list[str], wanted: str) -> str:
    rules = sorted({rule for (rule, _, _), cls in zip(raws, classes, strict=True) if cls == wanted})
    return ", ".join(rules)


def _next(version: str, change: str) -> str:
    major, minor, patch = _semver(version)
    if change == "major":
        return f"{major + 1}.0.0"
    return f"{major}.{minor + 1}.0" if change == "minor" else f"{major}.{minor}.{patch + 1}"


def compare_sets(base: Mapping[str, LoadedContract], head: Iterable[LoadedContract]) -> list[ContractChange]:
    """Compare every contract by name: changed, added, renamed (same file, new name) and deleted ones."""
    head_by_name = {loaded.contract.name: loaded for loaded in head}
    base_by_file = {loaded.file: loaded for loaded in base.values()}
    changes: list[ContractChange] = []
    renamed: set[str] = set()
    for name, loaded in head_by_name.items():
        if name in base:
            changes.append(compare_contract(base[name], loaded))
            continue
        before = base_by_file.get(loaded.file)
        change = ContractChange(name, loaded.file, None, loaded.contract.version)
        if before is not None and before.contract.name not in head_by_name:
            renamed.add(before.contract.name)
            graded = grade("contract-renamed", before.contract.compatibility, False)
            change.findings.append(loaded.finding(("name",), "contract-renamed",
                                                  f"contract `{before.contract.name}` was renamed to `{name}`: a new "
                                                  f"table and feature view, consumers of the old name break "
                                                  f"({graded.note})", graded.severity))
            change.required = "major"
        else:
            change.findings.append(loaded.finding(("name",), "contract-added", f"contract `{name}` was added",
                                                  COMPAT_RULES["contract-added"].severity))
            change.required = "minor"
        changes.append(change)
    for name, loaded in base.items():
        if name in head_by_name or name in renamed:
            continue
        old = loaded.contract
        change = ContractChange(name, loaded.file, old.version, None, required="major")
        if old.deprecated:
            finding = Finding(loaded.file, 1, 1, "", "contract-deleted",
                              f"contract `{name}` was deleted after being deprecated: allowed", "info")
        else:
            graded = grade("contract-deleted", old.compatibility, False)
            finding = Finding(loaded.file, 1, 1, "", "contract-deleted",
                              f"contract `{name}` ({old.version}) was deleted; consumers of `{old.table_name}` break. "
                              f"Mark it `deprecated: true` in a release first ({graded.note})", graded.severity)
        change.findings.append(finding)
        changes.append(change)
    return changes
