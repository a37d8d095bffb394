"""Fixtures of the lineage tests: the lineage scope of the project's contracts, and settings pointing at a stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from om_stand_in import StandInOpenMetadata

from pipelines.config import OpenMetadataSettings, Settings
from pipelines.contracts.model import Contract
from pipelines.contracts.valid import load_valid_contracts
from pipelines.lineage.plan import LineageScope, scope_for
from pipelines.runtime import StageConfig


@pytest.fixture(scope="session")
def contracts() -> list[Contract]:
    """Every contract of the project (``contracts/``)."""
    return load_valid_contracts(Settings().contracts_dir)


@pytest.fixture
def scope(settings: Settings, contracts: list[Contract]) -> Callable[..., LineageScope]:
    """``scope(events="kafka", only=None, settings=None)``: the lineage scope of the project's contracts."""

    def make(events: str = "kafka", only: str | None = None, settings_: Settings | None = None) -> LineageScope:
        chosen = [c for c in contracts if only in (None, c.name)]
        return scope_for(settings_ or settings, chosen, all_contracts=contracts, events=events)

    return make


def om_settings(tmp_path: Path, url: str, *, token: str = "stand-in-token", timeout_s: int = 2,
                deadline_s: float = 60.0, retries: int = 2) -> Settings:
    """Settings on a temporary data folder, publishing to ``url`` with short timeouts and few retries."""
    return Settings(data_dir=tmp_path / "data",
                    openmetadata=OpenMetadataSettings(url=url, token=token, timeout_s=timeout_s,
                                                      deadline_s=deadline_s),
                    stages={"lineage": StageConfig(retries=retries)})


@pytest.fixture
def stand_in() -> Iterator[StandInOpenMetadata]:
    """A running stand-in for OpenMetadata (see om_stand_in.py) that knows the team ``risk-ml``."""
    with StandInOpenMetadata() as server:
        server.add_team("risk-ml")
        yield server
