"""One typed, frozen settings object: the only place that reads the environment.

Every setting has a default that works on a laptop with nothing running; each can be overridden with an environment
variable named ``FP_<FIELD>`` (for example ``FP_DATA_DIR=/mnt/features``). Relative paths are resolved against the
project root, never against the current working directory, so commands behave the same wherever they are started.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
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


class Settings(BaseSettings):
    """Where data lives and how the local Flink mini-cluster runs."""

    # "__" nests: FP_STAGES__ONLINE_LOAD__RATE=10000 sets stages["online_load"].rate.
    model_config = SettingsConfigDict(env_prefix="FP_", frozen=True, extra="forbid", env_nested_delimiter="__")

    data_dir: Path = Field(Path("data"), description="Root of all local data: events, Delta tables, Flink state.")
    contracts_dir: Path = Field(Path("contracts"), description="Folder with the contract YAML files.")
    feature_repo_dir: Path = Field(Path("feature_repo"), description="The Feast repository.")
    parallelism: int = Field(2, ge=1, le=64, description="Flink parallelism of the local mini-cluster.")
    checkpoint_interval_ms: int = Field(2000, ge=100, description="Flink checkpoint interval.")
    parse_once: Literal["auto", "on", "off"] = Field(
        "auto", description="Parse each JSON line once with the platform's Java functions (`auto`: when they can be "
                            "built, else the plain SQL; `on`: required; `off`: plain SQL). Same results either way.")
    jvm_heap: str = Field("1g", pattern=r"^[1-9][0-9]*[mg]$", description="Maximum heap of the local Flink JVM.")
    max_line_bytes: int = Field(1 << 20, ge=64, le=1 << 30,
                                description="Longest usable event line (bytes in files, characters in Kafka "
                                            "records); a longer one is a dead letter `too_large`.")
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Kafka brokers, for sources read from Kafka.")
    kafka_group_id: str = Field("feature-platform", min_length=1, description="Consumer group of the Flink job.")
    kafka_topics: dict[str, str] = Field(default_factory=dict,
                                         description="Topic per source name (JSON); a source not listed reads the "
                                                     "topic named like the source.")
    online_store: Literal["sqlite", "redis"] = Field(
        "sqlite", description="Feast online store: the embedded SQLite file, or Redis at `redis_url` (production).")
    redis_url: str = Field("127.0.0.1:6379", min_length=3,
                           description="Redis for `online_store: redis`, as Feast's connection string "
                                       "(`host:port[,db=0,password=...]`).")
    test_crash_at: str | None = Field(None, description="TEST ONLY: the pipeline SIGKILLs itself at this point "
                                      "(pipelines.delta.ledger.CRASH_POINTS); used by the crash-recovery test.")
    stages: dict[str, StageConfig] = Field(default_factory=dict,
                                           description="Runtime stage settings by stage name (see docs/runtime.md); "
                                                       "read with stage(name).")
    data_checks: DataCheckThresholds = Field(default_factory=DataCheckThresholds,
                                             description="Thresholds and budgets of `feature-check --data` (see "
                                                         "docs/data-checks.md), e.g. FP_DATA_CHECKS__PSI_MAX=0.1.")

    @field_validator("data_dir", "contracts_dir", "feature_repo_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (PROJECT_ROOT / value).resolve()

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
