"""What every ``feature-platform`` command shares: the stderr console, ISO instants, and the one error handler.

Progress and tables go to stderr so that ``--json`` output on stdout stays parseable; wide tables when piped to a log.
:func:`guarded` is the one place a :class:`~pipelines.errors.PlatformError` becomes a one-line message and an exit
code (1 the work failed, 2 the command was called wrongly); the traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.config import parse_utc_time
from pipelines.errors import PlatformError, UsageError

if TYPE_CHECKING:
    from pipelines.config import Settings

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])


class _Options:
    """Options of the whole program (``feature-platform --debug <command>``)."""

    debug = False


OPTIONS = _Options()


def parse_instant(text: str, option: str) -> datetime:
    """:func:`pipelines.config.parse_utc_time`, a bad time being a usage error."""
    try:
        return parse_utc_time(text, option)
    except ValueError as error:
        raise UsageError(str(error)) from None


#: ``--cluster URL`` of every command that runs a Flink job (run, stream, backfill); see :func:`cluster_settings`.
ClusterOption = Annotated[str | None, typer.Option(
    "--cluster", metavar="URL", help="Submit the Flink job to the cluster whose JobManager REST API is at URL "
                                     "(e.g. http://127.0.0.1:8081; default: FP_FLINK_TARGET / "
                                     "FP_FLINK_REST_ADDRESS, else the local mini-cluster).")]


def cluster_settings(rest_url: str | None) -> Settings:
    """The settings, with Flink jobs sent to the cluster at ``rest_url`` when ``--cluster`` was given."""
    from pydantic import ValidationError

    from pipelines.config import get_settings

    try:
        return get_settings().on_cluster(rest_url)
    except ValidationError:
        raise UsageError(f"--cluster {rest_url!r} is not a JobManager REST URL",
                         hint="give http(s)://host:port, e.g. --cluster http://127.0.0.1:8081") from None


def progress_printer(quiet: bool) -> Callable[[str], None]:
    """A progress callback for the jobs: dim lines under the current step, or nothing in quiet mode."""
    if quiet:
        return lambda _message: None
    return lambda message: console.print(f"  [dim]{message}[/dim]", highlight=False)


def guarded(command: F) -> F:
    """Run ``command``; a :class:`PlatformError` prints one line (with ``--debug`` its traceback) and exits with
    its exit code instead of a Python traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PlatformError as error:
            if OPTIONS.debug:
                console.print(traceback.format_exc(), markup=False, highlight=False)
            label = "usage" if isinstance(error, UsageError) else type(error).__name__
            name = command.__name__.removesuffix("_command").replace("_", "-")
            console.print(f"[red]{name}: {label}:[/red] {escape(error.one_line())}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return run  # type: ignore[return-value]
