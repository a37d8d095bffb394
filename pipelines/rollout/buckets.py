"""Sticky assignment of entities to the candidate: bucket = murmur3(rollout id + entity key) mod 10,000.

The hash depends on nothing but the rollout id and the entity key, so an entity lands in the same bucket in every
worker process and after every restart; the candidate serves the buckets below ``weight × 100``, so widening the
weight only adds entities (an entity never flips back and forth between steps). Salting with the rollout id gives
each rollout its own sample: the 5 % of one rollout are not always the 5 % of the next. MurmurHash3 (x86, 32 bit,
seed 0, unsigned) through ``mmh3``, the library Feast already depends on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mmh3

BUCKETS = 10_000


def entity_key(values: Sequence[Any]) -> str:
    """The text of an entity key: its join-key values in the contract's order, ``\\x1f``-separated."""
    return "\x1f".join(str(v) for v in values)


def bucket(rollout_id: str, key: str) -> int:
    """The entity's bucket in ``[0, 10000)``."""
    return mmh3.hash(rollout_id + key, 0, signed=False) % BUCKETS


def in_candidate(rollout_id: str, key: str, weight_percent: float) -> bool:
    """Whether the candidate serves this entity at ``weight_percent``."""
    return bucket(rollout_id, key) < weight_percent * (BUCKETS // 100)
