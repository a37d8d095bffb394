"""YAML -> :class:`Contract`, with every error located at file, line, column and YAML path.

Contracts arrive in pull requests, so they are untrusted input. Loading is therefore defensive:

* the file size is checked before reading (``MAX_CONTRACT_BYTES``), binary content and control characters are rejected;
* anchors and aliases are refused outright (they are the vehicle of "billion laughs" alias bombs, and a contract has
  no need for them);
* nesting deeper than ``MAX_DEPTH`` fails while composing, before any recursion can blow up;
* duplicate keys are errors (PyYAML would silently keep the last one);
* only plain YAML scalars are built: no tags, no Python objects (``yaml.SafeLoader`` underneath).

The YAML is composed into nodes first and converted by hand, so every value keeps its position; pydantic's error
locations are then mapped back to those positions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines.contracts.model import Contract
from pipelines.errors import PlatformError, Terminal
from pipelines.report import Finding

MAX_CONTRACT_BYTES = 256 * 1024
MAX_DEPTH = 16
CONTRACT_SUFFIXES = (".yaml", ".yml")

YamlPath = tuple[str | int, ...]

#: Append to a mapping entry's path to locate its key instead of its value: ``("degradation", "x", KEY)``.
KEY = "__key__"

#: Rule ids the loader reports (shape problems); semantic rules are listed in :mod:`pipelines.contracts.check`.
LOADER_RULES: dict[str, str] = {
    "unreadable": "the file cannot be read",
    "too-large": f"the file is larger than {MAX_CONTRACT_BYTES // 1024} KiB",
    "not-text": "the file is not UTF-8 text or holds control characters (binary content)",
    "empty": "the file holds no YAML document",
    "yaml-syntax": "the file is not valid YAML",
    "yaml-alias": "anchors and aliases are not allowed (they are how alias bombs are built)",
    "yaml-depth": f"the document is nested deeper than {MAX_DEPTH} levels",
    "yaml-tag": "a YAML tag (`!!python/...`, `!!set`, ...) is used; contracts hold plain values only",
    "yaml-key": "a key is not a plain name (merge keys `<<` and complex keys are not allowed)",
    "duplicate-key": "the same key appears twice in one mapping",
    "not-a-mapping": "the top level of the file is not a mapping",
    "unknown-key": "a key the contract format does not define (usually a typo)",
    "missing-key": "a required key is absent",
    "invalid-value": "a value has the wrong type or is out of range",
}


@dataclass(frozen=True)
class Position:
    line: int
    column: int


class ContractLoadError(PlatformError, Terminal):
    """A contract could not be loaded; ``findings`` says where and why (each ``file:line:col: ... [rule] ...``)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        first = findings[0] if findings else None
        super().__init__("\n".join(f.render() for f in findings),
                         hint=f"run `feature-check {first.file}` and fix what it reports" if first else None)

    def one_line(self) -> str:
        """The findings themselves: each already names file, line, column and rule."""
        text = self.message
        return f"{text}\n(next: {self.hint})" if self.hint else text


@dataclass(frozen=True)
class LoadedContract:
    """A valid contract together with where each of its values was written."""

    file: str
    contract: Contract
    positions: dict[YamlPath, Position]

    def locate(self, path: YamlPath) -> Position:
        """Position of the deepest part of ``path`` that exists in the file (defaults are not in the file)."""
        return locate(self.positions, path)

    def finding(self, path: YamlPath, rule: str, message: str, severity: str = "error") -> Finding:
        pos = self.locate(path)
        return Finding(self.file, pos.line, pos.column, format_path(path), rule, message, severity)  # type: ignore[arg-type]


def format_path(path: YamlPath) -> str:
    """``("features", 1, "window")`` -> ``features[1].window``; the :data:`KEY` marker is not shown."""
    text = ""
    for part in path:
        if part == KEY:
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def locate(positions: dict[YamlPath, Position], path: YamlPath) -> Position:
    for end in range(len(path), -1, -1):
        if path[:end] in positions:
            return positions[path[:end]]
    return Position(1, 1)


if yaml.__with_libyaml__:
    # libyaml scans and parses in C (about 15x faster than PyYAML's Python parser, which dominated feature-check's
    # time); composing stays in Python below, where aliases and depth are guarded. ``Composer`` comes first so its
    # compose methods win over CParser's C ones; the events come from CParser.
    class _SafeBase(yaml.composer.Composer, yaml._yaml.CParser, yaml.constructor.SafeConstructor,  # type: ignore[misc]
                    yaml.resolver.Resolver):
        def __init__(self, stream: str) -> None:
            yaml._yaml.CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    _SafeBase = yaml.SafeLoader  # type: ignore[misc,assignment]


class _GuardedLoader(_SafeBase):
    """A safe loader that refuses aliases and deep nesting while composing (before anything is built)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _LoadProblem(event.start_mark, "yaml-alias",
                               "anchors and aliases (`*name`) are not allowed in contracts; write the value out")
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _LoadProblem(event.start_mark, "yaml-alias",
                               "anchors and aliases (`&name`) are not allowed in contracts; write the value out")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _LoadProblem(event.start_mark, "yaml-depth",
                               f"the document is nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _LoadProblem(Exception):  # noqa: N818 (internal signal, never escapes this module)
    def __init__(self, mark: yaml.Mark | None, rule: str, message: str) -> None:
        self.position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        self.rule = rule
        self.message = message


_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _to_python(node: yaml.Node, loader: _GuardedLoader, path: YamlPath,
               positions: dict[YamlPath, Position]) -> Any:
    """Convert a composed node to plain Python, recording the position of every value by its YAML path."""
    positions[path] = Position(node.start_mark.line + 1, node.start_mark.column + 1)
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
        # Tags on collections would otherwise be ignored silently (`!!python/object:x {a: 1}` read as a mapping).
        raise _tag_problem(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise _LoadProblem(key_node.start_mark, "yaml-key", "keys must be plain names (no `<<` merges, "
                                                                    "no complex keys)")
            key = str(loader.construct_scalar(key_node))
            if key in result:
                raise _LoadProblem(key_node.start_mark, "duplicate-key",
                                   f"key `{key}` appears twice in the same mapping; keep one")
            child = (*path, key)
            result[key] = _to_python(value_node, loader, child, positions)
            # Point errors about a key (unknown key, missing nested field) at the key itself.
            positions.setdefault((*child, KEY), Position(key_node.start_mark.line + 1,
                                                               key_node.start_mark.column + 1))
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, loader, (*path, i), positions) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        raise _tag_problem(node) from None


def _tag_problem(node: yaml.Node) -> _LoadProblem:
    tag = "!!" + node.tag.removeprefix("tag:yaml.org,2002:") if node.tag.startswith("tag:yaml.org,2002:") else node.tag
    return _LoadProblem(node.start_mark, "yaml-tag", f"YAML tags such as `{tag}` are not allowed in contracts; "
                                                     f"write a plain value")


def parse_yaml_text(text: str, file: str) -> tuple[Any, dict[YamlPath, Position]]:
    """Parse one YAML document into plain Python plus positions; raise :class:`ContractLoadError` on any problem."""
    positions: dict[YamlPath, Position] = {}
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _LoadProblem(None, "empty", "the file is empty; a contract is a YAML mapping")
        data = _to_python(node, loader, (), positions)
    except _LoadProblem as problem:
        raise ContractLoadError([Finding(file, problem.position.line, problem.position.column, "", problem.rule,
                                         problem.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        if "nesting depth" in reason:  # libyaml's own limit (1000 levels) can trip before ours while scanning ahead
            raise ContractLoadError([Finding(file, pos.line, pos.column, "", "yaml-depth",
                                             f"the document is nested deeper than {MAX_DEPTH} levels")]) from None
        raise ContractLoadError([Finding(file, pos.line, pos.column, "", "yaml-syntax",
                                         f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise ContractLoadError([Finding(file, 1, 1, "", "yaml-syntax", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, positions


def read_contract_text(path: Path, display: str) -> str:
    """Read a contract file with the size, encoding and binary-content guards."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ContractLoadError([Finding(display, 1, 1, "", "unreadable", f"cannot read the file: {exc.strerror}")]) \
            from None
    if size > MAX_CONTRACT_BYTES:
        raise ContractLoadError([Finding(display, 1, 1, "", "too-large",
                                         f"the file is {size} bytes; contracts are limited to {MAX_CONTRACT_BYTES}")])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ContractLoadError([Finding(display, line, 1, "", "not-text",
                                         "the file is not UTF-8 text (binary content?)")]) from None
    reject_control_characters(text, display)
    return text


#: What YAML itself refuses (its reader's NON_PRINTABLE set): C0/C1 control characters other than tab, newline, carriage
#: return and NEL, surrogates, U+FFFE and U+FFFF.
_NOT_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def reject_control_characters(text: str, display: str) -> None:
    """Refuse text with characters that no YAML file may hold, located at the first of them."""
    match = _NOT_TEXT.search(text)
    if match is not None:
        index = match.start()
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        raise ContractLoadError([Finding(display, line, column, "", "not-text",
                                         f"control character U+{ord(match.group()):04X} is not allowed")])


def _validation_findings(exc: ValidationError, file: str, positions: dict[YamlPath, Position]) -> list[Finding]:
    findings = []
    for error in exc.errors(include_url=False):
        loc: YamlPath = tuple(error["loc"])
        # Union branches add their type name to the location ("str", "int", ...); drop those parts.
        loc = tuple(part for part in loc if isinstance(part, int) or not _is_type_tag(part))
        if error["type"] == "extra_forbidden":
            pos = positions.get((*loc, KEY)) or locate(positions, loc)
            message = f"unknown key `{loc[-1]}`; check its spelling (docs/contracts.md lists the allowed keys)"
            rule = "unknown-key"
        elif error["type"] == "missing":
            pos = positions.get((*loc[:-1], KEY)) or locate(positions, loc[:-1])
            message = f"required key `{loc[-1]}` is missing"
            rule = "missing-key"
        else:
            pos = locate(positions, loc)
            message = _clean_message(error)
            rule = "invalid-value"
        findings.append(Finding(file, pos.line, pos.column, format_path(loc), rule, message))
    return sorted(set(findings))


def _is_type_tag(part: str) -> bool:
    """Pydantic adds the branch type of a union to error locations; those are not YAML keys."""
    return part in {"str", "int", "float", "bool", "none"} or part.startswith(("function-", "constrained-", "literal["))


def _clean_message(error: Any) -> str:
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^[a-z]"):
            return (f"{error['input']!r} is not a valid name: use lowercase letters, digits and `_`, starting with a "
                    f"letter (at most 63 characters)")
        if "(0|[1-9]" in pattern and "ms|s" not in pattern:
            return f"{error['input']!r} is not a semantic version such as `1.2.0`"
    if error["type"] == "literal_error":
        return f"got {error['input']!r}; {message.lower()}"
    if error["type"] == "string_type" and isinstance(error.get("input"), int | float):
        return f"expected text, got the number {error['input']!r}; put it in quotes"
    shown = error.get("input")
    if "got" in message or shown is None or isinstance(shown, dict | list):
        return message
    return f"{message} (got {shown!r})"


def load_contract_text(text: str, file: str) -> LoadedContract:
    """Parse and validate one contract given as text; ``file`` is only used in messages."""
    reject_control_characters(text, file)
    data, positions = parse_yaml_text(text, file)
    if not isinstance(data, dict):
        raise ContractLoadError([Finding(file, 1, 1, "", "not-a-mapping",
                                         f"a contract is a YAML mapping (`name: ...`), got a {type(data).__name__}")])
    try:
        contract = Contract.model_validate(data)
    except ValidationError as exc:
        raise ContractLoadError(_validation_findings(exc, file, positions)) from None
    return LoadedContract(file, contract, positions)


def load_contract(path: Path | str, display: str | None = None) -> LoadedContract:
    """Load and validate one contract file."""
    path = Path(path)
    shown = display or str(path)
    return load_contract_text(read_contract_text(path, shown), shown)


def iter_contract_files(root: Path | str) -> Iterator[Path]:
    """Contract files under ``root`` (or ``root`` itself), in a stable order; hidden files and folders are skipped."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).parts
        if path.suffix in CONTRACT_SUFFIXES and path.is_file() and not any(p.startswith((".", "_")) for p in relative):
            yield path
