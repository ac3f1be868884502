"""Golden cases: Flux's documented and tested commit message templates give Flux's message.

See ``tests/data/gotemplate/README.md`` for where the templates and the expected bytes come from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from automator.gotemplate import Change, ObjectIdentifier, TemplateData, TemplateError, flux_template_data, parse

ROOT = Path(__file__).resolve().parents[1] / "data" / "gotemplate"
CASES = sorted(p for p in (ROOT / "expected").iterdir() if p.suffix in (".txt", ".error"))


def load_data(name: str) -> TemplateData:
    raw: dict[str, Any] = json.loads((ROOT / "data" / f"{name}.json").read_text(encoding="utf-8"))
    files: dict[str, dict[ObjectIdentifier, list[Change]]] = {}
    for f in raw.get("Files") or []:
        objects = files.setdefault(f["File"], {})
        for o in f["Objects"]:
            oid = ObjectIdentifier.of(
                kind=o["Kind"], name=o["Name"], namespace=o["Namespace"], api_version=o["APIVersion"]
            )
            objects.setdefault(oid, []).extend(Change(c["OldValue"], c["NewValue"], c["Setter"]) for c in o["Changes"])
    automation = {"namespace": raw["Automation"]["Namespace"], "name": raw["Automation"]["Name"]}
    return flux_template_data(automation, files, raw.get("Values") or {})


def test_every_template_and_data_set_is_used() -> None:
    used_templates = {c.stem.split("--")[0] for c in CASES}
    used_data = {c.stem.split("--")[1] for c in CASES}
    assert used_templates == {p.stem for p in (ROOT / "templates").glob("*.tmpl")}
    assert used_data == {p.stem for p in (ROOT / "data").glob("*.json")}


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_message_renders_as_flux_renders_it(case: Path) -> None:
    template_name, data_name = case.stem.split("--")
    text = (ROOT / "templates" / f"{template_name}.tmpl").read_bytes().decode("utf-8")
    template = parse(text, source="spec.git.commit.messageTemplate")
    data = load_data(data_name)
    if case.suffix == ".error":
        with pytest.raises(TemplateError) as info:
            template.render(data)
        assert info.value.reason == case.read_text(encoding="utf-8").strip()
    else:
        assert template.render(data).encode("utf-8") == case.read_bytes()
