"""Shadow reads: while a rollout is in ``shadow`` (step 0 %), every entity is served by the stable major, and its
candidate major is read too, for the same entities and features, and compared (:mod:`pipelines.serving.outcomes`).

Why off the response path: the client's answer must never wait for, or fail because of, a version it is not served
from. The candidate read is started as a task on the worker's event loop only after the answer was handed to the
server, and it runs under the same deadline as a served read, so a slow candidate costs a task, not a request.

Bounded: a worker runs at most ``serve.shadow_max_in_flight`` shadow reads at once (default 16); a request arriving
when they are all busy is not shadowed, and its entities count in ``fp_rollout_shadow_dropped_total``. Sampled:
``serve.shadow_sample`` (default 1.0, every request) is the share of requests shadowed, decided per request.

Recorded (names in :mod:`pipelines.serving.metrics`): the comparison of each entity, each differing feature, what
the candidate would have served (its outcome: the rollout's serving gates read it in shadow instead of the served
outcomes, since nothing is served by the candidate), and the read time of both sides: the candidate's own read, and
the stable side's read of the request it shadows (one store round trip for every view that request read).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pipelines.serving import metrics
from pipelines.serving.catalog import ViewSpec
from pipelines.serving.outcomes import compare, entity_outcome
from pipelines.serving.stores import Lookup, Stored, StoreReader
from pipelines.serving.values import KeyEncoder

log = logging.getLogger(__name__)


class ShadowReads:
    """Starts, bounds and records the shadow reads of one worker."""

    def __init__(self, reader: StoreReader, keys: Callable[[ViewSpec], KeyEncoder], *, max_in_flight: int,
                 sample: float, deadline_s: float, child: Callable[..., Any]) -> None:
        self.reader, self.keys, self.child = reader, keys, child
        self.max_in_flight, self.sample, self.deadline_s = max_in_flight, sample, deadline_s
        self.in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, stable: ViewSpec, candidate: ViewSpec, features: Sequence[str], entities: dict[str, list[Any]],
               count: int, stable_rows: list[Stored | None], stable_read_s: float) -> bool:
        """Start the shadow read of one request's group (after its answer was sent); False when not started."""
        if self.sample < 1.0 and random.random() >= self.sample:
            return False
        if self.in_flight >= self.max_in_flight:
            self.child(metrics.SHADOW_DROPPED, stable.contract).inc(count)
            return False
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(
            self._run(stable, candidate, tuple(features), entities, count, stable_rows, stable_read_s))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, stable: ViewSpec, candidate: ViewSpec, features: tuple[str, ...],
                   entities: dict[str, list[Any]], count: int, stable_rows: list[Stored | None],
                   stable_read_s: float) -> None:
        try:
            keys = self.keys(candidate).keys(entities, list(range(count)))  # in the task: off the request's time
            wanted = [name for name in features if name in candidate.features]
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.deadline_s):
                    found: list[Stored | None] | None = (await self.reader.read([Lookup(candidate, keys, wanted)]))[0]
            except Exception as error:  # a failed or late candidate read is what the error gate measures
                log.debug("shadow read of %s failed: %s: %s", candidate.name, type(error).__name__, error)
                found = None
            elapsed = time.perf_counter() - started
            self._record(stable, candidate, features, stable_rows, found, stable_read_s, elapsed)
        except Exception:  # never let a shadow task die silently: say why, the client was answered already
            log.exception("shadow comparison of %s failed", candidate.name)
        finally:
            self.in_flight -= 1

    def _record(self, stable: ViewSpec, candidate: ViewSpec, features: tuple[str, ...],
                stable_rows: list[Stored | None], found: list[Stored | None] | None, stable_read_s: float,
                candidate_read_s: float) -> None:
        contract = stable.contract
        self.child(metrics.SHADOW_READ, contract, str(stable.major)).observe(stable_read_s)
        self.child(metrics.SHADOW_READ, contract, str(candidate.major)).observe(candidate_read_s)
        if found is None:
            self.child(metrics.SHADOW_COMPARISONS, contract, "error").inc(len(stable_rows))
            self.child(metrics.SHADOW_ENTITIES, contract, "error").inc(len(stable_rows))
            return
        now = time.time()
        comparisons: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        differences: Counter[tuple[str, str]] = Counter()
        for ours, theirs in zip(stable_rows, found, strict=True):
            comparison, differing = compare(stable, ours, candidate, theirs, features, now)
            comparisons[comparison] += 1
            differences.update(differing)
            outcomes[entity_outcome(candidate, theirs, features, now)] += 1
        for outcome, count in comparisons.items():
            self.child(metrics.SHADOW_COMPARISONS, contract, outcome).inc(count)
        for outcome, count in outcomes.items():
            self.child(metrics.SHADOW_ENTITIES, contract, outcome).inc(count)
        for (feature, kind), count in differences.items():
            self.child(metrics.SHADOW_DIFFERENCES, contract, feature, kind).inc(count)
