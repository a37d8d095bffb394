"""A pull request in a temporary git repository: a base commit and a head commit that, together, fire every rule.

Contracts are written as block-style YAML (one key per line), so each test can check a finding's line by the text on
it, independently of the loader's position bookkeeping.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

COLUMNS = {"user_id": "string", "amount": "double", "n": "int32", "m": "int64", "channel": "string",
           "code": "string", "ts": "timestamp", "ts2": "timestamp"}


def contract(name: str, *features: dict[str, Any], **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name, "version": "1.0.0", "owner": "team@example.com", "description": f"The {name} features.",
        "entity": {"name": "user", "join_keys": ["user_id"]},
        "source": {"name": f"src_{name}", "event_time": "ts", "allowed_lateness": "10s",
                   "schema": copy.deepcopy(COLUMNS)},
        "features": [copy.deepcopy(f) for f in features] or [feature("f_count", "count", None, "int64")],
        "serving": {"online": True, "ttl": "1d"},
        "sla": {"freshness": "1m", "null_rate_max": 0.1},
    }
    doc.update(copy.deepcopy(top))
    return doc


def feature(name: str, aggregation: str, column: str | None, type_: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "aggregation": aggregation, "window": "5m", "type": type_,
                            "description": f"{name}."}
    if column is not None:
        spec["column"] = column
    spec.update(extra)
    return spec


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=200)


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=True,
                            env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                                 "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(repo), "PATH": "/usr/bin:/bin"})
    return result.stdout


def make_repo(repo: Path, base: dict[str, str], head: dict[str, str | None]) -> None:
    """Commit ``base`` (path → text), then apply ``head`` (text, or None to delete) and commit again."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    for path, text in base.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "tag", "base")
    for path, text in head.items():
        target = repo / path
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "head")


def pull_request(repo: Path) -> None:
    """The scenario of the done-when test: each breaking-change rule fires at least once."""
    f = feature
    full_base = contract(
        "full",
        f("f_count", "count", None, "int64"),
        f("f_sum", "sum", "amount", "double", unit="EUR"),
        f("f_w", "sum", "m", "int64"),
        f("f_t", "max", "channel", "string"),
        f("f_agg", "min", "amount", "double"),
        f("f_gone", "count", "n", "int64"),
        f("f_old", "count", "code", "int64", deprecated=True),
        f("f_ren", "min", "m", "int64"),
        compatibility="FULL", reserved=["r_used", "x_old"], degradation={"f_count": {"fallback": "default",
                                                                                     "value": 0}},
    )
    full_head = contract(
        "full",
        f("f_count", "count", None, "int64", window={"size": "10m", "slide": "5m"}),
        f("f_sum", "sum", "amount", "double", unit="USD", deprecated=True),
        f("f_w", "sum", "amount", "double"),
        f("f_t", "max", "m", "int64"),
        f("f_agg", "max", "amount", "double"),
        f("f_ren2", "min", "m", "int64"),
        f("f_new", "count", "channel", "int64"),
        f("r_used", "count", "amount", "int64"),
        compatibility="BACKWARD", reserved=["r_used", "f_old"],
        degradation={"f_count": {"fallback": "default", "value": 1}, "f_sum": {"fallback": "last_known"}},
        serving={"online": False, "ttl": "2d"}, sla={"freshness": "2m", "null_rate_max": 0.05},
        description="The full features, now described differently.",
    )
    full_head["entity"]["join_keys"] = ["user_id", "channel"]
    source = full_head["source"]
    source.update({"name": "src_full2", "event_time": "ts2", "allowed_lateness": "30s", "filter": "amount > 0"})
    source["schema"]["channel"] = {"type": "string", "required": True}
    source["schema"]["code"] = "int64"
    source["schema"]["n"] = "int64"

    minor_base = contract("minor", serving={"online": False, "ttl": "1d"}, compatibility="BACKWARD")
    minor_head = contract("minor", f("f_count", "count", None, "int64"), f("f_more", "count", "amount", "int64"),
                          version="2.0.0", compatibility="FULL", deprecated=True, serving={"online": True, "ttl": "1d"})
    wid_base = contract("wid", f("f_w", "sum", "m", "int64"), f("f_c", "count", None, "int64"),
                        compatibility="BACKWARD")
    wid_head = contract("wid", f("f_w", "avg", "m", "double"), f("f_c", "count", None, "int64"), version="1.1.0",
                        compatibility="BACKWARD")
    wid_head["features"][0]["aggregation"] = "sum"
    wid_head["features"][0]["column"] = "amount"
    major_base = contract("major", f("f_a", "count", None, "int64"), f("f_b", "count", "amount", "int64"))
    major_head = contract("major", f("f_a", "count", None, "int64"), version="2.0.0")

    make_repo(repo, {
        "contracts/full.yaml": dump(full_base),
        "contracts/minor.yaml": dump(minor_base),
        "contracts/wid.yaml": dump(wid_base),
        "contracts/major.yaml": dump(major_base),
        "contracts/gone.yaml": dump(contract("gone")),
        "contracts/old.yaml": dump(contract("old", deprecated=True)),
        "contracts/ren.yaml": dump(contract("ren")),
    }, {
        "contracts/full.yaml": dump(full_head),
        "contracts/minor.yaml": dump(minor_head),
        "contracts/wid.yaml": dump(wid_head),
        "contracts/major.yaml": dump(major_head),
        "contracts/gone.yaml": None,
        "contracts/old.yaml": None,
        "contracts/ren.yaml": dump(contract("ren_new")),
        "contracts/new.yaml": dump(contract("new")),
    })
