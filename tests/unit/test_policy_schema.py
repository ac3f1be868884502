"""The checked-in JSON Schema is the one the models generate, and it describes the format."""

from __future__ import annotations

import json
from pathlib import Path

from automator.policy.schema import DEFAULT_PATH, main, policy_schema, render_schema

SCHEMA = Path(__file__).resolve().parents[2] / "policies" / "schema.json"


def test_checked_in_schema_is_current() -> None:
    assert DEFAULT_PATH == SCHEMA
    assert SCHEMA.read_text(encoding="utf-8") == render_schema(), (
        "policies/schema.json is stale: regenerate it with `python3 -m automator.policy.schema`"
    )


def test_schema_describes_the_native_format() -> None:
    schema = policy_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert schema["properties"]["apiVersion"]["const"] == "automator.dev/v1alpha1"
    assert schema["additionalProperties"] is False
    spec = schema["$defs"]["NativeSpec"]["properties"]
    assert {
        "image",
        "policy",
        "filterTags",
        "exclude",
        "excludeDefaults",
        "digestReflectionPolicy",
        "credentials",
        "interval",
        "suspend",
        "variantAware",
        "allowDowngrade",
        "platform",
        "insecure",
        "markerLess",
        "minAge",
        "minAgeFrom",
        "pin",
        "verify",
        "promotion",
    } == set(spec)
    choice = schema["$defs"]["PolicyChoice"]
    assert set(choice["properties"]) == {"semver", "numerical", "alphabetical", "newestBuild", "digest"}
    assert (choice["minProperties"], choice["maxProperties"]) == (1, 1)


def test_check_mode(tmp_path: Path) -> None:
    target = tmp_path / "schema.json"
    assert main([str(target), "--check"]) == 1
    assert main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == policy_schema()
    assert main([str(target), "--check"]) == 0
