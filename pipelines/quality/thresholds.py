"""Thresholds and budgets of the data checks (``feature-check --data``), one frozen object inside :class:`Settings`.

It lives here, next to the checks that read it, and is plugged into :class:`pipelines.config.Settings` as
``data_checks``; override a value with ``FP_DATA_CHECKS__PSI_MAX=0.1`` (``__`` nests). The module imports nothing but
pydantic, so loading the settings never pulls in pyarrow, deltalake or Great Expectations. docs/data-checks.md says
what each threshold measures.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
