"""Render what the stages did for people and programs: tables, JSON, progress.

Every rendering reads the domain records (ScanResult, TagChoice, errors); nothing here
re-derives a decision.  Git, the forges and the plan are imported inside the functions that
need them, so ``automator scan`` starts without them.

On a terminal, progress is a rich progress bar and tables are rich tables; rich is imported
only then, so a pipe, a log collector or CI (plain, stable, greppable lines) never pays its
import time.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from automator.errors import AutomatorError
from automator.policy import PolicySet
from automator.registry.access import RegistryAccess, open_registry
from automator.scan import ScanResult

if TYPE_CHECKING:  # loaded where used: `scan` starts without git, forges, Jinja2
    from automator.plan import MemorySource, Plan
    from automator.run import RunSummary


def dump(doc: Any, output: str, out: TextIO) -> None:
    """A document as ``--output json`` (indented) or ``--output yaml`` (block style, keys in order)."""
    if output == "yaml":
        import yaml

        yaml.safe_dump(doc, out, sort_keys=False, allow_unicode=True, default_flow_style=False)
    else:
        json.dump(doc, out, indent=2)
        print(file=out)


def error_json(err: AutomatorError) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": type(err).__name__, "message": str(err)}
    for attr in ("path", "line", "column", "field"):
        value = getattr(err, attr, None)
        if value is not None:
            doc[attr] = value
    return doc


class ScanProgress:
    """Progress on stderr: a live bar on a terminal (rich), a line every few seconds otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, result: ScanResult) -> None:
        self.done += 1
        now = time.monotonic()
        if self.tty:
            self._advance()
        elif now - self.last >= 2.0 and self.done != self.total:
            count = f"{self.done}/{self.total}" if self.total else str(self.done)
            print(f"scanning {count}", file=self.stream, flush=True)
            self.last = now

    def _advance(self) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            columns = [TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
            self._bar = Progress(*columns, console=Console(file=self.stream), transient=True)
            self._task = self._bar.add_task("scan", total=self.total or None)
            self._bar.start()
        self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def scan_json(results: Sequence[ScanResult], policies: PolicySet) -> dict[str, Any]:
    rows = []
    for r in results:
        row: dict[str, Any] = {"policy": r.policy.name, "image": r.policy.image.repository, "current": r.current}
        if r.choice is not None:
            row.update(
                tags_seen=r.choice.seen,
                candidates=r.choice.candidates,
                tag=r.choice.tag,
                digest=r.choice.digest,
                reason=r.choice.reason or None,
            )
            if r.policy.verify is not None:  # the signature check: how the tag verified, what it skipped
                row["verified"] = r.choice.verified or None
                row["skipped"] = [{"tag": k.tag, "digest": k.digest, "reason": k.reason} for k in r.choice.skipped]
        if r.error is not None:
            row["error"] = error_json(r.error)
        rows.append(row)
    return {"results": rows, "errors": [error_json(e) for e in policies.errors]}


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """A rich table on a terminal; otherwise columns padded to their widest cell, the last ragged."""
    if out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*row)
        Console(file=out).print(table)
        return
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers[:-1])]
    for row in (headers, *rows):
        cells = [f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:-1])]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)


def print_scan_table(results: Sequence[ScanResult], out: TextIO) -> None:
    """One row per policy: the tag its files hold now (CURRENT) and the choice made against it."""
    rows: list[tuple[str, str, str, str, str]] = []
    for r in results:
        if r.error is not None:
            seen, chosen = "-", f"error: {r.error}"
        elif r.choice is None or r.choice.tag is None:
            seen = str(r.choice.seen if r.choice else 0)
            chosen = f"(none) {r.choice.reason if r.choice else ''}".strip()
        else:
            seen = str(r.choice.seen)
            chosen = r.choice.tag + (f"@{r.choice.digest}" if r.choice.digest else "")
            if r.choice.reason:
                chosen += f" ({r.choice.reason})"
        rows.append((r.policy.name, r.policy.image.repository, seen, r.current or "-", chosen))
    print_table(("POLICY", "IMAGE", "TAGS", "CURRENT", "CHOSEN"), rows, out)


def warning_lines(plan: Plan) -> list[str]:
    """The rewrite's warnings; one about a marker naming no policy says which policy is closest."""
    markers = {(m.path, m.line): m for m in plan.markers}
    return [f"warning: {markers.get((w.file, w.line), w)}" for w in plan.update.warnings]


def print_plan(plan: Plan, diff_out: TextIO, table_out: TextIO) -> None:
    """The unified diff, then one row per change and the warnings."""
    from automator.update import change_rows, unified_diff

    diff = unified_diff(plan.update)
    if diff:
        diff_out.write(diff)
    rows = change_rows(plan.update)
    if rows:
        print_table(("FILE:LINE", "OBJECT", "POLICY", "OLD", "NEW"), rows, table_out)
    else:
        print(f"no changes: {plan.why_unchanged}", file=table_out)
    for line in warning_lines(plan):
        print(line, file=table_out)
    for r in plan.failed:
        print(f"error: policy {r.policy.name}: {r.error}", file=table_out)


def plan_json(plan: Plan, policies: PolicySet) -> dict[str, Any]:
    from automator.update import to_json

    return {
        "timings": dict(plan.timings),
        "scan": scan_json(plan.scan, policies)["results"],
        "update": to_json(plan.update),
        "markers": [error_json(e) for e in plan.markers],
        "errors": [error_json(e) for e in policies.errors],
    }


async def run_scan(
    root: Path, policies: PolicySet, access: RegistryAccess, stream: TextIO, memory: MemorySource | None = None
) -> tuple[ScanResult, ...]:
    """Scan every policy with progress on ``stream``, choosing against the tags its files hold
    now (as the plan chooses: never a downgrade, variant awareness)."""
    from automator.plan import scan_repository
    from automator.registry.memo import RegistryMemo

    progress = ScanProgress(len(policies.policies), stream)
    client, failed = open_registry(policies.policies, access)
    try:
        async with client:
            registry = RegistryMemo().wrap(client)  # one listing per repository, however many jobs
            return await scan_repository(root, policies, registry, failed=failed, progress=progress, memory=memory)
    finally:
        progress.close()


async def run_plan(
    root: Path, policies: PolicySet, access: RegistryAccess, stream: TextIO, memory: MemorySource | None = None
) -> Plan:
    """Plan over ``root`` with scan progress on ``stream``; nothing on disk changes."""
    from automator.plan import plan_repository
    from automator.registry.memo import RegistryMemo

    progress = ScanProgress(len(policies.policies), stream)
    client, failed = open_registry(policies.policies, access)
    try:
        async with client:
            registry = RegistryMemo().wrap(client)  # one listing per repository, however many jobs
            return await plan_repository(root, policies, registry, failed=failed, progress=progress, memory=memory)
    finally:
        progress.close()


def run_json(summary: RunSummary) -> dict[str, Any]:
    """``automator run --output json``: the revision, per-policy choices, and per-group outcomes."""
    return {
        "revision": summary.revision,
        "scan": [
            {
                "policy": r.policy.name,
                "tag": r.choice.tag if r.choice else None,
                "error": str(r.error) if r.error else None,
            }
            for r in summary.plan.scan
        ],
        "changes": len(summary.plan.update.changes),
        "groups": [
            {
                "group": g.group,
                "outcome": g.outcome,
                "reason": g.reason,
                "branch": g.branch,
                "sha": g.sha,
                "pullRequest": g.pull_request.url if g.pull_request else None,
                "policies": list(g.policies),
            }
            for g in summary.groups
        ],
        "errors": [error_json(e) for e in summary.policy_errors],
        "warnings": [{"file": w.file, "line": w.line, "message": w.message} for w in summary.plan.update.warnings],
        "forgeCalls": {"reads": summary.forge_reads, "writes": summary.forge_writes},
        **(
            {"shards": {"count": summary.selection.count, "held": sorted(summary.selection.held)}}
            if summary.selection is not None
            else {}
        ),
    }


def print_run(summary: RunSummary, out: TextIO, *, brief_when_idle: bool = False) -> None:
    """The summary of one cycle: what was scanned, chosen, changed and opened.

    With ``brief_when_idle`` (the service, every few minutes), a cycle that changed nothing and
    met no error or warning is one line, not a table of unchanged pull requests.
    """
    scan = summary.plan.scan
    chose = sum(1 for r in scan if r.choice is not None and r.choice.tag is not None)
    files = len({c.file for c in summary.plan.update.changes})
    print(
        f"revision {summary.revision[:12]}: scanned {len(scan)} policies, {chose} chose a tag, "
        f"{len(summary.plan.failed)} failed; {len(summary.plan.update.changes)} changes in {files} files",
        file=out,
    )
    idle = all(g.outcome == "unchanged" for g in summary.groups)
    if brief_when_idle and idle and not (summary.failed or summary.plan.update.warnings):
        return
    for r in summary.plan.failed:
        print(f"error: policy {r.policy.name}: {r.error}", file=out)
    for err in summary.policy_errors:
        print(f"error: {err}", file=out)
    for line in warning_lines(summary.plan):
        print(line, file=out)
    rows = [
        (g.group, g.outcome, g.branch or "-", g.pull_request.url if g.pull_request else "-", g.reason)
        for g in summary.groups
    ]
    if rows:
        print_table(("GROUP", "OUTCOME", "BRANCH", "PULL REQUEST", "REASON"), rows, out)

    from automator.forge import NoneForge

    forge = summary.forge
    if isinstance(forge, NoneForge):
        for g in summary.groups:
            if g.pull_request is not None and g.outcome in ("opened", "updated"):
                print(f"\n--- pull request ({g.outcome}, forge: none) ---", file=out)
                print(forge.render(g.pull_request), file=out)
