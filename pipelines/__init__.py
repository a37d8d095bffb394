"""A real-time feature platform driven by feature contracts.

The packages follow the data flow, top to bottom:

``contracts/``
    YAML contract -> typed model (``model``), with file:line errors (``load``) and semantic rules (``check``).
``codegen/``
    Pure functions from a contract to what runs: Flink SQL (``flink_sql``) and Feast objects (``feast_objects``).
``sources/``
    Where events come from on the embedded default: a seeded generator writing JSON-lines files.
``flink/``
    Runs the generated SQL in PyFlink (local mini-cluster): event time, watermarks, windows, checkpoints.
``delta/``
    The Delta table per contract major version (``schema``) and the step that commits Flink's output to it (``write``).
``feast_sync/``
    The Feast store built from the contracts, and loading the newest values from Delta into the online store.
``cli`` / ``check_cli``
    The console commands ``feature-platform`` (the jobs) and ``feature-check`` (the CI gate). They render reports and
    choose exit codes; nothing else does.

``config`` holds the one settings object; ``report`` the findings every check returns; ``resources`` measures the
peak memory of a run (Python and the Flink JVM).
"""
