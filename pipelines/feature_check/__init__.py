"""``feature-check``, the CI gate of every contract pull request, as a library and a thin command.

:func:`check` (in :mod:`.gate`) returns a :class:`CheckRun` (:mod:`.result`): every report, what was suppressed, the
base compared, and :meth:`CheckRun.fails` for the exit decision. The parts, in the order a run uses them: the lint
rules live with the contracts (:mod:`pipelines.contracts.check`); :mod:`.compat` grades changes against a base
revision; :mod:`.data` runs the data checks on Delta (Great Expectations, consistency, state estimate; heavy, imported
only for ``--data``); :mod:`.output` renders a run (text, JSON, Markdown, GitHub annotations, JUnit, SARIF);
:mod:`.cli` is the console command.
"""

from __future__ import annotations

from pipelines.feature_check.gate import check
from pipelines.feature_check.result import CheckRun

__all__ = ["CheckRun", "check"]
