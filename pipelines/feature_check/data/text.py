"""How data-check messages write numbers: shares as percentages people read at a glance."""

from __future__ import annotations

from datetime import timedelta


def percent(share: float) -> str:
    """0.004 → ``0.4 %``, 0.12345 → ``12.3 %``, 0 → ``0 %``."""
    value = share * 100
    if value == 0:
        return "0 %"
    return f"{value:.1f} %" if value >= 10 else f"{value:.2g} %"


def duration(value: timedelta) -> str:
    """A lag in the largest sensible unit: ``3m 20s``, ``2h 5m``, ``1d 3h``."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    for unit, size, sub_unit, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if seconds >= size:
            rest = (seconds % size) // sub_size
            return f"{sign}{seconds // size}{unit}" + (f" {rest}{sub_unit}" if rest else "")
    return f"{sign}{seconds}s"
