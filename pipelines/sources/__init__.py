"""Event sources: where a contract source's JSON lines come from (see ``docs/sources.md``).

* ``location``: the typed locations (files, monitored folder, Kafka topic) the generated job reads.
* ``generator``: seeded, realistic events written as JSON-lines files (the embedded default and the tests).
* ``resolve``: what a bounded run needs from its sources (counts, pinned Kafka offsets, connector jars).
* ``count``: the input lines of a file or folder, counted as Flink's file source reads them.
* ``kafka``: Kafka at the edges (settings → location, publishing, offsets). The test broker is in
  :mod:`pipelines.testing.kafka_broker`.
"""
