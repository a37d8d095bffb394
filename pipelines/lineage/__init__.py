"""Lineage: contract -> OpenMetadata entities and column-level lineage edges (source -> Flink job -> Delta -> Feast).

Modules, in the order a publish uses them (``docs/lineage.md`` says what is published and why):

``sdk``
    Imports the OpenMetadata SDK without its package ``__init__`` (seconds saved); placeholder ids.
``names``
    Service names and fully qualified names of everything published.
``entities`` · ``edges`` · ``data_contract``
    Contract -> create requests (topic or container, pipeline with the generated SQL, Delta table, feature view,
    tags), lineage edges with column lineage, and the native data contract with the SLA: all built with the SDK's
    generated models.
``plan``
    Every request of a publish in dependency levels, for a dry run or a publish (``LineageScope`` -> ``LineagePlan``).
``export``
    A plan as JSON (``--dry-run``).
``client`` · ``publish``
    The SDK client with timeouts and its errors as the platform's; the publish on the runtime (retries, deadline).
``hook``
    ``publish_if_configured``: what ``run`` and ``stream`` call after their work; never fails the job.

Nothing here imports the SDK at module level: ``import pipelines.lineage.<module>`` stays cheap.
"""
