"""Feast's byte formats on the read side: entity keys to look up, stored values and timestamps to JSON-ready Python.

The inverse of :mod:`pipelines.feast_sync.online_encoding` for the four contract feature types (int64, double,
string, boolean; int32 and float are decoded too, for stores written by other tools), done with ``struct`` and a
varint loop instead of one protobuf object per value. JSON forms follow Feast's feature server
(``feast.feature_server_utils``): numbers and strings as themselves, non-finite floats as ``"NaN"``/``"Infinity"``
/``"-Infinity"``, timestamps as RFC 3339 with ``Z`` and only as many fraction digits as needed.
"""

from __future__ import annotations

import calendar
import math
import struct
from datetime import UTC, datetime
from typing import Any

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_HEADER = struct.Struct("<I")
_TYPED_LEN = struct.Struct("<II")
_INT64_KEY = struct.Struct("<IIq")
_INT32_KEY = struct.Struct("<IIi")
EPOCH_TEXT = "1970-01-01T00:00:00Z"


class KeyEncoder:
    """Feast's entity key serialisation (version 3) for one view's join keys: key count, the sorted key names, then
    each value as ``<type><length><bytes>`` little endian. The name header is built once per view."""

    __slots__ = ("_order", "_prefix", "_types")

    def __init__(self, join_keys: tuple[str, ...], key_types: tuple[str, ...]) -> None:
        pairs = sorted(zip(join_keys, key_types, strict=True))
        header = [_HEADER.pack(len(pairs))]
        for name, _ in pairs:
            encoded = name.encode("utf-8")
            header.append(_TYPED_LEN.pack(2, len(encoded)) + encoded)
        self._prefix = b"".join(header)
        self._order = [name for name, _ in pairs]
        self._types = [kind for _, kind in pairs]

    def keys(self, entities: dict[str, list[Any]], indexes: list[int]) -> list[bytes]:
        """The serialised key of each entity at ``indexes`` (types were checked by the resolver)."""
        columns = [entities[name] for name in self._order]
        out = []
        for index in indexes:
            parts = [self._prefix]
            for column, kind in zip(columns, self._types, strict=True):
                value = column[index]
                if kind == "string":
                    data = value.encode("utf-8")
                    parts.append(_TYPED_LEN.pack(2, len(data)) + data)
                elif kind == "int64":
                    parts.append(_INT64_KEY.pack(4, 8, value))
                else:
                    parts.append(_INT32_KEY.pack(3, 4, value))
            out.append(b"".join(parts))
        return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _json_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def decode_value(data: bytes | None) -> Any:
    """A serialised ``feast.types.Value`` as the JSON value Feast's server returns (None for empty or unknown)."""
    if not data:
        return None
    tag = data[0]
    if tag == 0x20 or tag == 0x18:  # int64_val / int32_val (negative int32 is sign-extended to 64 bits)
        return _signed64(_varint(data, 1)[0])
    if tag == 0x29:
        return _json_float(_DOUBLE.unpack_from(data, 1)[0])
    if tag == 0x12:
        length, pos = _varint(data, 1)
        return data[pos:pos + length].decode("utf-8")
    if tag == 0x38:
        return bool(_varint(data, 1)[0])
    if tag == 0x35:
        return _json_float(_FLOAT.unpack_from(data, 1)[0])
    return None


def _decode_double(data: bytes | None) -> Any:
    if not data:
        return None
    if data[0] != 0x29:
        return decode_value(data)
    value = _DOUBLE.unpack_from(data, 1)[0]
    return value if math.isfinite(value) else _json_float(value)


def _decode_int(data: bytes | None) -> Any:
    if not data:
        return None
    if len(data) == 2 and data[0] in (0x20, 0x18) and data[1] < 0x80:  # a small number: one varint byte
        return data[1]
    return decode_value(data)


def _decode_string(data: bytes | None) -> Any:
    if not data:
        return None
    if data[0] == 0x12 and len(data) > 1 and data[1] < 0x80:  # shorter than 128 bytes: one length byte
        return data[2:].decode("utf-8")
    return decode_value(data)


#: The decoder of each contract feature type: the common encodings without the generic dispatch.
DECODERS = {"double": _decode_double, "int64": _decode_int, "string": _decode_string, "boolean": decode_value}


def timestamp_proto_seconds(data: bytes | None) -> tuple[int, int] | None:
    """(seconds, nanos) of a ``google.protobuf.Timestamp`` (Feast's Redis ``_ts`` field), None when absent."""
    if data is None:
        return None
    seconds = nanos = 0
    pos = 0
    while pos < len(data):
        tag = data[pos]
        value, pos = _varint(data, pos + 1)
        if tag == 0x08:
            seconds = _signed64(value)
        elif tag == 0x10:
            nanos = value
    return seconds, nanos


_SQLITE_SECONDS: dict[int, int] = {}


def sqlite_epoch_seconds(stored: int) -> int:
    """UTC epoch seconds of a Feast SQLite ``event_ts``: Feast reads it with ``datetime.fromtimestamp`` (local time)
    and labels the result UTC, so off UTC it shifts by the local offset; reading it the same way keeps our values and
    timestamps equal to Feast's."""
    seconds = _SQLITE_SECONDS.get(stored)
    if seconds is None:
        if len(_SQLITE_SECONDS) > 100_000:
            _SQLITE_SECONDS.clear()
        seconds = _SQLITE_SECONDS[stored] = calendar.timegm(datetime.fromtimestamp(stored).timetuple())
    return seconds


_TEXTS: dict[tuple[int, int], str] = {}


def timestamp_text(seconds: int, nanos: int = 0) -> str:
    """RFC 3339 in UTC with ``Z``: no fraction when whole, else 3, 6 or 9 digits (as Feast's server writes them)."""
    key = (seconds, nanos)
    text = _TEXTS.get(key)
    if text is None:
        if len(_TEXTS) > 100_000:
            _TEXTS.clear()
        base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if nanos == 0:
            text = base + "Z"
        elif nanos % 1_000_000 == 0:
            text = f"{base}.{nanos // 1_000_000:03d}Z"
        elif nanos % 1_000 == 0:
            text = f"{base}.{nanos // 1_000:06d}Z"
        else:
            text = f"{base}.{nanos:09d}Z"
        _TEXTS[key] = text
    return text
