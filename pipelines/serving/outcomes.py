"""What one entity got from one major: the per-major outcome the rollout's serving gates count, and the shadow
comparison of the stable major's values with the candidate's.

Outcome of an entity served (or, in shadow, that would have been served) by a view, for the requested features:

============  ====================================================================================================
``present``   every requested value stored and younger than the view's TTL
``missing``   no live value at all: nothing stored for the entity, or its row older than the TTL
``fallback``  a live row lacking some requested feature (that feature is answered by the degradation plan)
``error``     the store read failed or missed the request's deadline (every value is a fallback)
============  ====================================================================================================

A shadow comparison of one entity is ``both_missing`` / ``candidate_missing`` / ``stable_missing`` when either side
has no live row, else ``match`` when every requested feature agrees and ``differ`` when one does not (``error``: the
candidate's read failed). Per feature of a live pair: ``different`` values, or a value on one side only
(``stable_only`` / ``candidate_only``); a feature absent on both sides is not a difference. Values are compared
decoded: doubles (and an int against a double) are equal within a relative tolerance of
:data:`FLOAT_REL_TOL` (absolute :data:`FLOAT_ABS_TOL` near zero), since a new major may compute the same sum in
another order; everything else must be equal exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pipelines.serving.catalog import ViewSpec
from pipelines.serving.stores import Stored
from pipelines.serving.values import decode_value

Outcome = Literal["present", "missing", "fallback", "error"]
Comparison = Literal["match", "differ", "candidate_missing", "stable_missing", "both_missing", "error"]
Difference = Literal["different", "stable_only", "candidate_only"]

FLOAT_REL_TOL = 1e-6
FLOAT_ABS_TOL = 1e-9


def is_live(view: ViewSpec, stored: Stored | None, now: float) -> bool:
    """A row is live when it exists and is not older than the view's TTL (0: no TTL)."""
    return stored is not None and not (view.ttl_seconds > 0 and now - stored.seconds > view.ttl_seconds)


def entity_outcome(view: ViewSpec, stored: Stored | None, features: Sequence[str], now: float) -> Outcome:
    """The outcome of one entity read without error (the table in the module docstring)."""
    if not is_live(view, stored, now):
        return "missing"
    values = stored.values  # type: ignore[union-attr]
    for name in features:
        if values.get(name) is None:
            return "fallback"
    return "present"


def same_value(left: Any, right: Any) -> bool:
    """Equal decoded values; numbers within the documented tolerance (a bool is not a number here)."""
    numbers = (int, float)
    if (isinstance(left, numbers) and isinstance(right, numbers) and not isinstance(left, bool)
            and not isinstance(right, bool) and (isinstance(left, float) or isinstance(right, float))):
        return math.isclose(left, right, rel_tol=FLOAT_REL_TOL, abs_tol=FLOAT_ABS_TOL)
    return bool(left == right) and type(left) is type(right)


def compare(stable_view: ViewSpec, stable: Stored | None, candidate_view: ViewSpec, candidate: Stored | None,
            features: Sequence[str], now: float) -> tuple[Comparison, list[tuple[str, Difference]]]:
    """One entity's comparison and the differing features (see the module docstring)."""
    stable_live, candidate_live = is_live(stable_view, stable, now), is_live(candidate_view, candidate, now)
    if not stable_live or not candidate_live:
        if stable_live:
            return "candidate_missing", []
        return ("stable_missing" if candidate_live else "both_missing"), []
    ours, theirs = stable.values, candidate.values  # type: ignore[union-attr]
    differences: list[tuple[str, Difference]] = []
    for name in features:
        left = ours.get(name)
        right = theirs.get(name) if name in candidate_view.features else None
        if left is None and right is None:
            continue
        if right is None:
            differences.append((name, "stable_only"))
        elif left is None:
            differences.append((name, "candidate_only"))
        elif left != right and not same_value(decode_value(left), decode_value(right)):
            differences.append((name, "different"))
    return ("differ" if differences else "match"), differences
