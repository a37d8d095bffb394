"""Flink: run generated SQL, nothing else (no feature logic, no Delta).

The SQL comes from :mod:`pipelines.codegen.flink_sql`; this package builds the environment (:mod:`.environment`),
submits a statement set and waits for it (:mod:`.job`), or starts it and hands back a handle to poll
(:mod:`.running`), configures and finds retained checkpoints (:mod:`.checkpoints`) and reads a running job's metrics
(:mod:`.monitor`); :mod:`.cluster` holds what is specific to a remote cluster (the keys that target it, its REST API
for status, failure causes and cancellation). The jobs (:mod:`pipelines.jobs`) chain Flink with the Delta commit
stage. PyFlink is imported lazily inside functions so importing this package stays cheap.
"""
