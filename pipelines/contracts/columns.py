"""Names of the columns the platform adds to every feature table, kept free of heavy imports.

The Delta layout (:mod:`pipelines.delta.schema`) owns the table; these names live here so that ``feature-check`` can
refuse a feature called ``window_end`` without importing pyarrow. ``pipelines.delta.schema`` re-exports them.
"""

from __future__ import annotations

WINDOW_START = "window_start"
WINDOW_END = "window_end"
INGESTED_AT = "ingested_at"
RESERVED_COLUMNS = frozenset({WINDOW_START, WINDOW_END, INGESTED_AT})
