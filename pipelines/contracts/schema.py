"""The editor JSON Schema of a contract, generated from the model so the two cannot drift apart.

Editors (VS Code with the YAML extension, JetBrains, ...) read ``contracts/contract.schema.json`` through the
``# yaml-language-server: $schema=./contract.schema.json`` line at the top of each contract and flag unknown keys,
wrong types and malformed durations while the author types. ``feature-check`` remains the authority: the schema
cannot express the semantic rules of :mod:`pipelines.contracts.check`.

Regenerate after changing the model (a test fails while the checked-in file is stale)::

    .venv/bin/python -m pipelines.contracts.schema          # writes contracts/contract.schema.json
    .venv/bin/python -m pipelines.contracts.schema --check  # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

from pydantic.json_schema import GenerateJsonSchema

from pipelines.contracts.durations import DURATION_PATTERN, format_duration
from pipelines.contracts.model import ColumnType, Contract

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "contracts" / "contract.schema.json"
SCHEMA_ID = "urn:feature-platform:contract.schema.json"
REGENERATE = ".venv/bin/python -m pipelines.contracts.schema"


class _ContractSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator, with durations shown as people write them (``"5m"``, not ISO-8601 ``"PT5M"``)."""

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_duration(dft) if dft else "0s"
        return super().encode_default(dft)


def contract_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a contract file, including the YAML shorthands the loader accepts."""
    schema = Contract.model_json_schema(by_alias=True, schema_generator=_ContractSchemaGenerator)
    schema = _allow_shorthands(schema)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "Feature contract",
            "description": "A feature contract: see docs/contracts.md. Check with `feature-check`.",
            **{key: value for key, value in schema.items() if key != "title"}}


def _allow_shorthands(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the two shorthands that model validators expand: ``window: 5m`` and ``schema: {amount: double}``.

    Pydantic derives the schema from field types and cannot see the ``mode="before"`` validators that accept them.
    """
    schema = copy.deepcopy(schema)
    defs = schema["$defs"]
    window = defs["Feature"]["properties"]["window"]
    defs["Feature"]["properties"]["window"] = {
        "description": "`5m` (tumbling) or `{size: 1h, slide: 5m}` (sliding).",
        "anyOf": [{"type": "string", "pattern": DURATION_PATTERN, "examples": ["5m", "1h"]}, window],
    }
    patterns = defs["Source"]["properties"]["schema"]["patternProperties"]
    for pattern, column in patterns.items():
        patterns[pattern] = {"anyOf": [{"type": "string", "enum": list(get_args(ColumnType))}, column]}
    _name_keys_by_pattern(schema)
    return schema


def _name_keys_by_pattern(node: Any) -> None:
    """Maps keyed by names (``schema``, ``degradation``, ``sla.features``) get their key pattern as ``propertyNames``.

    Pydantic emits ``patternProperties`` alone, which lets an editor accept any other key silently.
    """
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1:
            node["propertyNames"] = {"pattern": next(iter(patterns))}
        for value in node.values():
            _name_keys_by_pattern(value)
    elif isinstance(node, list):
        for value in node:
            _name_keys_by_pattern(value)


def render_schema() -> str:
    """The schema file's exact text (stable key order, trailing newline)."""
    return json.dumps(contract_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.contracts.schema",
                                     description=f"Write the contract JSON Schema to {SCHEMA_PATH.name}.")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when the file is stale")
    parser.add_argument("--output", type=Path, default=SCHEMA_PATH, help="where the schema lives")
    args = parser.parse_args(argv)
    text = render_schema()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale; regenerate it with `{REGENERATE}`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(f"{args.output} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
