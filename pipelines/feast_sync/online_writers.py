"""What every fast online writer shares: the batch it takes (:class:`OnlineRows`), the write rule (:data:`WriteMode`),
what a write reports (:class:`WriteOutcome`), where the loaded Delta version is recorded (``MARKER_*``), the
:class:`OnlineWriter` protocol, and the error for what no writer reproduces.

Why our own writers: ``FeatureStore.write_to_online_store`` builds a protobuf object per value and writes one row
(SQLite) or one command (Redis) at a time from Python; here that ran at about 5 k entities/s. These writers encode a
whole Arrow batch column by column (:mod:`pipelines.feast_sync.online_encoding`) and write it in one SQLite
transaction (:mod:`pipelines.feast_sync.sqlite_writer`, multi-row upserts) or one round trip of pre-framed Redis
commands (:mod:`pipelines.feast_sync.redis_writer`, one Lua call per 128 entities), so they are many times faster
(``docs/online-loading.md``, Speed), and they store *the same bytes* under *the same keys* as Feast 0.67, so
``FeatureStore.get_online_features`` reads them back unchanged (``tests/feast_sync/test_online_writers.py`` compares
both stores byte for byte). :func:`pipelines.feast_sync.writer_for_store.online_writer` picks the writer a Feast store
needs.

Which write wins (Feast differs per store, and neither handles a same-time correction): a row replaces the stored one
when its event time is newer, or equal with a newer created time (``ingested_at``). So replaying a commit changes
nothing, an older row never overwrites a newer one, and a correction with the same event time is not dropped (each
writer's module says how its store decides). ``mode="replace"`` writes unconditionally (a full reload that must make
the store equal to a Delta snapshot, even where values moved back).

Why a module of its own: the encoder and both writers depend on these few definitions and this module on none of
them, so the imports run one way (contract <- encoding <- writers <- writer_for_store <- online).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pipelines.errors import PlatformError, Terminal

WriteMode = Literal["newer", "replace"]

#: Where the loaders record the Delta version a view's online data reflects (see ``write_marker``).
MARKER_KEY = b"feature_platform:loaded_delta_version"
MARKER_FEATURE = "__delta_version__"


class UnsupportedOnlineStoreError(PlatformError, Terminal):
    """The online store (or one of its options) has no fast writer here; the message names the setting."""


@dataclass(frozen=True)
class OnlineRows:
    """One batch in store-ready form: serialised entity keys, serialised values per feature (column-major),
    the feature types, and event / created times as UTC epoch microseconds. Picklable, so it can cross processes."""

    entity_keys: list[bytes]
    features: dict[str, list[bytes]]
    texts: dict[str, list[str | None]]
    event_us: list[int]
    created_us: list[int]

    @property
    def rows(self) -> int:
        return len(self.entity_keys)


@dataclass(frozen=True)
class WriteOutcome:
    """Entities of one batch whose values were written, and those skipped because the store held newer ones."""

    written: int
    skipped: int


class OnlineWriter(Protocol):
    """A fast writer for one feature view of one online store
    (:class:`~pipelines.feast_sync.sqlite_writer.SqliteOnlineWriter`,
    :class:`~pipelines.feast_sync.redis_writer.RedisOnlineWriter`)."""

    kind: str

    def server_epoch(self) -> str:
        """Changes whenever the store may have lost writes (a Redis restart); the loader reloads when it does."""
        ...

    def write(self, batch: OnlineRows, mode: WriteMode = "newer") -> WriteOutcome:
        """Write one encoded batch under ``mode``'s rule; idempotent, so a failed batch may be retried whole."""
        ...

    def read_marker(self) -> int | None:
        """The Delta version this view's online data reflects, None when unknown."""
        ...

    def write_marker(self, version: int) -> None:
        """Record the Delta version loaded (after the data it describes)."""
        ...

    def close(self) -> None:
        ...
