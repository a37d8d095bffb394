"""Helper processes for the rollout tests (run as scripts, so each is a real separate process).

``route STORE CONTRACT N``: print, as JSON, the major serving entities ``u0 .. u{N-1}`` (a serving worker).
``control STORE``: run a controller whose gates always pass, ticking every 50 ms (killed by the test).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines.rollout.controller import Controller
from pipelines.rollout.gates import GateValue
from pipelines.rollout.router import RolloutRouter
from pipelines.rollout.state import RolloutState
from pipelines.rollout.store import SqliteRolloutStore


def passing(_state: RolloutState) -> dict[str, GateValue]:
    return {"missing_rate": GateValue("missing_rate", 0.0, 0.01, "pass")}


def main() -> None:
    command, store_path = sys.argv[1], Path(sys.argv[2])
    store = SqliteRolloutStore(store_path)
    if command == "route":
        contract, n = sys.argv[3], int(sys.argv[4])
        majors = RolloutRouter(store).majors(contract, [(f"u{i}",) for i in range(n)])
        sys.stdout.write(json.dumps(majors))
    elif command == "control":
        print("ready", flush=True)
        Controller(store, passing).run(tick_s=0.05)


if __name__ == "__main__":
    main()
