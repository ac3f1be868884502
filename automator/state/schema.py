"""The state database's schema: an ordered list of migrations, ``PRAGMA user_version`` its index.

Migration *n* (1-based) turns a database at version *n - 1* into version *n*; each runs in one
transaction with the ``user_version`` bump, so a database is always at exactly one version.
Append, never edit: a released migration is how every older database reaches today's schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One step of the schema: SQL statements, or a function given the open connection."""

    description: str
    apply: str | Callable[[sqlite3.Connection], None]

    def run(self, conn: sqlite3.Connection) -> None:
        if isinstance(self.apply, str):
            for statement in self.apply.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
        else:
            self.apply(conn)


_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_listed INTEGER NOT NULL
);
CREATE INDEX repositories_last_listed ON repositories (last_listed);
CREATE TABLE tags (
    repository INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    digest TEXT,
    first_seen INTEGER NOT NULL,
    rebuilt INTEGER NOT NULL DEFAULT 0,
    gone INTEGER,
    PRIMARY KEY (repository, tag)
) WITHOUT ROWID;
CREATE INDEX tags_gone ON tags (gone) WHERE gone IS NOT NULL;
CREATE TABLE cycles (
    id INTEGER PRIMARY KEY,
    started INTEGER NOT NULL,
    finished INTEGER,
    revision TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'running'
);
CREATE INDEX cycles_started ON cycles (started);
CREATE TABLE choices (
    id INTEGER PRIMARY KEY,
    policy TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT,
    digest TEXT,
    current TEXT,
    error TEXT,
    scanned INTEGER NOT NULL DEFAULT 1,
    since_cycle INTEGER NOT NULL
);
CREATE INDEX choices_policy ON choices (policy, since_cycle);
CREATE INDEX choices_since ON choices (since_cycle);
CREATE TABLE pr_events (
    id INTEGER PRIMARY KEY,
    policy_group TEXT NOT NULL,
    number INTEGER NOT NULL,
    url TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('opened', 'updated', 'closed', 'merged')),
    versions TEXT NOT NULL,
    at INTEGER NOT NULL,
    rebuilt INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pr_events_at ON pr_events (at);
CREATE INDEX pr_events_number ON pr_events (number, id);
CREATE TABLE merges (
    id INTEGER PRIMARY KEY,
    revision TEXT NOT NULL,
    at INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    versions TEXT NOT NULL,
    rebuilt INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX merges_seen ON merges (seen);
CREATE TABLE base_versions (
    policy TEXT PRIMARY KEY,
    tags TEXT NOT NULL,
    revision TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE cluster_reports (
    id INTEGER PRIMARY KEY,
    cluster TEXT NOT NULL,
    revision TEXT NOT NULL,
    reported_at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX cluster_reports_cluster ON cluster_reports (cluster, id);
CREATE INDEX cluster_reports_at ON cluster_reports (reported_at)
"""

# a chosen tag can say why too (the variant rule kept the current tag's shape), apart from
# ``error``, which says why nothing was chosen: status tells a failure from a held choice by it
_V2 = "ALTER TABLE choices ADD COLUMN reason TEXT"

MIGRATIONS: Sequence[Migration] = (
    Migration("tags, cycles, choices, pull-request events, merges, cluster reports", _V1),
    Migration("the reason of each choice", _V2),
)
SCHEMA_VERSION = len(MIGRATIONS)
