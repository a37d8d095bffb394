"""Where a source's events come from: a folder of JSON-lines files or a Kafka topic, as small typed values.

The generated job (:mod:`pipelines.codegen.flink_sql`) turns a location into the source table's connector options;
nothing else about a source changes with its location (same raw line, rowtime, watermark and classification).

* :class:`FileSource`: a file or folder of JSON lines. Bounded by default (the job reads what is there and finishes,
  firing every window: tests and backfills). With ``monitor_interval`` the folder is watched and files dropped later
  are read too (``source.monitor-interval``); such a job never finishes by itself. Publish files atomically (write a
  hidden ``.name.tmp``, then rename): Flink reads each path once, and a half-written file loses its second half.
* :class:`KafkaSource`: a topic read with the Flink Kafka SQL connector (``fp-lines`` format: the record value is the
  line). ``bounded_mode`` other than ``unbounded`` makes the job finish (tests, backfills); ``specific_offsets`` pins
  where it starts and stops per partition, which is how :func:`pipelines.sources.kafka.pin_offsets` makes a bounded
  run read exactly the records it counted. Needs the connector jar (:mod:`pipelines.jvm.jars`).

A bare string or :class:`~pathlib.Path` still works wherever a location is expected (:func:`as_location`): it means a
bounded :class:`FileSource`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse
from urllib.request import url2pathname

StartupMode = Literal["earliest-offset", "latest-offset", "group-offsets", "specific-offsets"]
BoundedMode = Literal["unbounded", "latest-offset", "group-offsets", "specific-offsets"]


@dataclass(frozen=True)
class FileSource:
    """JSON-lines files under ``uri`` (a ``file://`` URI, or any filesystem URI Flink can read)."""

    uri: str
    #: None: bounded (read what is there, then finish). A duration: watch the folder for new files that often.
    monitor_interval: timedelta | None = None

    @classmethod
    def local(cls, path: Path | str, *, monitor_interval: timedelta | None = None) -> FileSource:
        """A local file or folder (made absolute, so the job does not depend on the working directory)."""
        return cls(Path(path).resolve().as_uri(), monitor_interval)

    @property
    def local_path(self) -> Path | None:
        """The local path behind a ``file:`` URI; None for any other filesystem."""
        parsed = urlparse(self.uri)
        return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None

    @property
    def bounded(self) -> bool:
        return self.monitor_interval is None


@dataclass(frozen=True)
class KafkaSource:
    """One Kafka topic, each record value one JSON line."""

    topic: str
    bootstrap_servers: str
    group_id: str
    startup_mode: StartupMode = "group-offsets"
    bounded_mode: BoundedMode = "unbounded"
    #: Per-partition start offsets, for ``startup_mode="specific-offsets"``.
    start_offsets: Mapping[int, int] | None = None
    #: Per-partition stop offsets (exclusive), for ``bounded_mode="specific-offsets"``.
    stop_offsets: Mapping[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.topic or not self.bootstrap_servers or not self.group_id:
            raise ValueError("a Kafka source needs a topic, bootstrap servers and a group id")
        if (self.startup_mode == "specific-offsets") != (self.start_offsets is not None):
            raise ValueError("start_offsets go with startup_mode='specific-offsets' and only with it")
        if (self.bounded_mode == "specific-offsets") != (self.stop_offsets is not None):
            raise ValueError("stop_offsets go with bounded_mode='specific-offsets' and only with it")

    @property
    def bounded(self) -> bool:
        return self.bounded_mode != "unbounded"


SourceLocation = FileSource | KafkaSource


def as_location(value: SourceLocation | Path | str) -> SourceLocation:
    """A location as given; a path or URI string becomes a bounded :class:`FileSource` (the historical form).

    A string with a scheme (``file:///events``, ``s3://bucket/events``) is used as the URI; any other string or a
    :class:`~pathlib.Path` is a local path.
    """
    if isinstance(value, FileSource | KafkaSource):
        return value
    if isinstance(value, str) and urlparse(value).scheme not in ("", *_WINDOWS_DRIVES):
        return FileSource(value)
    return FileSource.local(value)


_WINDOWS_DRIVES = tuple("abcdefghijklmnopqrstuvwxyz")  # ``c:\events`` parses with scheme ``c``
