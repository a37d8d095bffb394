"""Lineage after a job: ``run`` calls :func:`publish_if_configured` when its data has landed, ``stream`` once it runs.

Publishing is a side effect of a job, never its purpose: with no server configured (``FP_OPENMETADATA__URL`` unset)
it does nothing and imports nothing of the SDK; with one, it publishes the contracts the job ran, with the sources the
job read, and a failure is *returned* as a line of text for the job's summary, never raised: a metadata server that
is down must not fail a feature pipeline. ``feature-platform lineage`` is the command that fails loudly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.contracts.model import Contract
from pipelines.sources.location import SourceLocation


@dataclass(frozen=True)
class LineageOutcome:
    """What the hook did: the publish summary (as JSON-ready data), or the error that stopped it."""

    published: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"published": self.published, "error": self.error}

    def line(self) -> str:
        """One line for a job's progress output."""
        if self.error is not None:
            return f"lineage: not published: {self.error}"
        published = self.published or {}
        return (f"lineage: published {len(published.get('entities', []))} entities and edges "
                f"({published.get('column_lineage', 0)} column lineages) to {published.get('url')}")


def publish_if_configured(settings: Settings, contracts: Sequence[Contract], *,
                          sources: Mapping[str, SourceLocation | Path] | None = None,
                          progress: Callable[[str], None] | None = None) -> LineageOutcome | None:
    """Publish ``contracts`` (read from ``sources``, as the job ran them) when a server is configured.

    Returns None when no server is configured; otherwise the outcome, with ``error`` set when publishing failed.
    Never raises for a server or network failure.
    """
    if settings.openmetadata.url is None:
        return None
    from pipelines.errors import PlatformError
    from pipelines.lineage.plan import scope_for
    from pipelines.lineage.publish import publish

    try:
        scope = scope_for(settings, contracts, sources=sources)
        summary = publish(scope, settings, progress=progress)
    except PlatformError as error:
        outcome = LineageOutcome(None, error.one_line())
    except Exception as error:  # a bug or an SDK surprise must not fail the job either; it is reported
        outcome = LineageOutcome(None, f"{type(error).__name__}: {error}")
    else:
        outcome = LineageOutcome(summary.to_dict(), None)
    if progress is not None:
        progress(outcome.line())
    return outcome
