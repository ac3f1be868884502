"""The default PR body: a Markdown table of image, old -> new, files and lines, plus the marker.

User templates (the run orchestrator's Jinja2 sandbox) may replace the prose and table;
whatever they render, :func:`automator.forge.base.with_marker` appends the marker.
Written by hand because it is a dozen lines of string joining with Markdown escaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from automator.forge.base import PRState, with_marker

# GitHub rejects bodies over 65536 characters; GitLab allows more but renders slowly.
MAX_BODY_CHARS = 60_000


@dataclass(frozen=True)
class Location:
    """A line in a file of the config repo, optionally linked (e.g. to the forge's blob view)."""

    path: str
    line: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class BodyRow:
    """One image moving from ``old`` to ``new``, found at ``locations``, chosen by ``policy``."""

    image: str
    old: str
    new: str
    locations: tuple[Location, ...] = ()
    policy: str | None = None
    policy_url: str | None = None
    proof: str = ""  # where the new version ran before it was proposed here (spec.promotion)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: str) -> str:
    text = _cell(text)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _link(label: str, url: str | None) -> str:
    if not url:
        return label
    return f"[{label}]({url.replace(' ', '%20').replace(')', '%29')})"


def _locations(locations: Sequence[Location]) -> str:
    parts = []
    for loc in locations:
        label = _code(f"{loc.path}:{loc.line}" if loc.line is not None else loc.path)
        parts.append(_link(label, loc.url))
    return "<br>".join(parts)


def render_table(rows: Sequence[BodyRow]) -> str:
    """The Markdown table; a "Policy" column appears only when a row names its policy."""
    with_policy = any(row.policy for row in rows)
    head = ["Image", "Change", "Files"] + (["Policy"] if with_policy else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [_code(row.image), f"{_code(row.old)} → {_code(row.new)}", _locations(row.locations)]
        if with_policy:
            cells.append(_link(_code(row.policy), row.policy_url) if row.policy else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_proofs(rows: Sequence[BodyRow]) -> str:
    """The promotion evidence of the rows that have it: where each version ran, since when,
    healthy for how long, and the query with its value ("" when no row has any)."""
    lines = [f"- {_code(row.policy or row.image)} {_code(row.new)}: {_cell(row.proof)}" for row in rows if row.proof]
    if not lines:
        return ""
    return "**Promoted after proof** (`spec.promotion`):\n\n" + "\n".join(lines)


def build_body(rows: Sequence[BodyRow], state: PRState, *, intro: str | None = None, footer: str | None = None) -> str:
    """Intro, table, footer, then the hidden marker; rows are dropped (and counted) past the size limit."""
    intro = intro if intro is not None else _default_intro(len(rows))
    kept = list(rows)
    while True:
        table = render_table(kept)
        dropped = len(rows) - len(kept)
        more = f"\n\n…and {dropped} more change{'s' if dropped != 1 else ''} not shown." if dropped else ""
        parts = [intro, table + more, render_proofs(kept)] + ([footer] if footer else [])
        body = with_marker("\n\n".join(p for p in parts if p), state)
        if len(body) <= MAX_BODY_CHARS or not kept:
            return body
        kept = kept[: max(0, len(kept) * 3 // 4)]


def _default_intro(count: int) -> str:
    noun = "image" if count == 1 else "images"
    return f"This pull request updates {count} {noun}, as chosen by the image policies."
