"""Read the contracts of a base revision with git, without checking it out and with the loader's guards.

The base is read from git's object store (``ls-tree`` for names, modes and sizes, one ``cat-file --batch`` for all
blobs), so 500 contracts cost two processes. Every blob goes through the same guards as a file in the working tree
(size before reading, UTF-8, control characters, aliases, depth, tags), and symbolic links and submodules in the tree
are refused instead of followed. Paths are shown relative to the current directory, like head files, so base and head
findings name the same file.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.contracts.load import (
    CONTRACT_SUFFIXES,
    MAX_CONTRACT_BYTES,
    ContractLoadError,
    LoadedContract,
    load_contract_text,
)
from pipelines.errors import UsageError
from pipelines.report import Finding

GIT_TIMEOUT_S = 60


class BaseRevisionError(UsageError):
    """The base revision cannot be read (not a git repository, unknown ref, git missing): a usage error."""


@dataclass
class BaseSnapshot:
    """The contracts of the base revision by name, and the base files that could not be loaded."""

    ref: str
    commit: str
    contracts: dict[str, LoadedContract] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S,
                                check=False)
    except FileNotFoundError:
        raise BaseRevisionError("git is not installed; --base needs it") from None
    except subprocess.TimeoutExpired:
        raise BaseRevisionError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s") from None
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BaseRevisionError(f"git {args[0]} failed: {message[-1] if message else result.returncode}")
    return result.stdout


def read_base(ref: str, paths: list[Path], cwd: Path | None = None) -> BaseSnapshot:
    """Contracts under ``paths`` (files or folders, as given on the command line) at revision ``ref``."""
    cwd = (cwd or Path.cwd()).resolve()
    if ref.startswith("-"):
        raise BaseRevisionError(f"not a revision: {ref!r}")
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd).decode().strip()).resolve()
    try:
        commit = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd).decode()
    except BaseRevisionError:
        raise BaseRevisionError(f"unknown revision {ref!r} (fetch it first, e.g. `git fetch origin main`)") from None
    snapshot = BaseSnapshot(ref, commit.strip())
    entries: dict[str, tuple[str, str, int]] = {}
    for path in paths:
        absolute = (cwd / path).resolve() if not path.is_absolute() else path.resolve()
        try:
            relative = absolute.relative_to(root).as_posix()
        except ValueError:
            raise BaseRevisionError(f"{path} is outside the git repository {root}") from None
        listing = _git(["ls-tree", "-r", "-l", "-z", "--full-tree", snapshot.commit, "--", relative or "."], root)
        for record in filter(None, listing.split(b"\0")):
            meta, _, name_bytes = record.partition(b"\t")
            mode, kind, sha, size = meta.decode().split()
            name = name_bytes.decode("utf-8", "replace")
            below = name[len(relative):].lstrip("/") if relative and name != relative else Path(name).name
            if not name.endswith(CONTRACT_SUFFIXES) or any(p.startswith((".", "_")) for p in below.split("/")):
                continue
            display = os.path.relpath(root / name, cwd)
            if kind != "blob" or mode not in ("100644", "100755"):
                snapshot.problems.append(Finding(display, 1, 1, "", "unreadable", f"the base revision holds a "
                                                 f"{'symbolic link' if mode == '120000' else kind} here, not a file; "
                                                 f"it is not followed"))
                continue
            if int(size) > MAX_CONTRACT_BYTES:
                snapshot.problems.append(Finding(display, 1, 1, "", "too-large", f"the base file is {size} bytes; "
                                                 f"contracts are limited to {MAX_CONTRACT_BYTES}"))
                continue
            entries.setdefault(display, (sha, name, int(size)))
    if not entries:
        return snapshot
    blobs = _git(["cat-file", "--batch"], root, stdin="".join(f"{sha}\n" for sha, _, _ in entries.values()).encode())
    offset = 0
    for display in entries:
        header_end = blobs.index(b"\n", offset)
        _, _, size_text = blobs[offset:header_end].decode().split()
        start = header_end + 1
        content = blobs[start:start + int(size_text)]
        offset = start + int(size_text) + 1
        try:
            loaded = load_contract_text(content.decode("utf-8"), display)
        except UnicodeDecodeError:
            snapshot.problems.append(Finding(display, 1, 1, "", "not-text", "the base file is not UTF-8 text"))
            continue
        except ContractLoadError as exc:
            snapshot.problems.extend(exc.findings)
            continue
        snapshot.contracts.setdefault(loaded.contract.name, loaded)
    return snapshot
