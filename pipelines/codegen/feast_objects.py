"""Contract -> Feast objects: the entities, Delta file source, feature view and feature service of one contract.

A pure function of the contract and the Delta table path, so the result can be compared with golden files and applied
by either the Feast CLI (``feature_repo/``) or our own code (:mod:`pipelines.feast_sync`) with identical outcomes.

Naming: the feature view and the feature service are both named after the Delta table (``<contract>_v<major>``), so a
new major version of a contract gets its own view and service beside the old ones (rollouts serve both side by side;
Feast keeps views and services in separate namespaces, so the shared name cannot clash). Readers ask for the service
(:func:`feature_service_name`).

Feast is slow to import (several seconds), so it is imported inside the functions: importing this module stays cheap
for the lightweight ``feature-check`` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts.model import Contract
from pipelines.layout import INGESTED_AT, WINDOW_END

if TYPE_CHECKING:
    from feast import Entity, FeatureService, FeatureView, FileSource

#: Placeholder written instead of the machine-specific Delta path when objects are serialised for comparison.
DELTA_PATH_PLACEHOLDER = "<DELTA_TABLE_PATH>"

#: Contract column/feature types -> names of Feast ``ValueType`` members (entity value types).
VALUE_TYPE_NAMES: dict[str, str] = {
    "string": "STRING",
    "int32": "INT32",
    "int64": "INT64",
    "float": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOL",
    "timestamp": "UNIX_TIMESTAMP",
}

#: Contract column/feature types -> names of ``feast.types`` dtypes (feature view fields).
FEAST_DTYPE_NAMES: dict[str, str] = {
    "string": "String",
    "int32": "Int32",
    "int64": "Int64",
    "float": "Float32",
    "double": "Float64",
    "boolean": "Bool",
    "timestamp": "UnixTimestamp",
}


@dataclass(frozen=True)
class FeastObjects:
    """Everything Feast needs to serve one contract (one major version)."""

    entities: tuple[Entity, ...]
    source: FileSource
    feature_view: FeatureView
    feature_service: FeatureService

    def all(self) -> list[Any]:
        """The objects in the order ``FeatureStore.apply`` accepts them."""
        return [*self.entities, self.source, self.feature_view, self.feature_service]


def entity_name(contract: Contract, join_key: str) -> str:
    """The Feast entity of one join key: the contract's entity name, or ``<entity>_<key>`` for composite keys."""
    entity = contract.entity
    return entity.name if len(entity.join_keys) == 1 else f"{entity.name}_{join_key}"


def feature_service_name(contract: Contract) -> str:
    """The contract's feature service: ``<contract>_v<major>``, one per major version, like its view and Delta table."""
    return contract.table_name


def contract_tags(contract: Contract) -> dict[str, str]:
    """Tags that tie a Feast object to the exact contract text that produced it."""
    return {
        "contract": contract.name,
        "version": contract.version,
        "contract_hash": contract.content_hash(),
        "owner": contract.owner,
    }


def feast_objects(contract: Contract, delta_table_path: Path) -> FeastObjects:
    """Build the Feast objects of ``contract`` reading the Delta table at ``delta_table_path`` (must be absolute:
    Feast resolves relative Delta paths against the working directory, not the repository)."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
    from feast import types as feast_types
    from feast.data_format import DeltaFormat  # FileSource rejects the newer TableFormat.DeltaFormat (feast 0.67)

    if not Path(delta_table_path).is_absolute():
        raise ValueError(f"the Delta table path must be absolute, got {str(delta_table_path)!r}: Feast would resolve "
                         f"it against the working directory")
    columns = contract.source.columns
    entities = tuple(
        Entity(name=entity_name(contract, key), join_keys=[key],
               value_type=ValueType[VALUE_TYPE_NAMES[columns[key].type]], description=contract.entity.description or "")
        for key in contract.entity.join_keys
    )
    source = FileSource(
        name=f"{contract.table_name}_source",
        path=str(delta_table_path),
        file_format=DeltaFormat(),
        timestamp_field=WINDOW_END,
        created_timestamp_column=INGESTED_AT,
        description=f"Delta table {contract.table_name}: window results of contract {contract.name}.",
    )
    key_fields = [Field(name=key, dtype=getattr(feast_types, FEAST_DTYPE_NAMES[columns[key].type]),
                        description=columns[key].description or "")
                  for key in contract.entity.join_keys]
    feature_fields = [Field(name=f.name, dtype=getattr(feast_types, FEAST_DTYPE_NAMES[f.type]),
                            description=f.description, tags={"unit": f.unit} if f.unit else {})
                      for f in contract.features]
    tags = contract_tags(contract)
    feature_view = FeatureView(
        name=contract.table_name,
        entities=list(entities),
        ttl=contract.serving.ttl,
        schema=[*key_fields, *feature_fields],
        online=contract.serving.online,
        source=source,
        description=contract.description,
        owner=contract.owner,
        tags=tags,
    )
    feature_service = FeatureService(name=feature_service_name(contract), features=[feature_view], tags=tags,
                                     description=contract.description, owner=contract.owner)
    return FeastObjects(entities, source, feature_view, feature_service)


#: Proto fields that change on every apply (timestamps set by the registry), dropped before comparing.
_VOLATILE_KEYS = frozenset({"createdTimestamp", "lastUpdatedTimestamp"})


def comparable_dict(objects: FeastObjects, delta_table_path: Path) -> dict[str, Any]:
    """The objects as plain JSON-able data (their protos), with the Delta path replaced by
    :data:`DELTA_PATH_PLACEHOLDER` and registry timestamps removed: stable across machines, for golden files."""
    from google.protobuf.json_format import MessageToDict

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in sorted(value.items()) if k not in _VOLATILE_KEYS}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str) and str(delta_table_path) in value:
            return value.replace(str(delta_table_path), DELTA_PATH_PLACEHOLDER)
        return value

    return clean({
        "entities": [MessageToDict(e.to_proto()) for e in objects.entities],
        "source": MessageToDict(objects.source.to_proto()),
        "feature_view": MessageToDict(objects.feature_view.to_proto()),
        "feature_service": MessageToDict(objects.feature_service.to_proto()),
    })
