"""One typed, frozen settings object: the only place that reads the environment.

Every setting has a default that works on a laptop with nothing running; each can be overridden with an environment
variable named ``FP_<FIELD>`` (for example ``FP_DATA_DIR=/mnt/features``). Relative paths are resolved against the
project root, never against the current working directory, so commands behave the same wherever they are started.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.runtime.config import StageConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DataCheckThresholds(BaseModel):
    """When a data check warns; every default is a starting point, not a law."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    row_count_drop_max: float = Field(0.05, ge=0.0, le=1.0,
                                      description="Largest share of rows the newest Delta version may lose against "
                                                  "the previous one (`data-row-count-shift`).")
    row_count_growth_max: float = Field(3.0, ge=0.0,
                                        description="Largest relative growth of the row count between the previous "
                                                    "and the newest Delta version (3.0 = may quadruple).")
    psi_max: float = Field(0.25, ge=0.0, description="Population stability index above which a feature's "
                                                     "distribution counts as shifted (`data-distribution-shift`).")
    ks_max: float = Field(0.3, ge=0.0, le=1.0, description="Kolmogorov-Smirnov statistic (numeric features) above "
                                                           "which a feature counts as shifted.")
    shift_min_rows: int = Field(200, ge=1, description="Fewer rows than this on either side: no distribution test "
                                                       "(too little data to say anything).")
    shift_bins: int = Field(10, ge=2, le=100, description="Quantile bins of the PSI for numeric features; the top "
                                                          "N-1 categories plus `other` for strings.")
    state_budget_mib: float = Field(1024.0, gt=0, description="Estimated Flink heap state per contract above which "
                                                              "`state-budget` warns.")
    default_cardinality: int = Field(100_000, ge=1, description="Active keys assumed when neither Delta nor the "
                                                                "caller says how many keys hold state at once.")
    distinct_values_per_key: int = Field(8, ge=1, description="Distinct values a `count_distinct` keeps per key and "
                                                              "slice when Delta cannot tell.")
    heap_overhead: float = Field(3.0, ge=1.0, description="JVM heap bytes per serialized state byte (object headers, "
                                                          "boxing, hash-map entries of the heap state backend).")


class HealthDefaults(BaseModel):
    """Limits of ``feature-platform health`` that a contract does not set, and where serving's metrics are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(300.0, gt=0, description="Span of the dead-letter rate: the batches committed in the "
                                                       "last interval before the newest commit.")
    dead_letter_rate_max: float = Field(0.01, ge=0.0, le=1.0,
                                        description="Largest share of a contract's input lines that may be "
                                                    "dead-lettered in the interval.")
    serve_metrics_url: str | None = Field(None, description="Prometheus endpoint of `serve` (e.g. "
                                                            "http://127.0.0.1:6566/metrics); unset: no serving "
                                                            "signals.")
    timeout_s: float = Field(2.0, gt=0, description="Timeout of each read of the online store or serving's "
                                                    "metrics.")


class OpenMetadataSettings(BaseModel):
    """Where lineage is published (``feature-platform lineage``, and after ``run``/``stream`` when ``url`` is set).

    The SDK's own default waits up to 300 s per read and retries on its own, so every call here carries
    ``timeout_s`` and the whole publish a ``deadline_s``; retries of transient failures are the runtime's (the
    ``lineage`` stage: ``FP_STAGES__LINEAGE__RETRIES``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, pattern=r"^https?://[^\s]+$",
                            description="OpenMetadata API root, e.g. `http://127.0.0.1:8585/api`; unset: no publishing "
                                        "(`feature-platform lineage --dry-run` still works).")
    token: SecretStr | None = Field(None, description="JWT token of an OpenMetadata bot (Settings -> Bots -> "
                                                      "ingestion-bot) allowed to create entities and edit lineage.")
    timeout_s: int = Field(5, ge=1, le=300, description="Connect and read timeout of every HTTP call, in seconds.")
    deadline_s: float = Field(120.0, gt=0, description="The whole publish gives up after this many seconds.")

    @field_validator("url", "token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``FP_OPENMETADATA__URL=`` (as compose passes an unset variable) means no server, not a bad URL."""
        return None if value == "" else value


class ServeSettings(BaseModel):
    """`feature-platform serve`: where it listens, how many workers, and the limits that keep it fast under overload
    (docs/serving.md). Every field is an env var ``FP_SERVE__<FIELD>`` (e.g. ``FP_SERVE__DEADLINE_MS=20``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on (loopback unless told otherwise).")
    port: int = Field(6566, ge=1, le=65535, description="TCP port (Feast's feature server uses 6566 too).")
    workers: int | None = Field(None, ge=1, le=64, description="Worker processes sharing the port, each pinned to "
                                                                "one allowed CPU; none = one per allowed CPU.")
    max_entities: int = Field(1000, ge=1, description="Most entities one request may ask for; more is answered 413.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; larger is answered 413.")
    deadline_ms: float = Field(50.0, gt=0, description="Per-request budget for the store read; when it passes, the "
                                                       "request is answered with the contracts' fallbacks.")
    max_in_flight: int = Field(64, ge=1, description="Requests one worker handles at once; one more is answered 503 "
                                                     "at once (shed), never queued.")
    client_rate: float | None = Field(None, gt=0, description="Requests/s one client may make (summed over workers; "
                                                              "each worker enforces its share); none = no limit. "
                                                              "Over it: 429 with Retry-After.")
    client_burst: int | None = Field(None, ge=1, description="Requests a client may make at once above its rate "
                                                             "(default: one second of its share).")
    client_header: str = Field("x-client-id", min_length=1, description="Header naming the client for the rate "
                                                                        "limit; without it, the peer address counts.")
    pin: bool = Field(True, description="Pin each worker process to one allowed CPU (os.sched_setaffinity).")
    run_dir: Path | None = Field(None, description="Set by `serve` for its workers (CPU slots, metrics files); "
                                                   "not a user setting.")
    sqlite_busy_timeout_ms: float = Field(20.0, ge=0, description="How long a SQLite read waits for a writer "
                                                                  "holding the file before it counts as a failed "
                                                                  "read (answered with fallbacks).")
    shadow_max_in_flight: int = Field(16, ge=1, description="Shadow reads of a rollout's candidate (step 0 %) one "
                                                            "worker runs at once; a request arriving when all are "
                                                            "busy is not shadowed (counted as dropped).")
    shadow_sample: float = Field(1.0, ge=0.0, le=1.0, description="Share of requests whose entities are shadow-read "
                                                                  "from the candidate in shadow (1.0: every one).")


class Settings(BaseSettings):
    """Where data lives and how Flink runs (the local mini-cluster, or a remote cluster: docs/cluster.md)."""

    # "__" nests: FP_STAGES__ONLINE_LOAD__RATE=10000 sets stages["online_load"].rate.
    model_config = SettingsConfigDict(env_prefix="FP_", frozen=True, extra="forbid", env_nested_delimiter="__")

    data_dir: Path = Field(Path("data"), description="Root of all local data: events, Delta tables, Flink state.")
    contracts_dir: Path = Field(Path("contracts"), description="Folder with the contract YAML files.")
    feature_repo_dir: Path = Field(Path("feature_repo"), description="The Feast repository.")
    parallelism: int = Field(2, ge=1, le=64, description="Flink parallelism of a job (mini-cluster or cluster).")
    checkpoint_interval_ms: int = Field(2000, ge=100, description="Flink checkpoint interval.")
    parse_once: Literal["auto", "on", "off"] = Field(
        "auto", description="Parse each JSON line once with the platform's Java functions (`auto`: when they can be "
                            "built, else the plain SQL; `on`: required; `off`: plain SQL). Same results either way.")
    jvm_heap: str = Field("1g", pattern=r"^[1-9][0-9]*[mg]$", description="Maximum heap of the local Flink JVM.")
    flink_target: Literal["local", "remote"] = Field(
        "local", description="Where Flink jobs run: `local` (the mini-cluster inside the Python process) or `remote` "
                             "(a standalone/session cluster at `flink_rest_address`; docs/cluster.md).")
    flink_rest_address: str | None = Field(
        None, pattern=r"^https?://[^/:\s]+(:[0-9]{1,5})?/?$",
        description="REST endpoint of the remote Flink cluster's JobManager, e.g. `http://flink-jobmanager:8081`.")
    flink_restart_attempts: int = Field(10, ge=1, le=1000,
                                        description="On a cluster: restarts before a failing job fails; each resumes "
                                                    "from the newest checkpoint (exponential delay).")
    flink_restart_delay_ms: int = Field(1000, ge=1, description="On a cluster: wait before the first restart; each "
                                                                "further wait doubles.")
    flink_restart_max_delay_ms: int = Field(60_000, ge=1, description="On a cluster: longest wait between restarts.")
    max_line_bytes: int = Field(1 << 20, ge=64, le=1 << 30,
                                description="Longest usable event line or Kafka record value, in bytes "
                                            "(characters on the Kafka `raw` fallback); a longer one is a dead "
                                            "letter `too_large`.")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, for sources read from Kafka.")
    kafka_group_id: str = Field("feature-platform", min_length=1, description="Consumer group of the Flink job.")
    kafka_topics: dict[str, str] = Field(default_factory=dict,
                                         description="Topic per source name (JSON); a source not listed reads the "
                                                     "topic named like the source.")
    stream_source: Literal["auto", "kafka", "files"] = Field(
        "auto", description="Where `feature-platform stream` reads: Kafka topics, the watched events folder, "
                            "or `auto` (Kafka when `kafka_bootstrap_servers` is set, else the data folder's events "
                            "folder).")
    stream_watch_interval_ms: int = Field(1000, ge=100, description="How often a stream over the events folder "
                                                                    "looks for new files.")
    source_idle_timeout: str = Field("2s", pattern=r"^[1-9][0-9]*(ms|s|min)$",
                                     description="A stream's source reader with no data for this long stops holding "
                                                 "the watermark back, so windows fire while a reader is idle.")
    online_store: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Feast online store: the embedded SQLite file, or Redis at `redis_url` (production).")
    redis_url: str = Field("127.0.0.1:6379", min_length=3,
                           description="Redis for `online_store: redis`, as Feast's connection string "
                                       "(`host:port[,db=0,password=...]`).")
    serve: ServeSettings = Field(default_factory=ServeSettings,
                                 description="`feature-platform serve` (docs/serving.md), e.g. FP_SERVE__PORT=8080.")
    test_crash_at: str | None = Field(None, description="TEST ONLY: the pipeline SIGKILLs itself at this point "
                                      "(pipelines.delta.ledger.CRASH_POINTS); used by the crash-recovery test.")
    stages: dict[str, StageConfig] = Field(default_factory=dict,
                                           description="Runtime stage settings by stage name (see docs/runtime.md); "
                                                       "read with stage(name).")
    openmetadata: OpenMetadataSettings = Field(default_factory=OpenMetadataSettings,
                                               description="OpenMetadata server for lineage (see docs/lineage.md), "
                                                           "e.g. FP_OPENMETADATA__URL, FP_OPENMETADATA__TOKEN.")
    data_checks: DataCheckThresholds = Field(default_factory=DataCheckThresholds,
                                             description="Thresholds and budgets of `feature-check --data` (see "
                                                         "docs/data-checks.md), e.g. FP_DATA_CHECKS__PSI_MAX=0.1.")
    rollout_store: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Where rollout state lives: `<data_dir>/rollout/rollouts.sqlite`, or Redis at "
                              "`redis_url` (shared by serving workers on several machines).")
    health: HealthDefaults = Field(default_factory=HealthDefaults,
                                   description="Defaults of `feature-platform health` (docs/health.md), e.g. "
                                               "FP_HEALTH__SERVE_METRICS_URL=http://127.0.0.1:6566/metrics.")

    @field_validator("data_dir", "contracts_dir", "feature_repo_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (PROJECT_ROOT / value).resolve()

    @model_validator(mode="after")
    def _remote_needs_an_address(self) -> Settings:
        if self.flink_target == "remote" and not self.flink_rest_address:
            raise ValueError("flink_target=remote needs flink_rest_address (FP_FLINK_REST_ADDRESS=http://host:8081)")
        return self

    @property
    def flink_cluster(self) -> str | None:
        """The remote cluster's REST URL when jobs run on a cluster, None for the local mini-cluster."""
        return self.flink_rest_address if self.flink_target == "remote" else None

    def on_cluster(self, rest_url: str | None) -> Settings:
        """These settings with jobs sent to the cluster at ``rest_url`` (the ``--cluster`` option); unchanged for
        None. Validated like the environment: a malformed URL is rejected naming ``flink_rest_address``."""
        if rest_url is None:
            return self
        return type(self).model_validate({**self.model_dump(), "flink_target": "remote",
                                          "flink_rest_address": rest_url})

    @property
    def delta_dir(self) -> Path:
        """One Delta table per contract major version lives under here, named ``<contract>_v<major>``."""
        return self.data_dir / "delta"

    @property
    def events_dir(self) -> Path:
        return self.data_dir / "events"

    @property
    def flink_dir(self) -> Path:
        """Flink's working area: checkpoints and the part files that the commit step turns into Delta commits."""
        return self.data_dir / "flink"

    @property
    def kafka_configured(self) -> bool:
        """True when the Kafka brokers were set (environment or arguments), not just defaulted."""
        return "kafka_bootstrap_servers" in self.model_fields_set

    def kafka_topic(self, source_name: str) -> str:
        """The Kafka topic a source is read from."""
        return self.kafka_topics.get(source_name, source_name)

    def delta_table_path(self, table_name: str) -> Path:
        return self.delta_dir / table_name

    def stage(self, name: str) -> StageConfig:
        """The runtime settings of stage ``name`` (``online-load`` and ``online_load`` are the same key)."""
        key = name.replace("-", "_").lower()
        for configured, config in self.stages.items():
            if configured.replace("-", "_").lower() == key:
                return config
        return StageConfig()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def parse_utc_time(text: str, option: str) -> datetime:
    """An ISO 8601 time given to ``option`` (``--end``, ``--as-of``, ...) as UTC; one without an offset is read as UTC
    (window bounds and Delta are UTC). Raises ``ValueError`` naming the option and the text when it is not a time.
    The commands turn that into their usage error (exit 2)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
