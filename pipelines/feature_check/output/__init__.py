"""Renderers of one ``feature-check`` run: text, JSON, Markdown (PR comment), GitHub annotations, JUnit XML, SARIF.

Pure functions from a :class:`CheckRun` to text; the CLI decides where each one goes and the exit code. Nothing here
imports anything heavy (``xml.etree`` and ``json`` only).
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.feature_check.result import CheckRun, all_rules

FORMATS: tuple[str, ...] = ("text", "json", "markdown", "github", "junit", "sarif")


def render(run: CheckRun, fmt: str) -> str:
    """The run in one of :data:`FORMATS`."""
    from pipelines.feature_check.output import documents, markdown, text

    renderers: dict[str, Callable[[CheckRun], str]] = {
        "text": text.render_text, "github": text.render_github, "json": documents.render_json,
        "markdown": markdown.render_markdown, "junit": documents.render_junit, "sarif": documents.render_sarif,
    }
    return renderers[fmt](run)


__all__ = ["FORMATS", "CheckRun", "all_rules", "render"]
