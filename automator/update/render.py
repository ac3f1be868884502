"""Render an :class:`UpdateResult` for people and programs: a unified diff, a table, JSON.

All three read only the result records; none touches a file.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from automator.update.model import FileResult, UpdateResult

NO_NEWLINE = "\\ No newline at end of file\n"


def file_diff(result: FileResult, *, context: int = 3) -> str:
    """The ``git diff``-style unified diff of one file (``a/`` and ``b/`` prefixes)."""
    if not result.changed:
        return ""
    before, after = _lines(result.original), _lines(result.text)
    out = [f"diff --git a/{result.path} b/{result.path}\n"]
    for line in difflib.unified_diff(before, after, f"a/{result.path}", f"b/{result.path}", n=context):
        if line.startswith(("---", "+++")):
            out.append(line.rstrip("\n") + "\n")
        elif line.endswith("\n"):
            out.append(line)
        else:  # the last line of a file without a final newline
            out.append(line + "\n" + NO_NEWLINE)
    return "".join(out)


def _lines(text: str) -> list[str]:
    """Lines as git sees them: split on LF only (str.splitlines also splits on FF, U+2028...)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def unified_diff(result: UpdateResult, *, context: int = 3) -> str:
    """The unified diff of every changed file, in path order; empty when nothing changed."""
    return "".join(file_diff(f, context=context) for f in sorted(result.files, key=lambda f: f.path))


def change_rows(result: UpdateResult) -> list[tuple[str, str, str, str, str]]:
    """One row per change for a table: (file:line, object, policy, old, new)."""
    rows = []
    for f in sorted(result.files, key=lambda f: f.path):
        for obj in f.objects:
            for c in obj.changes:
                rows.append((f"{c.file}:{c.line}", str(obj.object), c.policy, c.old, c.new))
    return rows


def to_json(result: UpdateResult) -> dict[str, Any]:
    """A JSON-able rendering (``plan --output json``): files -> objects -> changes, and warnings."""
    return {
        "files": [
            {
                "path": f.path,
                "objects": [
                    {
                        "apiVersion": o.object.api_version,
                        "kind": o.object.kind,
                        "namespace": o.object.namespace,
                        "name": o.object.name,
                        "changes": [
                            {"line": c.line, "old": c.old, "new": c.new, "policy": c.policy} for c in o.changes
                        ],
                    }
                    for o in f.objects
                ],
            }
            for f in sorted(result.files, key=lambda f: f.path)
            if f.changed
        ],
        "warnings": [{"file": w.file, "line": w.line, "message": w.message} for w in result.warnings],
        "summary": {
            "filesScanned": result.scanned,
            "filesParsed": result.parsed,
            "filesChanged": sum(1 for f in result.files if f.changed),
            "changes": len(result.changes),
            "policies": list(result.policies),
        },
    }


def render_json(result: UpdateResult, *, indent: int | None = 2) -> str:
    return json.dumps(to_json(result), indent=indent, sort_keys=False) + "\n"
