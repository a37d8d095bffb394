"""One run of the main job, as the README's first command runs it, shared by the tests that check what it left behind.

`feature-platform run` is the slowest single command of the suite (a Flink job, Delta commits, Feast apply and the
online load: about a minute). Three test folders check one such run from different sides: the job itself
(``tests/jobs/test_main_job.py``), the README flow of ``health`` and ``feature-check --data``
(``tests/health/test_health_e2e.py``) and the lineage it publishes (``tests/lineage/test_publish.py``). They share
this one run (a session fixture in ``tests/conftest.py``) instead of running it three times. The run publishes its
lineage to the OpenMetadata stand-in of ``tests/lineage/om_stand_in.py`` (not OpenMetadata: see that module), which
stays up for the session so the lineage test can read what it received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.config import PROJECT_ROOT
from tests.lineage.om_stand_in import StandInOpenMetadata

#: The main job's step that publishes lineage (``pipelines.jobs.run``), absent from the README's own run.
LINEAGE_STEP = "lineage to openmetadata"

#: The main job's command line (the demo's size: every contract gets windows, entities and dead letters).
RUN_ARGUMENTS = ("run", "--events", "4000", "--hours", "2", "--entities", "150", "--json")


@dataclass(frozen=True)
class DemoRun:
    """What the shared run left: its data folder, its JSON summary, when it ended, and the stand-in it published to."""

    data_dir: Path
    summary: dict[str, Any]
    ended_at: datetime
    openmetadata: StandInOpenMetadata

    @property
    def as_of(self) -> str:
        """``--as-of`` a few seconds after the run ended as the README's run ends: without the lineage step, which the
        README's run does not take (no OpenMetadata configured) and which takes tens of seconds here (the SDK's
        import), while ``session_clickstream``'s freshness SLA is one minute."""
        lineage = self.summary["step_seconds"].get(LINEAGE_STEP, 0.0)
        return (self.ended_at - timedelta(seconds=lineage) + timedelta(seconds=5)).isoformat()


def run_demo(root: Path, openmetadata: StandInOpenMetadata) -> DemoRun:
    """`feature-platform run` at parallelism 2 on a fresh data folder under ``root``, publishing lineage to
    ``openmetadata``; fails the calling test with the command's stderr if it does not exit 0."""
    data_dir = root / "data"
    env = {**os.environ, "FP_DATA_DIR": str(data_dir), "FP_PARALLELISM": "2",
           "FP_OPENMETADATA__URL": openmetadata.url, "FP_OPENMETADATA__TOKEN": "stand-in-token"}
    command = [str(Path(sys.executable).with_name("feature-platform")), *RUN_ARGUMENTS]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=900,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return DemoRun(data_dir, json.loads(result.stdout), datetime.now(UTC), openmetadata)
