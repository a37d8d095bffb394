"""``feature-check``: the CI gate of every contract PR, as a thin command: parse → check → render → exit code.

The work is one library call, :func:`pipelines.feature_check.check` (lint, breaking changes vs ``--base``, data checks
with ``--data``, suppressions); this module parses the arguments, renders each requested format
(:mod:`pipelines.feature_check.output`) and picks the exit code: 0 nothing at or above ``--fail-on`` (default
``error``), 1 a finding at or above it, 2 usage or internal error (one line on stderr; a traceback only with
``--debug``). It imports nothing heavy; argparse is used because it costs nothing to import.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import parse_utc_time
from pipelines.errors import PlatformError, UsageError
from pipelines.feature_check.gate import check
from pipelines.feature_check.output import FORMATS, render
from pipelines.feature_check.result import FAIL_ON

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


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
    parser.add_argument("--as-of", metavar="TIME", help="with --data: judge freshness as of this ISO-8601 time "
                                                          "instead of now (e.g. a finished run's end)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
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


def run(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, check, write the outputs; returns the exit code (argparse itself exits 2 on a bad option)."""
    args = _parser().parse_args(argv)
    try:
        return _check(args)
    except PlatformError as exc:  # the one place a library error becomes a message and an exit code
        if args.debug:
            traceback.print_exc()
        label = "error" if isinstance(exc, UsageError) else type(exc).__name__
        print(f"feature-check: {label}: {exc.one_line()}", file=sys.stderr)
        return EXIT_USAGE


def _check(args: argparse.Namespace) -> int:
    stdout_format, files = _outputs(args.formats)
    try:
        as_of = parse_utc_time(args.as_of, "--as-of") if args.as_of is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = check(args.paths, base=args.base, data=args.data, suppressions=args.suppressions, as_of=as_of)
    for fmt, target in files.items():
        try:
            target.write_text(render(result, fmt) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror}") from None
    # Flush here so a failing stdout (a full disk, a closed pipe) is reported like any other error.
    print(render(result, stdout_format), flush=True)
    return EXIT_INVALID if result.fails(args.fail_on) else EXIT_OK


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
    except Exception as exc:  # a bug: one line (the traceback with --debug), exit code 2
        _discard_pending_output()
        if "--debug" in (argv if argv is not None else sys.argv[1:]):
            traceback.print_exc()
        print(f"feature-check: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
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
