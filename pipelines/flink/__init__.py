"""The Flink stage: run generated SQL in the local mini-cluster and hand finished part files to the Delta commit stage.

No feature logic lives here: the SQL comes from :mod:`pipelines.codegen.flink_sql`; this package builds the environment
(:mod:`.environment`), runs a statement set to completion (:mod:`.job`) and chains job → Delta commit (:mod:`.run`).
PyFlink is imported lazily inside functions so importing this package stays cheap.
"""
