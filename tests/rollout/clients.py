"""Client traffic for the rollout tests: real HTTP requests by contract name, every answer recorded."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from pipelines.testing.rollout_stack import USERS

FEATURES = ["user_txn_stats:txn_count_5m", "user_txn_stats:amount_sum_5m"]


@dataclass
class Clients:
    """Two threads requesting 50 users at a time from ``population`` (changeable while running) until stopped; each
    answer's code, and for a 200 the send time and the major that served each entity (``x-served-versions``)."""

    url: str
    population: list[str] = field(default_factory=lambda: list(USERS))
    codes: Counter = field(default_factory=Counter)
    served: list[tuple[float, list[int]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, offset: int) -> None:
        session, batch = requests.Session(), offset
        while not self.stop.is_set():
            population = self.population
            users = population[(batch * 50) % len(population):][:50]
            batch += 2
            sent = datetime.now(UTC).timestamp()
            response = session.post(self.url + "/get-online-features", timeout=10,
                                    json={"features": FEATURES, "entities": {"user_id": users}})
            self.codes[response.status_code] += 1
            if response.status_code == 200:
                header = response.headers["x-served-versions"]
                self.served.append((sent, [int(v) for v in header.split("=", 1)[1].split(",")]))

    def __enter__(self) -> Clients:
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(2)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
