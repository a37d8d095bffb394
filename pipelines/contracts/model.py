"""The typed contract model: what a feature contract may say, and nothing else.

Every model forbids unknown keys, so a typo (``windw: 5m``) is an error instead of a silently dropped setting. The model
checks shape and local value ranges; rules that relate one part of a contract to another (a feature's column must exist
in the source schema, a fallback must match the feature type, ...) live in :mod:`pipelines.contracts.check`, one small
function per rule, so each can name the exact YAML path it is about.

The JSON Schema that editors use (``contracts/contract.schema.json``) is generated from these classes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.contracts.durations import Duration

#: Names end up as SQL identifiers, Delta table folders and Feast object names: keep them boring and safe.
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", examples=["user_id"])]
SemVer = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$", examples=["1.2.0"])]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]

ColumnType = Literal["string", "int32", "int64", "float", "double", "boolean", "timestamp"]
FeatureType = Literal["int64", "double", "string", "boolean"]
Aggregation = Literal["count", "sum", "avg", "min", "max", "count_distinct", "last"]
FallbackKind = Literal["default", "last_known", "none"]
EventTimeFormat = Literal["iso8601", "epoch_s", "epoch_ms", "epoch_us"]
#: What a change of this contract must not break (checked by ``feature-check --base``): BACKWARD = consumers of the new
#: version can still use the data written under the old one; FORWARD = consumers of the old version keep working with
#: data written under the new one; FULL = both; NONE = only what the Delta table itself cannot absorb.
Compatibility = Literal["BACKWARD", "FORWARD", "FULL", "NONE"]


class StrictModel(BaseModel):
    """Base for every contract section: unknown keys are errors and parsed contracts are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Column(StrictModel):
    """One field of the source events. ``schema: {amount: double}`` is shorthand for ``{amount: {type: double}}``."""

    type: ColumnType
    required: bool = Field(False, description="Events without this field go to the dead-letter table. Join keys and "
                                              "the event-time column are always required.")
    description: str | None = None


class Entity(StrictModel):
    """What the features describe (a user, a merchant, a session) and the keys that identify one."""

    name: Identifier
    join_keys: list[Identifier] = Field(min_length=1, max_length=4)
    description: str | None = None


class Source(StrictModel):
    """The event stream the features are computed from."""

    name: Identifier
    format: Literal["json"] = "json"
    event_time: Identifier = Field(description="Column holding the event time, written as `event_time_format` says.")
    event_time_format: EventTimeFormat = Field(
        "iso8601", description="How the event time is written: `iso8601` text (`2026-01-01T00:00:00.123Z`, "
                               "`2026-01-01 00:00:00`, or with an offset `+01:00`, normalised to UTC), or a number "
                               "(or numeric string) of seconds (`epoch_s`), milliseconds (`epoch_ms`) or "
                               "microseconds (`epoch_us`) since 1970-01-01 UTC. Other values go to the dead-letter "
                               "table as `bad_event_time`.")
    allowed_lateness: Duration = Field(timedelta(0), description="How far behind the newest event time an event may "
                                                                 "arrive and still count (the watermark delay).")
    columns: dict[Identifier, Column] = Field(alias="schema", min_length=1, max_length=200)
    description: str | None = None
    filter: str | None = Field(None, min_length=1, max_length=2000,
                               description="Only events for which this boolean SQL expression over the schema's "
                                           "columns is true count, e.g. `amount > 0 AND channel <> 'test'`; the "
                                           "others go to the dead-letter table as `filtered`. A small safe subset "
                                           "of SQL (see docs/contracts.md); parsed, never executed as written.")

    @field_validator("columns", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"type": spec} if isinstance(spec, str) else spec for name, spec in value.items()}
        return value


class Window(StrictModel):
    """A window: ``5m`` (tumbling) or ``{size: 1h, slide: 5m}`` (sliding: a 1-hour window every 5 minutes)."""

    size: Duration
    slide: Duration | None = None

    @property
    def step(self) -> timedelta:
        """How often the window emits a value: the slide of a sliding window, the size of a tumbling one."""
        return self.slide if self.slide is not None else self.size

    @property
    def kind(self) -> Literal["tumbling", "sliding"]:
        return "tumbling" if self.slide is None or self.slide == self.size else "sliding"


class Feature(StrictModel):
    """One feature: an aggregation of one source column over one window."""

    name: Identifier
    type: FeatureType
    aggregation: Aggregation
    column: Identifier | None = Field(None, description="Source column to aggregate; required except for `count`, "
                                                        "where it means: count the events where it is not null.")
    window: Window
    description: str = Field(min_length=1, description="What the feature means, for the people who use it.")
    unit: str | None = None
    deprecated: bool = Field(False, description="Announces removal: a deprecated feature whose name is then listed "
                                                "in `reserved` may be deleted without a breaking-change error.")

    @field_validator("window", mode="before")
    @classmethod
    def _expand_window_shorthand(cls, value: Any) -> Any:
        return {"size": value} if isinstance(value, str) else value


class Serving(StrictModel):
    """How the features are served online."""

    online: bool = True
    ttl: Duration = Field(timedelta(days=1), description="Values older than this are not served.")


class FeatureSla(StrictModel):
    """A per-feature override of the contract-wide SLA."""

    freshness: Duration | None = None
    null_rate_max: Rate | None = None


class Sla(StrictModel):
    """What consumers may rely on: data no older than `freshness`, at most `null_rate_max` nulls."""

    freshness: Duration
    null_rate_max: Rate = 0.0
    features: dict[Identifier, FeatureSla] = Field(default_factory=dict)


class Fallback(StrictModel):
    """What serving returns for a feature when its value is missing or stale."""

    fallback: FallbackKind
    value: str | int | float | bool | None = Field(None, description="Only for `fallback: default`.")

    @model_validator(mode="after")
    def _value_only_for_default(self) -> Fallback:
        if self.fallback == "default" and self.value is None:
            raise ValueError("`fallback: default` needs a `value`")
        if self.fallback != "default" and self.value is not None:
            raise ValueError(f"`value` is only allowed with `fallback: default`, not `fallback: {self.fallback}`")
        return self


class Gates(StrictModel):
    """Health gates a canary must pass to be promoted; a breach rolls it back."""

    missing_rate_max: Rate = 0.01
    null_rate_max: Rate | None = None
    error_rate_max: Rate = 0.01
    fallback_rate_max: Rate = 0.02
    freshness_max: Duration = timedelta(minutes=5)
    latency_p99_max: Duration | None = None


class Rollout(StrictModel):
    """How a new version of this contract reaches traffic: percentage steps, each held for `dwell` behind `gates`."""

    steps: list[Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=lambda: [0, 5, 50, 100], min_length=1)
    dwell: Duration = timedelta(minutes=10)
    gates: Gates = Field(default_factory=Gates)

    @field_validator("steps")
    @classmethod
    def _increasing_to_full_traffic(cls, steps: list[int]) -> list[int]:
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError(f"steps must be strictly increasing percentages, got {steps}")
        if steps[-1] != 100:
            raise ValueError(f"the last step must be 100 (full traffic), got {steps[-1]}")
        return steps


class Contract(StrictModel):
    """A feature contract: one feature set, its source, its guarantees and how it rolls out."""

    name: Identifier
    version: SemVer
    owner: str = Field(min_length=1, description="Team or person answerable for the features (e-mail or handle).")
    description: str = Field(min_length=1)
    entity: Entity
    source: Source
    features: list[Feature] = Field(min_length=1, max_length=500)
    serving: Serving = Field(default_factory=Serving)
    sla: Sla
    degradation: dict[Identifier, Fallback] = Field(default_factory=dict,
                                                    description="Fallback per feature name.")
    rollout: Rollout = Field(default_factory=Rollout)
    compatibility: Compatibility = Field("FULL", description="What changes of this contract must not break; "
                                                                 "see docs/feature-check.md.")
    deprecated: bool = Field(False, description="Announces removal: a deprecated contract may be deleted without a "
                                                "breaking-change error.")
    reserved: list[Identifier] = Field(default_factory=list, max_length=500,
                                       description="Names of deleted features; no feature may take them again.")

    @property
    def major_version(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def table_name(self) -> str:
        """Name of the Delta table and Feast feature view: one per contract major version."""
        return f"{self.name}_v{self.major_version}"

    @property
    def step(self) -> timedelta:
        """The emit interval shared by every feature (checked by the `one-step` rule)."""
        return self.features[0].window.step

    @property
    def max_window(self) -> timedelta:
        return max(feature.window.size for feature in self.features)

    def content_hash(self) -> str:
        """A stable hash of what the contract says (not of its formatting), stored with the data it produced."""
        data = self.model_dump(mode="json", by_alias=True)
        # Keys added after the first release count only when set, so the hash of an unchanged contract (stored with
        # its Delta table) does not change when the format grows.
        for key, default in _LATER_KEYS:
            if data.get(key) == default:
                del data[key]
        if data["source"].get("filter") is None:
            del data["source"]["filter"]
        if data["source"].get("event_time_format") == "iso8601":
            del data["source"]["event_time_format"]
        for feature in data["features"]:
            if not feature.get("deprecated"):
                feature.pop("deprecated", None)
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_LATER_KEYS: tuple[tuple[str, object], ...] = (("compatibility", "FULL"), ("deprecated", False), ("reserved", []))
