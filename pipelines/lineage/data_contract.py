"""The contract's promises as an OpenMetadata native data contract on its Delta table.

OpenMetadata 1.13 has data contracts (``CreateDataContractRequest``): a schema, an SLA, quality rules and owners
attached to one data asset. That is where a feature contract's guarantees belong (rather than free-form custom
properties), so the platform writes one per contract, on the Delta table that holds the features:

* ``schema``: the table's columns (what the contract promises consumers);
* ``sla.maxLatency``: the contract's ``sla.freshness``. OpenMetadata counts latency in whole minutes, hours or days,
  so a freshness under a minute, or not a whole number of minutes, is rounded *up* to the next minute (the exact
  value is in the description);
* ``sla.refreshFrequency``: how often a row is emitted (the contract's step), only when it is a whole number of
  hours (OpenMetadata's smallest unit here is the hour); otherwise the description says it;
* ``odcsQualityRules``: one ``nullValues`` rule per feature (ODCS library metric, in percent) from
  ``sla.null_rate_max`` or the feature's own override;
* ``owners``: the contract's owner when the server knows it as a team or user; ``displayName``: name and version;
  ``entityStatus``: Approved (a contract on the main branch passed review), Deprecated when the contract says so.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from pipelines.contracts.durations import format_duration
from pipelines.contracts.model import Contract
from pipelines.lineage.entities import contract_line, delta_columns, display_name
from pipelines.lineage.sdk import skip_sdk_package_init


def max_latency(freshness: timedelta) -> tuple[int, str]:
    """``freshness`` as OpenMetadata's (value, unit): whole days or hours when exact, else minutes rounded up."""
    seconds = freshness.total_seconds()
    if seconds >= 86400 and seconds % 86400 == 0:
        return int(seconds // 86400), "day"
    if seconds >= 3600 and seconds % 3600 == 0:
        return int(seconds // 3600), "hour"
    return max(1, math.ceil(seconds / 60)), "minute"


def refresh_frequency(step: timedelta) -> tuple[int, str] | None:
    """The emit interval as (value, unit) when it is a whole number of hours or days; None otherwise."""
    seconds = step.total_seconds()
    if seconds >= 86400 and seconds % 86400 == 0:
        return int(seconds // 86400), "day"
    if seconds >= 3600 and seconds % 3600 == 0:
        return int(seconds // 3600), "hour"
    return None


def null_rate_rules(contract: Contract) -> list[Any]:
    """One ODCS ``nullValues`` rule per feature: at most ``null_rate_max`` of the rows may be null (percent)."""
    skip_sdk_package_init()
    from metadata.generated.schema.entity.datacontract.odcs.odcsDataContract import (
        Dimension,
        OdcsQualityMetric,
        OdcsQualityRule,
        Type,
    )

    rules = []
    for feature in contract.features:
        override = contract.sla.features.get(feature.name)
        rate = override.null_rate_max if override is not None and override.null_rate_max is not None \
            else contract.sla.null_rate_max
        rules.append(OdcsQualityRule(
            type=Type.library, name=f"{feature.name}_null_rate", metric=OdcsQualityMetric.nullValues,
            column=feature.name, unit="percent", mustBeLessOrEqualTo=round(rate * 100, 6),
            dimension=Dimension.completeness,
            description=f"At most {rate:.4%} of `{feature.name}` values may be null (contract SLA)."))
    return rules


def data_contract(contract: Contract, table: Any, owners: Any) -> Any:
    """The data contract of ``contract`` on its Delta table (``table``: a reference; id filled by the publisher)."""
    skip_sdk_package_init()
    from metadata.generated.schema.api.data.createDataContract import CreateDataContractRequest
    from metadata.generated.schema.entity.data.dataContract import ContractSLA, MaxLatency, RefreshFrequency
    from metadata.generated.schema.type.status import EntityStatus

    latency, latency_unit = max_latency(contract.sla.freshness)
    refresh = refresh_frequency(contract.step)
    sla = ContractSLA(maxLatency=MaxLatency(value=latency, unit=latency_unit),
                      refreshFrequency=RefreshFrequency(interval=refresh[0], unit=refresh[1]) if refresh else None)
    return CreateDataContractRequest(
        name=contract.table_name, displayName=display_name(contract), entity=table,
        description=(f"{contract.description}\n\n{contract_line(contract)}\n\n"
                     f"SLA: values at most {format_duration(contract.sla.freshness)} old; a row every "
                     f"{format_duration(contract.step)} per active entity; at most "
                     f"{contract.sla.null_rate_max:.4%} nulls per feature unless a feature says otherwise."),
        entityStatus=EntityStatus.Deprecated if contract.deprecated else EntityStatus.Approved,
        schema=delta_columns(contract), sla=sla, odcsQualityRules=null_rate_rules(contract), owners=owners)
