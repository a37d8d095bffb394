"""The gate as one library call: :func:`check` lints contracts, compares them with a base, runs the data checks, applies
suppressions and returns a :class:`~pipelines.feature_check.result.CheckRun`. It never prints and never exits.

Flow: load + lint every contract (:mod:`pipelines.contracts.check`) → with ``base``, read the base contracts from git
and grade every change (:mod:`pipelines.feature_check.compat`) → with ``data``, run the data checks of
:mod:`pipelines.feature_check.data` (imported only then) → apply the repository's suppressions. The lint and ``base``
paths import nothing heavy (no pyflink, feast, great_expectations, pandas, pyarrow, deltalake), so hundreds of
contracts check in about a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pipelines.config import Settings
from pipelines.contracts.check import check_contracts_loaded
from pipelines.contracts.load import ContractLoadError, LoadedContract
from pipelines.errors import UsageError
from pipelines.feature_check.result import CheckRun
from pipelines.report import ContractReport, Finding

DEFAULT_PATHS = (Path("contracts"),)


def check(paths: Sequence[Path] = DEFAULT_PATHS, *, base: str | None = None, data: bool = False,
          settings: Settings | None = None, suppressions: Path | None = None,
          as_of: datetime | None = None) -> CheckRun:
    """Check the contracts under ``paths``; the run holds every report, what was suppressed and the base compared.

    ``suppressions`` is the suppressions file (default: ``feature-check-suppressions.yaml`` when it exists);
    ``as_of`` the time the data checks judge freshness against (default: now).
    Raises :class:`~pipelines.errors.UsageError` when a path, the base revision or a named file does not exist.
    Decide the exit with :meth:`CheckRun.fails`.
    """
    paths = list(paths) or list(DEFAULT_PATHS)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    reports, loaded = check_contracts_loaded(paths)
    if not reports:
        raise UsageError(f"no contract files (*.yaml, *.yml) under {', '.join(map(str, paths))}")
    run = CheckRun(reports)
    base_contracts = _compare_with_base(base, paths, reports, loaded, run) if base else None
    if data:
        _run_data_checks(loaded, reports, base_contracts, settings or Settings(), as_of)
    _apply_suppressions(run, suppressions)
    return run


def _report_for(file: str, reports: list[ContractReport], by_file: dict[str, ContractReport],
                **fields: str | None) -> ContractReport:
    """The report of ``file``, created (and appended to ``reports``) when there is none yet."""
    report = by_file.get(file)
    if report is None:
        report = by_file[file] = ContractReport(file, **fields)
        reports.append(report)
    return report


def _compare_with_base(ref: str, paths: list[Path], reports: list[ContractReport], loaded: list[LoadedContract],
                       run: CheckRun) -> dict[str, LoadedContract]:
    from pipelines.feature_check.compat.diff import compare_sets
    from pipelines.feature_check.compat.git import BaseRevisionError, read_base

    try:
        snapshot = read_base(ref, paths)
    except BaseRevisionError as exc:
        raise UsageError(f"--base {ref}: {exc.message}") from None
    run.base, run.base_commit = ref, snapshot.commit
    by_file = {report.file: report for report in reports}
    for problem in snapshot.problems:  # shown, not failed: the pull request did not write the base
        report = _report_for(problem.file, reports, by_file)
        report.findings.append(Finding(problem.file, problem.line, problem.column, problem.yaml_path, problem.rule,
                                       f"in the base revision {ref} (not compared): {problem.message}", "info"))
    for change in compare_sets(snapshot.contracts, loaded):
        # a deleted contract: its report names the old file
        report = _report_for(change.file, reports, by_file, name=change.name, version=change.base_version)
        report.findings = sorted([*report.findings, *change.findings])
        run.changes[change.file] = change.to_dict()
    return snapshot.contracts


def _run_data_checks(loaded: list[LoadedContract], reports: list[ContractReport],
                     base: dict[str, LoadedContract] | None, settings: Settings, as_of: datetime | None) -> None:
    """``data=True``: :func:`pipelines.feature_check.data.run_data_checks`, imported only here (it is heavy)."""
    try:
        from pipelines.feature_check.data import run_data_checks
    except ImportError as exc:  # a partial install (e.g. Great Expectations missing): say so, not a traceback
        raise UsageError(f"--data needs the data checks (pipelines.feature_check.data), which cannot be imported: "
                         f"{exc}") from None

    by_file = {report.file: report for report in reports}
    base_contracts = {name: entry.contract for name, entry in base.items()} if base is not None else None
    for item in run_data_checks(loaded, settings, base_contracts=base_contracts, now=as_of):
        if isinstance(item, ContractReport):
            target = by_file.setdefault(item.file, item)
            if target is not item:
                target.findings = sorted([*target.findings, *item.findings])
            elif item not in reports:
                reports.append(item)
        elif isinstance(item, Finding):
            target = _report_for(item.file, reports, by_file)
            target.findings = sorted([*target.findings, item])


def _apply_suppressions(run: CheckRun, option: Path | None) -> None:
    from pipelines.feature_check.compat.suppressions import DEFAULT_FILE, load_suppressions

    path = option or Path(DEFAULT_FILE)
    if option is None and not path.exists():
        return
    if not path.exists():
        raise UsageError(f"no such suppressions file: {path}")
    try:
        suppressions = load_suppressions(path)
    except ContractLoadError as exc:
        run.reports.append(ContractReport(str(path), findings=[
            Finding(f.file, f.line, f.column, f.yaml_path, "suppressions-invalid", f.message) for f in exc.findings]))
        return
    used = [False] * len(suppressions.entries)
    for report in run.reports:
        kept = []
        for finding in report.findings:
            match = next((i for i, s in enumerate(suppressions.entries) if s.matches(report.name, finding)), None)
            if match is None:
                kept.append(finding)
            else:
                used[match] = True
                run.suppressed.append((finding, suppressions.entries[match].reason))
        report.findings = kept
    unused = [Finding(suppressions.file, line, 1, f"suppressions[{i}]", "suppression-unused",
                      f"suppression of `{entry.rule}` for `{entry.contract}` matches no finding; delete it",
                      "warning")
              for i, (entry, line, hit) in enumerate(zip(suppressions.entries, suppressions.lines, used, strict=True))
              if not hit]
    if unused:
        run.reports.append(ContractReport(suppressions.file, findings=unused))
