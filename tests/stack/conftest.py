"""Fixtures of the stack tests: the compose checker module (tools/compose-check/check.py) and its Go binary.

The checker lives beside the Go program it drives, outside the ``pipelines`` package (it is a repository tool, not
part of the product), so it is loaded from its path. The compose-go binary needs Go: without Go the tests that use it
skip on a developer's machine and fail under ``CI=true``, where a skipped check would pass a broken file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pipelines.config import PROJECT_ROOT

CHECK_PY = PROJECT_ROOT / "tools" / "compose-check" / "check.py"


def _load_check_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_check", CHECK_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["compose_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


compose_check = _load_check_module()


def go_required(reason: str) -> None:
    """Skip locally, fail under CI=true: the compose-go check may never silently not run in CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the compose-go check must run; install Go)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def check() -> ModuleType:
    return compose_check


@pytest.fixture(scope="session")
def compose_go_binary() -> Path:
    """The compose-check binary (built on first use, then cached under .tools/ by the digest of its sources)."""
    try:
        return compose_check.compose_go_binary()
    except compose_check.GoMissingError as error:
        go_required(str(error))
        raise
