"""``feature-check``: lint feature contracts, compare them with a base revision, report; the CI gate of every PR.

Flow: load + lint every contract (:mod:`pipelines.contracts.check`) → with ``--base REF``, read the base contracts
from git and grade every change (:mod:`pipelines.compat`) → with ``--data``, run the data checks of
:mod:`pipelines.quality` (imported only then) → apply the repository's suppressions → render each requested format
(:mod:`pipelines.check_output`) → exit code.

Exit codes: 0 nothing at or above ``--fail-on`` (default ``error``), 1 a finding at or above it, 2 usage or internal
error. This module and everything the lint and ``--base`` paths import stay light (no pyflink, feast,
great_expectations, pandas, pyarrow, deltalake), so hundreds of contracts check in about a second; argparse is used
because it costs nothing to import.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.check_output import FORMATS, CheckRun, render
from pipelines.contracts.check import check_contracts_loaded
from pipelines.contracts.load import ContractLoadError, LoadedContract
from pipelines.report import ContractReport, Finding

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

FAIL_ON = {"error": ("error",), "warning": ("error", "warning"), "never": ()}


class UsageError(Exception):
    """A problem with how feature-check was called (exit code 2, one line on stderr)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feature-check",
        description="Check feature contracts: YAML shape, semantic rules and, with --base, breaking changes and "
                    "version discipline against a git revision. Findings are printed as "
                    "file:line:col: severity [rule] path: message.",
        epilog="Exit codes: 0 nothing at or above --fail-on, 1 a finding at or above it, 2 usage or internal error. "
               "Rules and formats: docs/contracts.md, docs/feature-check.md.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="contract files or folders to check (default: contracts/ in the current directory)")
    parser.add_argument("--format", action="append", default=[], metavar="FORMAT[=FILE]", dest="formats",
                        help=f"output format, one of {', '.join(FORMATS)}; repeat it for several. FORMAT=FILE writes "
                             f"that format to FILE; at most one format goes to stdout (default: text)")
    parser.add_argument("--base", metavar="REF", help="git revision to compare with (e.g. origin/main): breaking "
                                                      "changes and version discipline")
    parser.add_argument("--fail-on", choices=tuple(FAIL_ON), default="error",
                        help="lowest severity that fails the run with exit code 1 (default: error)")
    parser.add_argument("--suppressions", type=Path, metavar="FILE",
                        help="suppressions file (default: feature-check-suppressions.yaml when it exists)")
    parser.add_argument("--data", action="store_true",
                        help="also run the data checks on the Delta tables (loads Great Expectations; slower)")
    return parser


def _outputs(specs: Sequence[str]) -> tuple[str, dict[str, Path]]:
    """``--format`` values → (the stdout format, {format: file})."""
    stdout: list[str] = []
    files: dict[str, Path] = {}
    for spec in specs:
        fmt, _, target = spec.partition("=")
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        if target:
            files[fmt] = Path(target)
        else:
            stdout.append(fmt)
    if len(stdout) > 1:
        raise UsageError(f"only one format can go to stdout, got {', '.join(stdout)}; write the others to files "
                         f"with FORMAT=FILE")
    return (stdout[0] if stdout else "text"), files


def _compare_with_base(ref: str, paths: list[Path], reports: list[ContractReport], loaded: list[LoadedContract],
                       run: CheckRun) -> dict[str, LoadedContract]:
    from pipelines.compat.diff import compare_sets
    from pipelines.compat.git import BaseRevisionError, read_base

    try:
        snapshot = read_base(ref, paths)
    except BaseRevisionError as exc:
        raise UsageError(f"--base {ref}: {exc}") from None
    run.base, run.base_commit = ref, snapshot.commit
    by_file = {report.file: report for report in reports}
    for problem in snapshot.problems:  # shown, not failed: the pull request did not write the base
        report = by_file.get(problem.file)
        if report is None:
            report = by_file[problem.file] = ContractReport(problem.file)
            reports.append(report)
        report.findings.append(Finding(problem.file, problem.line, problem.column, problem.yaml_path, problem.rule,
                                       f"in the base revision {ref} (not compared): {problem.message}", "info"))
    for change in compare_sets(snapshot.contracts, loaded):
        report = by_file.get(change.file)
        if report is None:  # a deleted contract: its report names the old file
            report = ContractReport(change.file, change.name, change.base_version)
            by_file[change.file] = report
            reports.append(report)
        report.findings = sorted([*report.findings, *change.findings])
        run.changes[change.file] = change.to_dict()
    return snapshot.contracts


def _run_data_checks(loaded: list[LoadedContract], reports: list[ContractReport],
                     base: dict[str, LoadedContract] | None) -> None:
    """The hook for ``--data``: :func:`pipelines.quality.run_data_checks`, imported only here."""
    try:
        from pipelines.quality import run_data_checks  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise UsageError(f"--data needs the data checks (pipelines.quality), which cannot be imported: {exc}") \
            from None
    from pipelines.config import Settings

    by_file = {report.file: report for report in reports}
    base_contracts = {name: entry.contract for name, entry in base.items()} if base is not None else None
    for item in run_data_checks(loaded, Settings(), base_contracts=base_contracts):
        if isinstance(item, ContractReport):
            target = by_file.setdefault(item.file, item)
            if target is not item:
                target.findings = sorted([*target.findings, *item.findings])
            elif item not in reports:
                reports.append(item)
        elif isinstance(item, Finding):
            target = by_file.get(item.file)
            if target is None:
                target = by_file[item.file] = ContractReport(item.file)
                reports.append(target)
            target.findings = sorted([*target.findings, item])


def _apply_suppressions(run: CheckRun, option: Path | None) -> None:
    from pipelines.compat.suppressions import DEFAULT_FILE, load_suppressions

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


def run(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, check, write the outputs; returns the exit code (argparse itself exits 2 on a bad option)."""
    args = _parser().parse_args(argv)
    try:
        return _check(args)
    except UsageError as exc:
        print(f"feature-check: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _check(args: argparse.Namespace) -> int:
    stdout_format, files = _outputs(args.formats)
    paths: list[Path] = args.paths or [Path("contracts")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    reports, loaded = check_contracts_loaded(paths)
    if not reports:
        raise UsageError(f"no contract files (*.yaml, *.yml) under {', '.join(map(str, paths))}")
    result = CheckRun(reports)
    base = _compare_with_base(args.base, paths, reports, loaded, result) if args.base else None
    if args.data:
        _run_data_checks(loaded, reports, base)
    _apply_suppressions(result, args.suppressions)
    for fmt, target in files.items():
        try:
            target.write_text(render(result, fmt) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    # Flush here so a failing stdout (a full disk, a closed pipe) is reported like any other error.
    print(render(result, stdout_format), flush=True)
    failing = FAIL_ON[args.fail_on]
    return EXIT_INVALID if any(f.severity in failing for f in result.findings) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: never shows a traceback; an unexpected failure is one line on stderr and exit code 2."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # ✓/✗ must not crash on a non-UTF-8 terminal
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("feature-check: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the one place that turns any failure into an exit code
        _discard_pending_output()
        print(f"feature-check: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _discard_pending_output() -> None:
    """Point stdout at /dev/null so half-written output cannot fail again (with a traceback) at interpreter exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (tests capturing it): nothing will be flushed at exit anyway


if __name__ == "__main__":
    sys.exit(main())
