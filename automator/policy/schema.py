"""The JSON Schema of the native policy format, generated from the pydantic models.

``policies/schema.json`` is this module's output, checked in for editors (YAML language
servers read ``# yaml-language-server: $schema=...``).  Regenerate it after changing
:mod:`automator.policy.schema_models`::

    python3 -m automator.policy.schema            # writes policies/schema.json
    python3 -m automator.policy.schema --check    # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from automator.policy.schema_models import NativeImagePolicy

SCHEMA_ID = "https://automator.dev/schemas/v1alpha1/imagepolicy.json"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "policies" / "schema.json"


def policy_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one native ``ImagePolicy`` document."""
    schema = NativeImagePolicy.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    """The schema as the checked-in file holds it (stable key order, trailing newline)."""
    return json.dumps(policy_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m automator.policy.schema", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH, help="schema file (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = render_schema()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is stale; run: python3 -m automator.policy.schema", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
