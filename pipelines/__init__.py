"""A real-time feature platform driven by feature contracts.

The packages follow the data flow, and import only downward (an import-linter contract in pyproject.toml; run by
``tests/test_layers.py``). Lowest first:

``runtime/``
    The concurrency core: worker stages, hybrid limiter, deadlines, retries. Generic: imports nothing of the platform.
``config`` · ``errors`` · ``report`` · ``layout`` · ``resources`` · ``jvm/``
    The base: the one settings object; the error hierarchy (``PlatformError`` + ``Transient``/``Terminal``); the
    findings every check returns; what Flink hands to Delta (columns, null literal, dead-letter layout); peak memory;
    the Java runtime and Maven jars.
``contracts/``
    YAML contract -> typed model (``model``), with file:line errors (``load``), semantic rules (``check``) and the one
    loader every command uses (``valid``).
``sources/``
    Where events come from: the seeded generator, JSON-lines files or a watched folder, Kafka.
``codegen/``
    Pure functions from a contract to what runs: Flink SQL (``flink_sql``) and Feast objects (``feast_objects``).
``flink/``
    Runs the generated SQL in PyFlink: environment, submission, checkpoints, metrics. Nothing else.
``delta/``
    The only code that touches Delta Lake: table layout, exactly-once commit stage and ledger, dead letters, reads.
``feast_sync/``
    The Feast store built from the contracts, the Delta offline store, fast online loading, training sets.
``lineage/``
    Contract -> OpenMetadata: source, Flink pipeline, Delta table and Feast feature view with column-level lineage,
    tags and a data contract; a dry-run export; publishing after ``run``/``stream`` when a server is configured.
``serving/``
    ``feature-platform serve``: Feast's online API read straight from the online store, with TTLs, the contracts'
    fallbacks, load shedding and metrics, on pinned Granian workers.
``feature_check/``
    The CI gate as a library call (``check`` -> ``CheckRun``): breaking changes, data checks, output formats, its CLI.
``jobs/``
    run, compute, backfill, materialize, training_set, status: each wires the steps and returns a summary.
``cli/``
    The ``feature-platform`` console commands: render summaries, pick exit codes, nothing else.
``testing/``
    Real servers (Kafka, Redis, ``serve``) the tests and benchmarks start; never imported by the product.
"""
