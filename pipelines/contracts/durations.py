"""Human-friendly durations (``30s``, ``5m``, ``1h``, ``7d``) used everywhere in contracts.

A contract is read by people in pull requests, so durations are written the way people say them and parsed into
``timedelta`` once, here. The pattern is also published in the JSON Schema so editors flag a typo before CI does.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

DURATION_PATTERN = r"^(0|[1-9][0-9]*)(ms|s|m|h|d)$"  # group 1: amount, group 2: unit
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(DURATION_PATTERN)


def parse_duration(value: Any) -> timedelta:
    """Parse ``"5m"``-style text into a timedelta; reject anything else with the expected form in the message."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as '30s', '5m', '1h' or '1d', got {value!r}")
    match = _DURATION_RE.match(value.strip())
    if match is None:
        raise ValueError(f"expected a duration such as '30s', '5m', '1h' or '1d' (a whole number and one of "
                         f"ms, s, m, h, d), got {value!r}")
    unit = match.group(2)
    amount = int(match.group(1))
    return timedelta(seconds=amount * _UNIT_SECONDS[unit])


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of a duration (``timedelta(minutes=60)`` -> ``"1h"``)."""
    millis = round(value.total_seconds() * 1000)
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if millis % (seconds * 1000) == 0:
            return f"{millis // (seconds * 1000)}{unit}"
    return f"{millis}ms"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "5m", "1h", "1d"]}),
]
