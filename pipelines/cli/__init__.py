"""``feature-platform``: the platform's jobs as console commands. Renders summaries and picks exit codes, nothing else.

Each command parses its options, calls one job of :mod:`pipelines.jobs` and renders the summary it returns (a table
on stderr, or ``--json`` on stdout). A :class:`~pipelines.errors.PlatformError` is caught once, by
:func:`pipelines.cli.console.guarded`: one line and exit code 1 (2 for a usage error); ``--debug`` adds the traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli.backfill import backfill_command
from pipelines.cli.console import OPTIONS, guarded
from pipelines.cli.health import health_command
from pipelines.cli.lineage import lineage_command
from pipelines.cli.materialize import materialize_command
from pipelines.cli.produce import produce_command
from pipelines.cli.rollout import rollout_app
from pipelines.cli.run import run_command
from pipelines.cli.serve import serve_command
from pipelines.cli.status import status_command
from pipelines.cli.stream import stream_command
from pipelines.cli.training_set import training_set_command

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Run the feature platform's jobs. Contracts are checked with the separate `feature-check`.")


@app.callback()
def _program(debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of a failure.")] = False) -> None:
    """Keep `run` a named subcommand (typer would otherwise collapse a single command into the program itself)."""
    OPTIONS.debug = debug


app.command("run")(guarded(run_command))
app.command("stream")(guarded(stream_command))
app.command("backfill")(guarded(backfill_command))
app.command("materialize")(guarded(materialize_command))
app.command("training-set")(guarded(training_set_command))
app.command("status")(guarded(status_command))
app.command("health")(guarded(health_command))
for _command in rollout_app.registered_commands:
    _command.callback = guarded(_command.callback)  # type: ignore[arg-type]
app.add_typer(rollout_app, name="rollout")
app.command("lineage")(guarded(lineage_command))
app.command("serve")(guarded(serve_command))
app.command("produce")(guarded(produce_command))
