"""``feature-check``: lint feature contracts in CI and in editors; turns reports into output and an exit code.

Exit codes: 0 every contract passes (warnings allowed), 1 at least one contract is invalid, 2 usage or internal error.
This module and everything it imports stay light (no pyflink, feast, great_expectations, pandas, pyarrow, deltalake)
so hundreds of contracts check in about a second; argparse is used because it costs nothing to import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.contracts.check import check_contracts
from pipelines.report import ContractReport

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="feature-check",
        description="Check feature contracts: YAML shape, then semantic rules (columns, types, windows, one step per "
                    "contract, fallbacks). Findings are printed as file:line:col: severity [rule] path: message.",
        epilog="Exit codes: 0 all contracts pass (warnings allowed), 1 a contract is invalid, 2 usage or internal "
               "error. The rules are documented in docs/contracts.md.",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="contract files or folders to check (default: contracts/ in the current directory)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    return parser


def summarise(reports: Sequence[ContractReport]) -> dict[str, int]:
    """Counts for the closing line and the JSON document."""
    return {
        "contracts": len(reports),
        "passed": sum(1 for r in reports if r.ok),
        "failed": sum(1 for r in reports if not r.ok),
        "errors": sum(len(r.errors) for r in reports),
        "warnings": sum(len(r.warnings) for r in reports),
    }


def render_json(reports: Sequence[ContractReport]) -> str:
    """The stable machine-readable form: ``{"ok", "contracts": [report...], "summary": {...}}``."""
    document = {"ok": all(r.ok for r in reports), "contracts": [r.to_dict() for r in reports],
                "summary": summarise(reports)}
    return json.dumps(document, indent=2, ensure_ascii=False)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def render_text(reports: Sequence[ContractReport]) -> str:
    """One line per finding, then one line per contract, then the total."""
    lines = [finding.render() for report in reports for finding in sorted(report.findings)]
    if lines:
        lines.append("")
    for report in reports:
        mark = "✓" if report.ok else "✗"
        title = f"{report.name} {report.version}" if report.name else "(not loaded)"
        counts = [_plural(len(report.errors), "error")] if report.errors else []
        counts += [_plural(len(report.warnings), "warning")] if report.warnings else []
        detail = f": {', '.join(counts)}" if counts else ""
        lines.append(f"{mark} {title} ({report.file}){detail}")
    total = summarise(reports)
    lines.append(f"{_plural(total['contracts'], 'contract')} checked: {total['passed']} passed, {total['failed']} "
                 f"failed; {_plural(total['errors'], 'error')}, {_plural(total['warnings'], 'warning')}")
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, check, print; returns the exit code (argparse itself exits 2 on a bad option)."""
    args = _parser().parse_args(argv)
    paths: list[Path] = args.paths or [Path("contracts")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"feature-check: error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    reports = check_contracts(paths)
    if not reports:
        print(f"feature-check: error: no contract files (*.yaml, *.yml) under {', '.join(map(str, paths))}",
              file=sys.stderr)
        return EXIT_USAGE
    # Flush here so a failing stdout (a full disk, a closed pipe) is reported like any other error.
    print(render_json(reports) if args.format == "json" else render_text(reports), flush=True)
    return EXIT_OK if all(r.ok for r in reports) else EXIT_INVALID


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
