"""``feature-platform lineage``: publish the contracts' lineage to OpenMetadata, or show what would be sent.

``--dry-run`` builds every request (validated by OpenMetadata's own models) and prints it without a server; ``--json``
prints the plan (dry run) or the publish summary as JSON on stdout. Without ``--dry-run`` a server must be configured
(``FP_OPENMETADATA__URL``, ``FP_OPENMETADATA__TOKEN``); any failure exits 1 with one line naming what failed.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal

import typer
from rich.table import Table

from pipelines.cli.console import console, progress_printer


def lineage_command(
    contract_name: Annotated[str | None, typer.Option("--contract", help="Contract name or <name>_v<major> "
                                                                         "(default: every contract).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Build and show the requests; send nothing.")] = False,
    events: Annotated[Literal["kafka", "files"], typer.Option(
        help="Where the sources' events come from: their Kafka topics (what `stream` reads) or their folders under "
             "the data folder's events/ (what `run` writes).")] = "kafka",
    json_output: Annotated[bool, typer.Option("--json", help="Print the plan or the summary as JSON on stdout.")]
    = False,
) -> None:
    """Publish lineage (source -> Flink job -> Delta table -> Feast feature view, column level) to OpenMetadata."""
    from pipelines.config import get_settings
    from pipelines.contracts.valid import load_valid_contracts, select_contracts
    from pipelines.lineage.plan import scope_for

    settings = get_settings()
    everyone = load_valid_contracts(settings.contracts_dir)
    chosen = select_contracts(everyone, contract_name, lambda c: c)
    scope = scope_for(settings, chosen, all_contracts=everyone, events=events)
    if dry_run:
        from pipelines.lineage.export import plan_to_dict

        plan = plan_to_dict(scope.plan())
        if json_output:
            sys.stdout.write(json.dumps(plan, indent=2) + "\n")
            return
        _print_plan(plan)
        return
    from pipelines.lineage.publish import publish

    summary = publish(scope, settings, progress=progress_printer(json_output))
    if json_output:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
        return
    result = summary.to_dict()
    console.print(f"[green]✓[/green] {len(result['entities'])} entities and edges published to {result['url']} "
                  f"({result['column_lineage']} column lineages) in {result['elapsed_seconds']:.1f}s")
    for warning in result["warnings"]:
        console.print(f"[yellow]![/yellow] {warning}", highlight=False)


def _print_plan(plan: dict) -> None:
    table = Table(title=f"lineage plan (dry run): {', '.join(plan['contracts'])}", title_justify="left")
    for column in ("level", "PUT", "entity", "fqn"):
        table.add_column(column)
    for request in plan["requests"]:
        table.add_row(str(request["level"]), request["path"], request["entity_type"], request["fqn"])
    console.print(table)
    for name, owner in plan["owners"].items():
        console.print(f"[dim]{name}: owner {owner} (resolved to an OpenMetadata team or user when published)[/dim]")
