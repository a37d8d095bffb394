"""The pull request that introduces a new major version says how it will be rolled out (steps, dwell, gates)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.contracts.load import LoadedContract, load_contract_text
from pipelines.feature_check.compat.diff import compare_contract
from pipelines.feature_check.output.markdown import render_markdown
from pipelines.feature_check.output.text import render_text
from pipelines.feature_check.result import CheckRun


def test_a_new_major_states_its_rollout_plan(project_loaded_contract: Callable[[str], LoadedContract]) -> None:
    base = project_loaded_contract("user_txn_stats")
    text = Path(base.file).read_text()
    breaking = text.replace("version: 1.0.0", "version: 2.0.0").replace("window: 5m\n    type: int64",
                                                                          "window: 10m\n    type: int64", 1)
    head = load_contract_text(breaking, base.file)
    change = compare_contract(base, head)
    assert change.required == "major" and change.declared == "major"
    assert change.rollout_plan == (
        "after merge, user_txn_stats_v1 and user_txn_stats_v2 run side by side; `feature-platform rollout start "
        "user_txn_stats --to 2` moves entities 0% (shadow) → 5% → 50% → 100%, each step held 10m with gates "
        "missing rate ≤ 0.30%, error rate ≤ 1%, freshness ≤ 5m; a gate failing 2 evaluations in a row rolls back "
        "to v1 by itself")
    run = CheckRun(reports=[], changes={base.file: change.to_dict()})
    assert "**Rollout after merge**" in render_markdown(run) and "0% (shadow) → 5%" in render_markdown(run)
    assert "rollout of user_txn_stats 2.0.0: after merge" in render_text(run)

    minor = load_contract_text(text.replace("version: 1.0.0", "version: 1.1.0"), base.file)
    assert compare_contract(base, minor).rollout_plan is None
