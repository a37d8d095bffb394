"""Module-level functions for stage tests (cpu stages need picklable functions; spawned workers import this module)."""

from __future__ import annotations

import os
import time


def double(x: int) -> int:
    return 2 * x


def affinity(_: object) -> tuple[int, list[int]]:
    """What the worker sees from inside: its pid and the CPUs it may run on."""
    return os.getpid(), sorted(os.sched_getaffinity(0))


def sleep_then_echo(x: tuple[float, int]) -> int:
    time.sleep(x[0])
    return x[1]


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total
