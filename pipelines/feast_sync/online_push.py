"""The online-push stage (runtime stage ``online-push``): each committed Delta version → the online store, at once.

The continuous job (:mod:`pipelines.jobs.stream`) hands :meth:`OnlinePush.push` the Delta version each contract's
table reached with a commit batch; the stage loads what those commits added (the newest value per entity,
:func:`pipelines.feast_sync.online.load_commit`) while Flink keeps running, so the store is seconds behind Delta,
not "after the job".

Why it cannot lose or double anything:

* **Idempotent.** The writers keep a stored value unless the incoming one is newer by (event time, created time), and
  the store's version marker makes a gap (a version never pushed) or a store that lost its data (a Redis restart
  without persistence) reload the whole snapshot. Pushing a version twice changes nothing.
* **Retried, then kept.** Each push is one item of a runtime :class:`~pipelines.runtime.Stage` (threads, the
  stage's :class:`~pipelines.runtime.HybridLimiter` when ``settings.stage("online-push")`` sets a rate or a
  concurrency, transient errors retried with backoff; the rows themselves go through the rate-limited
  ``online-load`` stage). A push that still fails stays *pending*: the next :meth:`OnlinePush.push` (the stream calls
  it on every poll) tries again with the newest version, so an outage delays values, it never drops them.
* **Per contract in order.** One item per contract per call, and a call returns before the next starts, so two
  versions of one table are never loaded at the same time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pipelines.contracts.model import Contract
from pipelines.feast_sync.online import LoadResult, load_commit
from pipelines.feast_sync.online_writers import OnlineWriter
from pipelines.feast_sync.writer_for_store import online_writer
from pipelines.runtime.config import StageConfig
from pipelines.runtime.errors import StageError

if TYPE_CHECKING:
    from feast import FeatureStore

    from pipelines.runtime import Stage

STAGE_NAME = "online-push"


@dataclass(frozen=True)
class PushOutcome:
    """One contract's push: the load it made, or the error that left its version pending."""

    table_name: str
    version: int
    load: LoadResult | None = None
    error: str | None = None


@dataclass(frozen=True)
class _PushItem:
    contract: Contract
    table_path: Path
    version: int


class OnlinePush:
    """Pushes committed Delta versions of the given contracts into ``store``; use as a context manager.

    ``config`` is the ``online-push`` stage's (workers, limiter, retries); ``load_config`` the ``online-load``
    stage's that writes the rows (rate in entities/s)."""

    def __init__(self, store: FeatureStore, contracts: Sequence[tuple[Contract, Path]], *,
                 config: StageConfig | None = None, load_config: StageConfig | None = None) -> None:
        self.store = store
        self.contracts = {contract.table_name: (contract, path) for contract, path in contracts}
        self.config = config or StageConfig()
        self.load_config = load_config or StageConfig()
        #: table -> the newest committed version not yet in the store.
        self.pending: dict[str, int] = {}
        #: table -> the newest window end the store holds (from this process's pushes).
        self.newest_online: dict[str, datetime] = {}
        self._writers: dict[str, OnlineWriter] = {}
        self._stage: Stage | None = None

    def __enter__(self) -> OnlinePush:
        from pipelines.runtime import Stage

        self._stage = Stage(STAGE_NAME, self._push_one, kind="thread", config=self.config).__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        stage, self._stage = self._stage, None
        try:
            if stage is not None:
                stage.__exit__(kind, error, trace)
        finally:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()

    def push(self, versions: Mapping[str, int] | None = None) -> list[PushOutcome]:
        """Push ``versions`` (table -> Delta version) and every version still pending; one outcome per table tried.

        A table that fails stays pending with its newest version (retried on the next call)."""
        if self._stage is None:
            raise RuntimeError("OnlinePush is used outside its `with` block")
        for table, version in (versions or {}).items():
            if table in self.contracts:
                self.pending[table] = max(version, self.pending.get(table, version))
        items = [_PushItem(*self.contracts[table], version) for table, version in sorted(self.pending.items())]
        outcomes: list[PushOutcome] = []
        try:
            for item, load in zip(items, self._stage.map(items), strict=False):
                outcomes.append(self._done(item, load))
        except StageError as error:
            for index, item in enumerate(items[len(outcomes):], start=len(outcomes)):
                reason = str(error) if index == error.item_index else f"not pushed: {type(error.cause).__name__}"
                outcomes.append(PushOutcome(item.contract.table_name, item.version, error=reason))
        return outcomes

    def _done(self, item: _PushItem, load: LoadResult) -> PushOutcome:
        table = item.contract.table_name
        if self.pending.get(table) == item.version:
            del self.pending[table]
        if load.newest_event_time is not None:
            self.newest_online[table] = max(load.newest_event_time,
                                            self.newest_online.get(table, load.newest_event_time))
        return PushOutcome(table, item.version, load)

    def _push_one(self, item: _PushItem) -> LoadResult:
        table = item.contract.table_name
        writer = self._writers.get(table)
        if writer is None:
            writer = self._writers[table] = online_writer(self.store, item.contract)
        return load_commit(self.store, item.contract, item.table_path, item.version, writer=writer,
                           stage_config=self.load_config)
