"""``feature-platform produce``: publish generated events to Kafka (the compose stack's demo input).

The work is :func:`pipelines.jobs.produce.produce_events`; this module parses options and prints where the events went.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated

import typer

from pipelines.cli.console import console


def produce_command(
    events: Annotated[int, typer.Option(min=1, help="Events per source.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Generator seed (the same seed gives the same events).")] = 0,
    minutes: Annotated[float, typer.Option(min=0.01, help="Event times spread over this many minutes, "
                                                          "ending now.")] = 5.0,
    contract_name: Annotated[str | None, typer.Option("--contract", help="Only the source of this contract "
                                                                         "(default: every contract's source).")] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of each topic (the stack creates 2).")] = 2,
    json_output: Annotated[bool, typer.Option("--json", help="Print a summary as JSON on stdout.")] = False,
) -> None:
    """Publish seeded generated events to each contract source's Kafka topic (FP_KAFKA_BOOTSTRAP_SERVERS)."""
    from pipelines.config import get_settings
    from pipelines.jobs.produce import produce_events

    summary = produce_events(get_settings(), events=events, seed=seed, duration=timedelta(minutes=minutes),
                             contract=contract_name, partitions=partitions)
    if json_output:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")
        return
    for topic, count in summary.records_per_topic.items():
        console.print(f"[green]✓[/green] {count:,} events → {topic} on {summary.bootstrap_servers}")
