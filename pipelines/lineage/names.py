"""The names of everything the platform publishes to OpenMetadata, in one place: services, containers of entities,
fully qualified names (FQNs) and the classification that tags a contract's entities.

One platform, one set of services: the events' messaging service (Kafka) or storage service (JSON-lines folders), the
Flink pipeline service, the Delta database service and the Feast database service. Per contract (one major version):
a pipeline and a Delta table named like the contract's table (``<contract>_v<major>``), a Feast feature view of the
same name, and a data contract on the Delta table. A source shared by several contracts is one topic or container.

FQNs follow OpenMetadata's rule (``FullyQualifiedName.quoteName`` on the server): parts are joined with ``.``, and a
part containing a dot is wrapped in double quotes (Kafka topics may contain dots); no part may contain a double quote.
"""

from __future__ import annotations

MESSAGING_SERVICE = "feature_platform_kafka"
STORAGE_SERVICE = "feature_platform_files"
PIPELINE_SERVICE = "feature_platform_flink"
DELTA_SERVICE = "feature_platform_delta"
DELTA_DATABASE = "feature_platform"
DELTA_SCHEMA = "features"
FEAST_SERVICE = "feast"
FEAST_SCHEMA = "feature_views"
#: Every entity made from a contract carries the tag ``FeatureContract.<contract name>``: one search finds them all.
CLASSIFICATION = "FeatureContract"


def quote_part(name: str) -> str:
    """One FQN part: quoted when it contains a dot (OpenMetadata's ``quoteName``)."""
    if '"' in name:
        raise ValueError(f"an OpenMetadata name cannot contain a double quote: {name!r}")
    return f'"{name}"' if "." in name else name


def fqn(*parts: str) -> str:
    """A fully qualified name from its parts."""
    return ".".join(quote_part(part) for part in parts)


def topic_fqn(topic: str) -> str:
    return fqn(MESSAGING_SERVICE, topic)


def container_fqn(source_name: str) -> str:
    return fqn(STORAGE_SERVICE, source_name)


def pipeline_fqn(table_name: str) -> str:
    return fqn(PIPELINE_SERVICE, table_name)


def delta_table_fqn(table_name: str) -> str:
    return fqn(DELTA_SERVICE, DELTA_DATABASE, DELTA_SCHEMA, table_name)


def feature_view_fqn(project: str, table_name: str) -> str:
    return fqn(FEAST_SERVICE, project, FEAST_SCHEMA, table_name)


def tag_fqn(contract_name: str) -> str:
    return fqn(CLASSIFICATION, contract_name)
