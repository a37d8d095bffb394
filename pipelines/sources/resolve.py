"""Turn what a caller says about each source into what a bounded run needs: locations, input counts and jars.

A run (:func:`pipelines.jobs.compute.run_contracts`) waits for its job to finish and proves that accepted events plus
dead letters equal its input, so every source must be bounded and countable before the job starts:

* a path or a bounded :class:`~pipelines.sources.location.FileSource` on the local disk: its lines are counted;
* a bounded :class:`~pipelines.sources.location.KafkaSource`: its offsets are pinned
  (:func:`pipelines.sources.kafka.pin_offsets`), so the job reads exactly the records counted;
* a monitored folder or an unbounded topic never finishes: refused here with the reason (start those jobs directly).

Only when a Kafka source is present are the connector jars fetched (:mod:`pipelines.jvm.jars`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import UsageError
from pipelines.sources.count import count_input_lines
from pipelines.sources.location import FileSource, KafkaSource, SourceLocation, as_location


@dataclass(frozen=True)
class ResolvedSources:
    """Per source name: where the job reads and how many lines or records that is; plus the jars the job needs."""

    locations: Mapping[str, SourceLocation]
    input_lines: Mapping[str, int]
    jars: tuple[Path, ...] = ()


def resolve_bounded_sources(sources: Mapping[str, SourceLocation | Path | str],
                            count_file_lines: Callable[[Path], int] = count_input_lines) -> ResolvedSources:
    """Resolve every source for a bounded run; ``count_file_lines`` counts the lines of a local file or folder.

    Raises :class:`~pipelines.errors.UsageError` naming the source when one is unbounded or cannot be counted.
    """
    locations: dict[str, SourceLocation] = {}
    counts: dict[str, int] = {}
    for name, value in sources.items():
        location = as_location(value)
        if not location.bounded:
            raise UsageError(f"source `{name}` is unbounded ({_describe(location)}): a run waits for its job to "
                             "finish; use a bounded location (no monitor interval, or a Kafka bounded mode)")
        if isinstance(location, KafkaSource):
            from pipelines.sources.kafka import pin_offsets

            location, counts[name] = pin_offsets(location)
        else:
            local = location.local_path
            if local is None:
                raise UsageError(f"source `{name}`: cannot count the lines of {location.uri} (not a local path)")
            counts[name] = count_file_lines(local)
        locations[name] = location
    jars: tuple[Path, ...] = ()
    if any(isinstance(location, KafkaSource) for location in locations.values()):
        from pipelines.jvm.jars import FLINK_KAFKA, fetch_jars

        jars = fetch_jars(FLINK_KAFKA)
    return ResolvedSources(locations, counts, jars)


def _describe(location: SourceLocation) -> str:
    if isinstance(location, FileSource):
        return f"{location.uri} monitored every {location.monitor_interval}"
    return f"Kafka topic {location.topic!r}, bounded mode {location.bounded_mode!r}"
