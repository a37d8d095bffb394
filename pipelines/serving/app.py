"""The serving app: one RSGI application object per worker process (Granian's native interface), its routes, and
the request path of ``POST /get-online-features`` as five steps:

    parse (request) -> resolve (views per feature, per entity) -> read (stores) -> TTL + fallbacks -> encode

Admission comes first and costs nothing when it refuses: the in-flight bound (503 at once), then the client's rate
limit (429 + ``Retry-After``). The store read runs under the request's deadline; when it passes, the request is
answered with the fallbacks (see :mod:`pipelines.serving.fallbacks`) and counted as shed by ``deadline``.

Why RSGI and no framework: the request path is a handful of routes with bodies we parse ourselves; Granian's RSGI
hands over the body and takes the response bytes without the ASGI message dicts (docs/serving.md, server choice).

Per major (a rollout's serving gates read these): each entity's outcome (:mod:`pipelines.serving.outcomes`) and the
request's duration under every major that served one of its entities. While a rollout is in ``shadow``, the
candidate is read and compared after the answer is sent (:mod:`pipelines.serving.shadow`).

Routes: ``POST /get-online-features``, ``GET /health`` (the process answers), ``GET /ready`` (the store answers and
holds every view), ``GET /metrics`` (Prometheus, every worker's samples).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.config import ServeSettings, Settings
from pipelines.serving import metrics
from pipelines.serving.catalog import Catalog, ViewSpec, load_catalog
from pipelines.serving.encode import encode_error, encode_response
from pipelines.serving.fallbacks import Column, Tally, serve_group
from pipelines.serving.limits import ClientLimits, InFlight
from pipelines.serving.outcomes import entity_outcome
from pipelines.serving.request import BadRequest, OnlineRequest, parse_request
from pipelines.serving.resolve import NewestMajorRouter, Plan, Router, resolve
from pipelines.serving.rollout_routing import served_versions_header
from pipelines.serving.shadow import ShadowReads
from pipelines.serving.stores import Lookup, RedisReader, SqliteReader, Stored, StoreReader
from pipelines.serving.values import KeyEncoder

log = logging.getLogger("pipelines.serving")

ONLINE = "/get-online-features"
_JSON = [("content-type", "application/json")]
_STORE_ERROR_LOG_EVERY_S = 10.0


def make_reader(settings: Settings, catalog: Catalog) -> StoreReader:
    """The reader of the online store ``settings`` name (the same store the loaders write)."""
    if settings.online_store == "redis":
        # one connection per request in flight and per shadow read, so shadow reads never take a request's connection
        connections = settings.serve.max_in_flight + settings.serve.shadow_max_in_flight + 8
        return RedisReader(settings.redis_url, catalog.project, max_connections=connections)
    from pipelines.feast_sync.store import online_store_path

    return SqliteReader(online_store_path(settings), busy_timeout_s=settings.serve.sqlite_busy_timeout_ms / 1000)


class ServingApp:
    """The RSGI application. Built empty at import; each worker fills it in :meth:`__rsgi_init__` (settings,
    catalog, store reader, CPU pinning) and closes it in :meth:`__rsgi_del__`. :meth:`setup` does the same for
    embedding it elsewhere (tests, benchmarks)."""

    def __init__(self, router: Router | None = None) -> None:
        self.router: Router = router or NewestMajorRouter()
        self._own_router = router is None  # setup() installs the rollout router unless one was given
        self.catalog: Catalog | None = None
        self.reader: StoreReader | None = None
        self.config: ServeSettings | None = None
        self.in_flight = InFlight(1)
        self.client_limits: ClientLimits | None = None
        self._keys: dict[str, KeyEncoder] = {}
        self._children: dict[tuple[Any, ...], Any] = {}
        self._last_store_error = 0.0
        self.shadow: ShadowReads | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def setup(self, settings: Settings, *, workers: int = 1) -> None:
        config = settings.serve
        self.config = config
        self.catalog = load_catalog(settings)
        self.reader = make_reader(settings, self.catalog)
        self.in_flight = InFlight(config.max_in_flight)
        if config.client_rate is not None:
            share = config.client_rate / workers
            burst = config.client_burst if config.client_burst is not None else None
            self.client_limits = ClientLimits(share, None if burst is None else max(1, burst // workers))
        self._keys = {view.name: KeyEncoder(view.join_keys, view.key_types) for view in self.catalog.views.values()}
        if self._own_router:
            self.router = _rollout_router(settings, self.catalog, self._add_view)
        self.shadow = ShadowReads(self.reader, self._encoder, max_in_flight=config.shadow_max_in_flight,
                                  sample=config.shadow_sample, deadline_s=config.deadline_ms / 1000,
                                  child=self._child)

    def _encoder(self, view: ViewSpec) -> KeyEncoder:
        encoder = self._keys.get(view.name)
        if encoder is None:
            encoder = self._keys[view.name] = KeyEncoder(view.join_keys, view.key_types)
        return encoder

    def _add_view(self, view: ViewSpec) -> None:
        """A view served only during a rollout (the stable major, no longer in the repository)."""
        assert self.catalog is not None
        self.catalog.views.setdefault(view.name, view)
        self._keys.setdefault(view.name, KeyEncoder(view.join_keys, view.key_types))

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Read afresh, not get_settings(): a forked worker would inherit the cache its parent filled before it set
        # the run folder and worker count.
        settings = Settings()
        workers = settings.serve.workers or 1
        if settings.serve.run_dir is not None and settings.serve.pin:
            from pipelines.serving.pinning import claim_cpu

            claim_cpu(settings.serve.run_dir)
        self.setup(settings, workers=workers)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.reader is not None:
            loop.run_until_complete(self.reader.close())
        metrics.worker_exited(os.getpid())

    # -- routing ------------------------------------------------------------------------------------------------
    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        started = time.perf_counter()
        path = scope.path
        if path == ONLINE:
            if scope.method == "POST":
                code = await self._online(scope, proto, started)
            else:
                code = self._not_allowed(proto, "POST")
        elif path in ("/health", "/ready", "/metrics"):
            code = await self._get(path, proto) if scope.method == "GET" else self._not_allowed(proto, "GET")
        else:
            proto.response_bytes(404, _JSON, encode_error(f"no route {path}"))
            code = 404
            path = "other"
        self._child(metrics.REQUESTS, path, str(code)).inc()
        self._child(metrics.REQUEST_DURATION, path).observe(time.perf_counter() - started)

    def _not_allowed(self, proto: Any, allowed: str) -> int:
        proto.response_bytes(405, [*_JSON, ("allow", allowed)], encode_error(f"method not allowed; use {allowed}"))
        return 405

    async def _get(self, path: str, proto: Any) -> int:
        if path == "/health":
            proto.response_bytes(200, _JSON, b'{"status":"ok"}')
            return 200
        if path == "/metrics":
            proto.response_bytes(200, [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                                 metrics.render())
            return 200
        assert self.reader is not None and self.catalog is not None
        problem = await self.reader.ready(list(self.catalog.views.values()))
        if problem is None and not self.catalog.views:
            problem = "no online contract to serve"
        if problem is not None:
            proto.response_bytes(503, _JSON, encode_error(problem))
            return 503
        proto.response_bytes(200, _JSON, b'{"status":"ready"}')
        return 200

    # -- POST /get-online-features ------------------------------------------------------------------------------
    async def _online(self, scope: Any, proto: Any, started: float) -> int:
        config = self.config
        assert config is not None
        if not self.in_flight.try_enter():
            self._child(metrics.SHED, "overload").inc()
            proto.response_bytes(503, [*_JSON, ("retry-after", "1")],
                                 encode_error(f"overloaded: {self.in_flight.limit} requests in flight"))
            return 503
        gauge = metrics.IN_FLIGHT
        gauge.inc()
        try:
            if self.client_limits is not None:
                client = scope.headers.get(config.client_header) or scope.client.rpartition(":")[0]
                wait = self.client_limits.retry_after(client)
                if wait is not None:
                    self._child(metrics.SHED, "rate_limit").inc()
                    retry = str(max(1, int(wait + 0.999)))
                    proto.response_bytes(429, [*_JSON, ("retry-after", retry)],
                                         encode_error(f"rate limit of client {client!r} exceeded; retry in {retry}s"))
                    return 429
            body = await proto()
            try:
                if len(body) > config.max_body_bytes:
                    raise BadRequest(f"body of {len(body)} bytes exceeds {config.max_body_bytes}", status=413)
                request = parse_request(body, max_entities=config.max_entities)
                plan = resolve(request, self.catalog, self.router)  # type: ignore[arg-type]
            except BadRequest as error:
                proto.response_bytes(error.status, _JSON, encode_error(error.message))
                return error.status
            served = await self._serve(plan, request, config.deadline_ms / 1000)
            columns, tally = served.columns, served.tally
            self._count(tally)
            response = encode_response(plan.entity_columns, request.entities, plan.output_names, columns)
            proto.response_bytes(200, [*_JSON, ("x-fallbacks", str(tally.fallback_count)),
                                       ("x-served-versions", served_versions_header(plan.groups))], response)
            elapsed = time.perf_counter() - started
            for contract, major in tally.versions:
                self._child(metrics.VERSION_DURATION, contract, str(major)).observe(elapsed)
            if served.rows is not None:
                self._start_shadows(plan, request, served.rows, served.read_s)
            return 200
        finally:
            self.in_flight.leave()
            gauge.dec()

    def _start_shadows(self, plan: Plan, request: OnlineRequest, rows: list[list[Stored | None]],
                       read_s: float) -> None:
        """Shadow-read the candidate of every routed group whose contract's rollout is in shadow (after the answer
        was sent; the stable read must have succeeded, or there is nothing to compare)."""
        shadow_view = getattr(self.router, "shadow_view", None)
        if shadow_view is None or self.shadow is None:
            return
        catalog = self.catalog
        assert catalog is not None
        for group, group_rows in zip(plan.groups, rows, strict=True):
            if group.requested in catalog.views:
                continue  # a versioned reference is never routed, so never shadowed
            stable = group.single_view
            candidate = shadow_view(group.requested, catalog.by_contract[group.requested])
            if stable is None or candidate is None or candidate.major == stable.major:
                continue
            self.shadow.submit(stable, candidate, group.features, request.entities, request.entity_count,
                               group_rows, read_s)

    async def _serve(self, plan: Plan, request: OnlineRequest, budget_s: float) -> Served:
        """Read every group's values (one batch of lookups, under the deadline), then apply TTL and fallbacks."""
        lookups: list[Lookup] = []
        placements: list[tuple[int, list[int]]] = []
        for number, group in enumerate(plan.groups):
            by_view: dict[str, tuple[ViewSpec, list[int]]] = {}
            single = group.single_view
            if single is not None:
                by_view[single.name] = (single, list(range(request.entity_count)))
            else:
                for index, view in enumerate(group.views):
                    by_view.setdefault(view.name, (view, []))[1].append(index)
            for view, indexes in by_view.values():
                lookups.append(Lookup(view, self._keys[view.name].keys(request.entities, indexes), group.features))
                placements.append((number, indexes))
        read_started = time.perf_counter()
        results = await self._read(lookups, budget_s)
        read_s = time.perf_counter() - read_started
        rows: list[list[Stored | None]] = [[None] * request.entity_count for _ in plan.groups]
        if results is not None:
            for (number, indexes), found in zip(placements, results, strict=True):
                target = rows[number]
                for index, stored in zip(indexes, found, strict=True):
                    target[index] = stored
        tally = Tally()
        now = time.time()
        columns = [column for group, group_rows in zip(plan.groups, rows, strict=True)
                   for column in serve_group(group, group_rows, now, tally)]
        for group, group_rows in zip(plan.groups, rows, strict=True):
            for view, stored in zip(group.views, group_rows, strict=True):
                outcome = "error" if results is None else entity_outcome(view, stored, group.features, now)
                tally.outcomes[(view.contract, view.major, outcome)] += 1
        return Served(columns, tally, rows if results is not None else None, read_s)

    async def _read(self, lookups: Sequence[Lookup], budget_s: float) -> list[list[Stored | None]] | None:
        """The store's answer, or None when it failed or missed the deadline (the request then gets fallbacks)."""
        assert self.reader is not None
        try:
            async with asyncio.timeout(budget_s):
                return await self.reader.read(lookups)
        except TimeoutError:
            self._child(metrics.SHED, "deadline").inc()
            return None
        except Exception as error:  # the store failed: serve the degradation plan, say why in the log (throttled)
            now = time.monotonic()
            if now - self._last_store_error > _STORE_ERROR_LOG_EVERY_S:
                self._last_store_error = now
                log.warning("online store read failed, serving fallbacks: %s: %s", type(error).__name__, error)
            return None

    # -- metrics ------------------------------------------------------------------------------------------------
    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _count(self, tally: Tally) -> None:
        for status, count in tally.statuses.items():
            self._child(metrics.FEATURE_STATUSES, status).inc(count)
        for (view, feature, kind), count in tally.fallbacks.items():
            self._child(metrics.FALLBACKS, view, feature, kind).inc(count)
        for (contract, major), count in tally.versions.items():
            self._child(metrics.VERSION_REQUESTS, contract, str(major)).inc(count)
        for (contract, major, outcome), count in tally.outcomes.items():
            self._child(metrics.VERSION_ENTITIES, contract, str(major), outcome).inc(count)


@dataclass(frozen=True, slots=True)
class Served:
    """What :meth:`ServingApp._serve` produced: the output columns, the tally for the metrics, the rows read per
    group (None when the read failed or missed its deadline) and how long the store read took."""

    columns: list[Column]
    tally: Tally
    rows: list[list[Stored | None]] | None
    read_s: float


def _rollout_router(settings: Settings, catalog: Catalog, add_view: Any) -> Router:
    """Per-entity rollout routing over the shared rollout store (:mod:`pipelines.serving.rollout_routing`)."""
    from pipelines.rollout.router import RolloutRouter
    from pipelines.rollout.store import open_rollout_store
    from pipelines.serving.rollout_routing import RolloutViewRouter

    store = open_rollout_store(settings.rollout_store, settings.data_dir, settings.redis_url)
    return RolloutViewRouter(RolloutRouter(store), catalog.project, add_view)


#: What Granian loads in each worker (``pipelines.serving.app:app``).
app = ServingApp()
