"""Durable state: what the automator saw and did, kept in SQLite under ``--state-dir``.

One file, ``DIR/state.db``, written by the automator process alone (a lock file keeps a second
writer out) and readable by others at the same time (:meth:`StateStore.reader`: WAL journaling,
so a reader sees the last committed cycle while the next one is written). The standard
library's :mod:`sqlite3`, no ORM: the store returns frozen dataclasses.

What is kept (see :mod:`automator.state.schema`)::

    repositories  each repository listed, when it was last listed
    tags          per repository and tag: when we first listed it, its digest (when a policy
                  resolved one), when a listing first lacked it; ``rebuilt`` when the first
                  listing came from a database started afresh (the true first-seen is lost)
    cycles        one row per cycle: start, end, the base revision, ok / failed
    choices       each policy's choice (tag, digest, the tag its fields held, the error, the
                  chooser's reason -- a chosen tag's too, e.g. the variant rule: schema 2),
                  written when it changes: a row holds from its ``since_cycle`` until the
                  policy's next row (one saying "not scanned" when a policy goes), so an idle
                  cycle writes no choice at all
    pr_events     opened / updated / closed / merged, per pull request, with its versions
    merges        a commit on the base branch after which policies' fields hold other tags:
                  the commit, its time, those policies' tags (``base_versions`` keeps the
                  latest of each, for comparing the next cycle against)
    cluster_reports  what a cluster's synchronizer reported (revision, workloads, health, since):
                  written by ``automator run --cluster`` after each cycle when it changed, and
                  by ``automator status --cluster`` when no automator holds the database
    meta          small documents: ``held_back`` (what the gates held in the last cycle, for
                  ``status``), ``announced`` (tags a webhook announced, for ``history``), the
                  ``rebuild pending`` mark

Each cycle (:func:`record_cycle`, called by :func:`automator.run.run_once` with the clone still
open) records the tags of every listing, every choice, a merge when the base tip's fields hold
other tags than the last merge recorded (the tip's commit and commit time: when several commits
landed between two cycles, the tip stands for them), our own direct-mode commit on the base
branch as a merge too (what its fields hold at the commit, read from the clone; its commit
time), so a revert before the next cycle is a rollback of ours, the pull requests' events (from the
groups' results; a PR of ours that no group proposes any more is looked up on the forge, once,
to learn whether it was merged or closed), then prunes what is older than ``--state-retention``
(default 90 days). Tags are kept while listed, whatever their age: forgetting them would make
them look new.

**Schema versions.** ``PRAGMA user_version`` is the number of migrations applied; each
migration runs in one transaction with the bump. **A database we cannot use** -- not a SQLite
file, ``PRAGMA integrity_check`` failing, a schema newer than ours, a migration failing -- is
moved aside as ``state.db.<corrupt|newer|migration-failed>-<UTC time>`` (never deleted: a newer
release can still read its file) with a warning naming it and why, and a fresh one is started.
A fresh database (that one, or a missing file: an emptyDir after a restart) is marked
``rebuild pending`` in the file itself, so a crash before the first cycle loses nothing; the
next cycle rebuilds it: merges from the base branch's history (the commits that touched the
files holding the policies' fields, at most 200 and within the retention, at most 60 s),
pull-request events from the forge's list of our pull requests (at most 500; their times are
the rebuild's, marked ``rebuilt``), tags from that cycle's listings (marked ``rebuilt``).

A cycle is recorded in one transaction (the store's writes nest as savepoints), so a crash or a
full disk leaves either the whole cycle or none of it; nothing of a cycle is written before its
work is done, so a process killed mid-cycle leaves the file as the last completed cycle left it
(``tests/integration/test_state_crash.py``), and its lock (``fcntl.flock``, which dies with
the process) lets the next one in; the lock file left behind is harmless. Failing to record is logged as an error
and never fails the cycle, whose git and forge work is done by then. An error opening the file
that says nothing about its contents (a full disk, a permission) is a configuration error: the
file stays where it is.

Sizes (``benchmarks/state_bench.py``): 10,000 tags, 1,000 policies and 2,000 cycles come to
about 2.4 MB; an idle cycle writes one cycle row and little else.
"""

from typing import TYPE_CHECKING, Any

from automator.state.store import (
    DB_NAME,
    DEFAULT_RETENTION,
    ChoiceRecord,
    ClusterReport,
    CycleRecord,
    MergeRecord,
    PolicyChoice,
    PREventRecord,
    StateStore,
    TagRecord,
)

__all__ = [
    "DB_NAME",
    "DEFAULT_RETENTION",
    "BaseHistory",
    "ChoiceRecord",
    "ClusterReport",
    "CycleRecord",
    "MergeRecord",
    "PREventRecord",
    "PolicyChoice",
    "StateStore",
    "TagRecord",
    "rebuild",
    "record_cycle",
]

if TYPE_CHECKING:
    from automator.state.record import BaseHistory, rebuild, record_cycle

_RECORD = ("BaseHistory", "rebuild", "record_cycle")


def __getattr__(name: str) -> Any:
    """The recording side loads the pipeline (plan, registry, git); ``automator status`` reads the
    store alone, so it is imported on first use (PEP 562)."""
    if name in _RECORD:
        from automator.state import record  # noqa: PLC0415

        return getattr(record, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
