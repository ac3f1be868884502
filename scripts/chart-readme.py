#!/usr/bin/env python3
"""Regenerate the values table of helm/automator/README.md from the chart's values.yaml.

helm-docs' conventions, without its Go binary: a ``# --`` comment (and the ``#`` lines right
after it) directly above a key describes that key; every value gets a row with its type and
default. A described mapping whose keys carry no descriptions of their own is one row (its
default shown whole, as ``podSecurityContext``); otherwise its keys get rows. Lists are one row.

The table replaces what lies between the ``<!-- values:start -->`` and ``<!-- values:end -->``
markers; everything else in the README is prose kept by hand.

    scripts/chart-readme.py           rewrite the README
    scripts/chart-readme.py --check   exit 1 (and print a diff) when the README is stale

Hand-written rather than helm-docs because the one thing needed is this table, and helm-docs is
a Go program the test environment does not have.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

CHART = Path(__file__).resolve().parents[1] / "helm" / "automator"
START, END = "<!-- values:start -->", "<!-- values:end -->"
KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.-]+|\"[^\"]+\"):(\s|$)")

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def descriptions(text: str, values: dict[str, Any]) -> dict[Path_, str | None]:
    """Every key path of the file in order, with its ``# --`` description (None without one)."""
    found: dict[Path_, str | None] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    inside_list: int | None = None  # indent of a key whose (block) list value is being skipped
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if inside_list is not None and stripped and not stripped.startswith("#"):
            if indent > inside_list:
                continue  # an item of the list (or a key inside one)
            inside_list = None
        if not stripped:
            pending = None
            continue
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if stripped.startswith("# --"):
                pending = [stripped[4:].strip()]
            elif pending is not None:
                pending.append(body)
            continue
        match = KEY.match(line)
        if match is None:
            pending = None
            continue
        key = match["key"].strip('"')
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key)
        found[path] = " ".join(pending) if pending else None
        pending = None
        value = lookup(values, path)
        if isinstance(value, dict) and value:
            stack.append((indent, key))
        elif isinstance(value, list):
            inside_list = indent
    return found


def lookup(values: Any, path: Path_) -> Any:
    for key in path:
        values = values[key]
    return values


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows(values: dict[str, Any], described: dict[Path_, str | None]) -> Iterator[Row]:
    covered: Path_ | None = None
    for path, description in described.items():
        if covered is not None and path[: len(covered)] == covered:
            continue
        covered = None
        value = lookup(values, path)
        below = [p for p in described if len(p) > len(path) and p[: len(path)] == path]
        if isinstance(value, dict) and value:
            if any(described[p] for p in below):
                if description:  # a described mapping whose keys are described too: a heading row
                    yield Row(".".join(path), "object", "", cell(description))
                continue
            covered = path
        default = json.dumps(value, separators=(", ", ": "))
        yield Row(".".join(path), type_of(value), f"`{cell(default)}`", cell(description or ""))


def table(values_file: Path) -> str:
    text = values_file.read_text()
    values = YAML(typ="safe", pure=True).load(text)
    lines = [
        START,
        "<!-- Generated from values.yaml by scripts/chart-readme.py; edit the `# --` comments there. -->",
        "",
        "| Key | Type | Default | Description |",
        "| --- | --- | --- | --- |",
        *(
            f"| `{r.key}` | {r.type} | {r.default} | {r.description} |"
            for r in rows(values, descriptions(text, values))
        ),
        END,
    ]
    return "\n".join(lines)


def regenerate(readme: str, values_file: Path) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"the README has no {START} ... {END} section to fill in")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + table(values_file) + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the README is up to date")
    parser.add_argument("--chart", type=Path, default=CHART, help="chart directory (default: helm/automator)")
    args = parser.parse_args(argv)
    readme_path = args.chart / "README.md"
    current = readme_path.read_text()
    wanted = regenerate(current, args.chart / "values.yaml")
    if args.check:
        if current == wanted:
            return 0
        diff = difflib.unified_diff(current.splitlines(True), wanted.splitlines(True), str(readme_path), "generated")
        sys.stdout.writelines(diff)
        print(f"\n{readme_path} is stale: run scripts/chart-readme.py", file=sys.stderr)
        return 1
    if current != wanted:
        readme_path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
