"""Admission: a per-client rate limit (429 + ``Retry-After``) and a bound on requests in flight (503 at once).

Why shed instead of queue: a request that waits in a queue behind others misses its deadline anyway and delays
everyone behind it; answering 503 at once keeps the admitted requests' latency flat and tells the client (or its
load balancer) to go elsewhere. The bound is per worker process, checked before the body is read.

The rate limit uses the runtime's :class:`~pipelines.runtime.HybridLimiter`, one per client (the ``X-Client-Id``
header, else the peer address), asked with a deadline of *now*: a request it cannot admit at once is refused with
the limiter's own ``retry_after``. Each worker enforces ``rate / workers`` (connections spread evenly over the
workers sharing the port), so the limit is approximate by that spread. Limiters of idle clients are dropped beyond
:data:`MAX_CLIENTS` (least recently used first), so a scan of client ids cannot grow memory without bound.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from pipelines.runtime.deadline import Deadline
from pipelines.runtime.limiter import HybridLimiter, RateLimited

MAX_CLIENTS = 10_000


class InFlight:
    """Counts requests being handled by this worker; :meth:`try_enter` refuses one more than ``limit``."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def try_enter(self) -> bool:
        if self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1


class ClientLimits:
    """One token bucket per client; :meth:`retry_after` is None when admitted, else seconds to wait."""

    def __init__(self, rate: float, burst: int | None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        self._limiters: OrderedDict[str, HybridLimiter] = OrderedDict()

    def retry_after(self, client: str) -> float | None:
        limiter = self._limiters.get(client)
        if limiter is None:
            limiter = self._limiters[client] = HybridLimiter(self.rate, self.burst, name="serve-client")
            if len(self._limiters) > MAX_CLIENTS:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(client)
        try:
            with limiter.acquire(1, deadline=Deadline.after(0.0)):  # now or never: no waiting
                pass
        except RateLimited as refused:
            return refused.retry_after
        return None
