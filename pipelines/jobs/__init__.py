"""The jobs: each wires the steps below it in data-flow order and returns a summary object; the CLI renders it.

``run`` (the main job: events → Flink → Delta → Feast online → values), ``compute`` (contracts over sources in one
Flink job with exactly-once Delta commits, resumable; used by ``run`` and the tests), ``backfill`` (the same SQL in
batch mode over a window_end range), ``materialize`` (reload the online store from Delta), ``training_set``
(point-in-time join from the Delta offline store) and ``status`` (tables, dead letters, the newest run). Jobs never
print: they report progress through a callback and raise :class:`~pipelines.errors.PlatformError` subclasses.
"""
