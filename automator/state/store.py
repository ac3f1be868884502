"""The state database: one SQLite file (WAL) under ``--state-dir``; see :mod:`automator.state`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from automator.errors import ConfigError

if TYPE_CHECKING:  # the policy package loads pydantic and the loader: `automator status` needs neither
    from automator.policy.model import HeldTag
from automator.state.schema import MIGRATIONS, Migration

log = logging.getLogger("automator.state")

DB_NAME = "state.db"
DEFAULT_RETENTION = timedelta(days=90)
LISTED_RESOLUTION = 3600  # seconds: a repository's last_listed is written at most this often
MAX_ANNOUNCEMENTS = 10_000  # tags whose announcing webhook is remembered
PREvent = Literal["opened", "updated", "closed", "merged"]
Now = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def _dt(ts: int | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _when(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TagRecord:
    """A tag of a repository: when we first listed it, its digest when we learnt one.

    ``rebuilt``: the database was rebuilt after this tag was pushed, so ``first_seen`` is when
    the rebuilt database first listed it, not when it appeared. ``gone``: when a listing first
    lacked it (deleted from the registry), None while listed."""

    repository: str
    tag: str
    digest: str | None
    first_seen: datetime
    rebuilt: bool = False
    gone: datetime | None = None


@dataclass(frozen=True)
class CycleRecord:
    id: int
    started: datetime
    finished: datetime | None
    revision: str
    outcome: str


@dataclass(frozen=True)
class PolicyChoice:
    """What one policy chose in a cycle (``tag`` None: nothing qualified, or ``error``).

    ``reason``: why the chooser chose as it did, whenever it said (the variant rule kept the
    current tag's variant, a lower tag kept the current one), a chosen tag's as well."""

    policy: str
    repository: str
    tag: str | None
    digest: str | None = None
    current: str | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ChoiceRecord:
    """A policy's choice, the same in every cycle from ``since`` until ``until`` (None: still)."""

    choice: PolicyChoice
    since: int
    until: int | None


@dataclass(frozen=True)
class PREventRecord:
    group: str
    number: int
    url: str
    event: PREvent
    versions: Mapping[str, str]
    at: datetime
    rebuilt: bool = False


@dataclass(frozen=True)
class MergeRecord:
    """A commit on the base branch after which these policies' fields hold these tags."""

    revision: str
    at: datetime  # the commit time
    seen: datetime  # when a cycle (or the rebuild) saw it
    versions: Mapping[str, tuple[str, ...]]
    rebuilt: bool = False


@dataclass(frozen=True)
class ClusterReport:
    cluster: str
    revision: str
    reported_at: datetime
    payload: Mapping[str, Any]


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class _Known:
    digest: str | None
    gone: int | None


class _Unusable(Exception):
    """The file cannot be used as our database; the reason goes into the file's new name."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(why)
        self.kind = kind


class StateStore:
    """The automator's durable state in ``directory/state.db``; the one writer.

    Opening checks the file (a SQLite database, ``PRAGMA integrity_check``, a schema version we
    know) and migrates it; a file that fails is moved aside as ``state.db.<why>-<time>`` with a
    warning and a fresh database is started, flagged :attr:`rebuild_pending` (a missing file is
    one too) until :meth:`rebuilt` is called. A lock file keeps a second writer out.
    """

    def __init__(
        self,
        directory: Path,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        now: Now = _utcnow,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.retention = retention
        self.now = now
        self._migrations = migrations
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.directory / f"{DB_NAME}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"--state-dir {self.directory}: {exc.strerror}; give a writable directory") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ConfigError(
                f"--state-dir {self.directory}: another automator process writes this state; give each its own"
            ) from None
        try:
            self._start()
        except BaseException:
            os.close(self._lock_fd)
            raise

    def _start(self) -> None:
        self.recovered: str | None = None  # why the database was started afresh this time
        self._known: dict[str, tuple[int, dict[str, _Known]]] = {}  # per repository: its id, its tags
        self._held: dict[str, PolicyChoice | None] | None = None  # per policy, its latest choice
        self._listed_at: dict[int, int] = {}  # per repository id, the last_listed written
        existed = self.path.exists()
        try:
            self._conn = self._open()
        except _Unusable as exc:
            self.recovered = f"{self.path} {exc}; moved aside as {self._move_aside(exc.kind).name}"
            log.warning(
                "state: %s. Starting a fresh database, rebuilt from the registry, the git history and the forge; "
                "first-seen times of tags already pushed are lost (marked rebuilt)",
                self.recovered,
            )
            try:
                self._conn = self._open()
            except _Unusable as again:
                raise ConfigError(f"--state-dir {self.directory}: cannot start a state database: {again}") from again
        if not existed:
            self.recovered = self.recovered or f"{self.path} did not exist"
            log.warning(
                "state: no database at %s; starting one, rebuilt from the registry, the git history and the forge "
                "(first-seen times of tags already pushed are when they are first listed now, marked rebuilt)",
                self.path,
            )

    # -- opening ----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._check_and_migrate(conn, fresh)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_and_migrate(self, conn: sqlite3.Connection, fresh: bool) -> None:
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if not fresh:
                problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
                if problems != ["ok"]:
                    raise _Unusable("corrupt", f"fails PRAGMA integrity_check ({'; '.join(problems)[:200]})")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise _Unusable("corrupt", "cannot be switched to WAL journaling")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
                # a full disk, a permission: the file may be fine, so it stays where it is
                raise ConfigError(f"--state-dir {self.directory}: cannot open {self.path}: {exc}") from exc
            raise _Unusable("corrupt", f"is not a SQLite database we can read ({exc})") from exc
        if version > len(self._migrations):
            raise _Unusable(
                "newer",
                f"has schema version {version}, newer than this automator's {len(self._migrations)} "
                "(written by a later release)",
            )
        for number, migration in enumerate(self._migrations[version:], start=version + 1):
            try:
                with self._tx(conn):
                    migration.run(conn)
                    conn.execute(f"PRAGMA user_version = {number}")
            except Exception as exc:
                raise _Unusable(
                    "migration-failed", f"could not be migrated to schema {number} ({migration.description}): {exc}"
                ) from exc
        if fresh:
            with self._tx(conn):
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('rebuild', 'pending')")

    def _move_aside(self, kind: str) -> Path:
        stamp = self.now().strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{DB_NAME}.{kind}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{DB_NAME}.{kind}-{stamp}.{n}")
        self.path.rename(target)
        for suffix in ("-wal", "-shm"):
            extra = self.path.with_name(DB_NAME + suffix)
            if extra.exists():
                if suffix == "-wal":
                    extra.rename(target.with_name(target.name + suffix))
                else:
                    extra.unlink()
        return target

    @contextlib.contextmanager
    def _tx(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        """A transaction; inside another one, a savepoint of it (so one cycle commits once)."""
        if conn.in_transaction:
            conn.execute("SAVEPOINT inner")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO inner")
                conn.execute("RELEASE inner")
                raise
            conn.execute("RELEASE inner")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            self._forget()
            raise
        conn.execute("COMMIT")

    def _forget(self) -> None:
        """Drop what is cached of the file (after a rollback, a prune)."""
        self._known.clear()
        self._listed_at.clear()
        self._held = None

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """Everything written inside commits together (or not at all)."""
        return self._tx(self._conn)

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def rebuild_pending(self) -> bool:
        """Whether this database was started afresh and not yet rebuilt (survives a restart)."""
        return self._conn.execute("SELECT 1 FROM meta WHERE key = 'rebuild'").fetchone() is not None

    def rebuilt(self) -> None:
        with self.transaction() as c:
            c.execute("DELETE FROM meta WHERE key = 'rebuild'")

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            os.close(self._lock_fd)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @staticmethod
    def reader(directory: Path) -> sqlite3.Connection:
        """A read-only connection for another process (``automator status``, a dashboard)."""
        conn = sqlite3.connect(f"file:{Path(directory) / DB_NAME}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    # -- tags -------------------------------------------------------------------------------

    def _known_tags(self, c: sqlite3.Connection, name: str, now: int) -> tuple[int, dict[str, _Known]]:
        """The repository's id and its tags, from the cache (filled from the file once per process)."""
        cached = self._known.get(name)
        if cached is not None:
            return cached
        c.execute(
            "INSERT INTO repositories (name, last_listed) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, now)
        )
        repo_id = int(c.execute("SELECT id FROM repositories WHERE name = ?", (name,)).fetchone()[0])
        rows = c.execute("SELECT tag, digest, gone FROM tags WHERE repository = ?", (repo_id,))
        cached = self._known[name] = (repo_id, {tag: _Known(digest, gone) for tag, digest, gone in rows})
        return cached

    def record_listing(
        self, repository: str, tags: Iterable[str], digests: Mapping[str, str] | None = None, *, rebuilt: bool = False
    ) -> int:
        """A complete listing of ``repository``: new tags get ``first_seen`` now, known ones keep
        theirs; tags missing from it are marked gone. Returns how many tags were new."""
        return self.record_listings({repository: tags}, {repository: digests or {}}, rebuilt=rebuilt)

    def record_listings(
        self,
        listings: Mapping[str, Iterable[str]],
        digests: Mapping[str, Mapping[str, str]] | None = None,
        *,
        rebuilt: bool = False,
    ) -> int:
        """:meth:`record_listing` for each repository, in one transaction; how many tags were new.

        Only what changed is written (new tags, tags gone or back, digests learnt) besides one
        ``last_listed`` per repository, so an idle cycle over 1,000 repositories costs little."""
        now = _ts(self.now())
        digests = digests or {}
        new: list[tuple[Any, ...]] = []
        back: list[tuple[Any, ...]] = []
        gone: list[tuple[Any, ...]] = []
        learnt: list[tuple[Any, ...]] = []
        try:
            with self.transaction() as c:
                ids = []
                for repository, tags in listings.items():
                    repo_id, known = self._known_tags(c, repository, now)
                    if now - self._listed_at.get(repo_id, 0) >= LISTED_RESOLUTION:
                        ids.append((now, repo_id))
                        self._listed_at[repo_id] = now
                    learn = digests.get(repository) or {}
                    listed = dict.fromkeys(tags)
                    for tag in listed:
                        held = known.get(tag)
                        if held is None:
                            new.append((repo_id, tag, learn.get(tag), now, int(rebuilt)))
                            known[tag] = _Known(learn.get(tag), None)
                        elif held.gone is not None:
                            back.append((repo_id, tag))
                            known[tag] = _Known(held.digest, None)
                    if len(known) > len(listed):
                        for tag, held in known.items():
                            if held.gone is None and tag not in listed:
                                gone.append((now, repo_id, tag))
                                known[tag] = _Known(held.digest, now)
                    for tag, digest in learn.items():
                        held = known.get(tag)
                        if held is not None and held.digest != digest:
                            learnt.append((digest, repo_id, tag))
                            known[tag] = _Known(digest, held.gone)
                c.executemany("UPDATE repositories SET last_listed = ? WHERE id = ?", ids)
                c.executemany(
                    "INSERT INTO tags (repository, tag, digest, first_seen, rebuilt) VALUES (?, ?, ?, ?, ?)", new
                )
                c.executemany("UPDATE tags SET gone = NULL WHERE repository = ? AND tag = ?", back)
                c.executemany("UPDATE tags SET gone = ? WHERE repository = ? AND tag = ?", gone)
                c.executemany("UPDATE tags SET digest = ? WHERE repository = ? AND tag = ?", learnt)
        except BaseException:
            self._forget()  # rolled back: what the cache says may not be in the file
            raise
        return len(new)

    def tags(self, repository: str) -> list[TagRecord]:
        rows = self._conn.execute(
            "SELECT t.tag, t.digest, t.first_seen, t.rebuilt, t.gone FROM tags t JOIN repositories r"
            " ON r.id = t.repository WHERE r.name = ? ORDER BY t.first_seen, t.tag",
            (repository,),
        )
        return [TagRecord(repository, tag, d, _when(fs), bool(rb), _dt(g)) for tag, d, fs, rb, g in rows]

    def first_seen(self, repository: str) -> dict[str, datetime]:
        """When each tag of ``repository`` still listed was first listed (the minAge clock)."""
        rows = self._conn.execute(
            "SELECT t.tag, t.first_seen FROM tags t JOIN repositories r ON r.id = t.repository"
            " WHERE r.name = ? AND t.gone IS NULL",
            (repository,),
        )
        return {tag: _when(fs) for tag, fs in rows}

    def proposed(self) -> dict[str, tuple[str, set[str]]]:
        """Per policy, its repository and every tag it chose other than the one its fields held
        (what a cycle proposed or committed), within the retention; with the versions of our
        pull requests' events. The rollback gate's "a version we proposed"."""
        out: dict[str, tuple[str, set[str]]] = {}
        rows = self._conn.execute(
            "SELECT policy, repository, tag FROM choices WHERE tag IS NOT NULL"
            " AND (current IS NULL OR tag != current) GROUP BY policy, tag ORDER BY MIN(id)"
        )
        for policy, repository, tag in rows:
            out.setdefault(policy, (repository, set()))[1].add(tag)
        return out

    def opened_since(self, since: datetime) -> int:
        """How many pull requests we opened after ``since`` (a rebuild's events aside:
        their times are the rebuild's). The ``maxOpenedPerHour`` count."""
        row = self._conn.execute(
            "SELECT COUNT(DISTINCT number) FROM pr_events WHERE event = 'opened' AND rebuilt = 0 AND at > ?",
            (_ts(since),),
        ).fetchone()
        return int(row[0])

    def record_held_back(self, held: Mapping[str, HeldTag]) -> None:
        """What the gates held back in the latest cycle, per policy (``minAge``, rollbacks),
        replacing the previous cycle's: one row of ``meta``, so ``automator status`` can say
        "1.2.0 waits until ..." without loading the policies."""
        doc = {
            policy: {"tag": h.tag, "gate": h.gate, "reason": h.reason, "until": _ts(h.until) if h.until else None}
            for policy, h in sorted(held.items())
        }
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('held_back', ?)", (json.dumps(doc, sort_keys=True),))

    def held_back(self) -> dict[str, HeldTag]:
        """Per policy, the tag its gates held back in the latest cycle recorded, and why."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'held_back'").fetchone()
        doc = json.loads(row[0]) if row is not None else {}
        from automator.policy.model import HeldTag  # noqa: PLC0415 - see the import at the top

        return {p: HeldTag(h["tag"], h["gate"], h["reason"], _dt(h["until"])) for p, h in doc.items()}

    # -- cycles and choices ---------------------------------------------------------------

    def begin_cycle(self, revision: str, started: datetime | None = None) -> int:
        with self.transaction() as c:
            when = _ts(started or self.now())
            cur = c.execute("INSERT INTO cycles (started, revision) VALUES (?, ?)", (when, revision))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def finish_cycle(self, cycle: int, outcome: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE cycles SET finished = ?, outcome = ? WHERE id = ?", (_ts(self.now()), outcome, cycle))

    def cycles(self, limit: int = 100) -> list[CycleRecord]:
        rows = self._conn.execute(
            "SELECT id, started, finished, revision, outcome FROM cycles ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [CycleRecord(i, _when(s), _dt(f), r, o) for i, s, f, r, o in rows][::-1]

    def record_choices(self, cycle: int, choices: Iterable[PolicyChoice]) -> None:
        """Each policy's choice in ``cycle``, written only when it differs from the policy's last
        one (a row holds until the policy's next), so idle cycles write nothing. A policy not
        scanned this cycle (removed, suspended) gets a row saying so."""
        held = self._held_choices()
        rows, now = [], {}
        for choice in choices:
            now[choice.policy] = choice
            if held.get(choice.policy) != choice:
                rows.append((*_choice_row(choice), 1, cycle))
        for policy, last in held.items():
            if policy not in now and last is not None:
                rows.append((policy, last.repository, None, None, None, None, None, 0, cycle))
        try:
            with self.transaction() as c:
                c.executemany(
                    "INSERT INTO choices (policy, repository, tag, digest, current, error, reason, scanned,"
                    " since_cycle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except BaseException:
            self._forget()
            raise
        held.update(now)
        for policy in held.keys() - now.keys():
            held[policy] = None

    def _held_choices(self) -> dict[str, PolicyChoice | None]:
        """Per policy, its latest choice (None: not scanned), from the file once per process."""
        if self._held is None:
            rows = self._conn.execute(
                "SELECT policy, repository, tag, digest, current, error, reason, scanned FROM choices"
                " WHERE id IN (SELECT MAX(id) FROM choices GROUP BY policy)"
            )
            self._held = {row[0]: PolicyChoice(*row[:7]) if row[7] else None for row in rows}
        return self._held

    def choices(self, cycle: int) -> list[PolicyChoice]:
        """Every policy's choice in ``cycle`` (the policies scanned in it), by policy name."""
        rows = self._conn.execute(
            "SELECT policy, repository, tag, digest, current, error, reason, scanned FROM choices AS c"
            " WHERE id = (SELECT MAX(id) FROM choices WHERE policy = c.policy AND since_cycle <= :cycle)"
            " ORDER BY policy",
            {"cycle": cycle},
        )
        return [PolicyChoice(*row[:7]) for row in rows if row[7]]

    def choice_history(self, policy: str) -> list[ChoiceRecord]:
        """The policy's choices in order, each with the cycles it held for."""
        rows = self._conn.execute(
            "SELECT policy, repository, tag, digest, current, error, reason, scanned, since_cycle,"
            " LEAD(since_cycle) OVER (ORDER BY id) FROM choices WHERE policy = ? ORDER BY id",
            (policy,),
        )
        return [ChoiceRecord(PolicyChoice(*row[:7]), row[8], row[9] - 1 if row[9] else None) for row in rows if row[7]]

    # -- pull requests ----------------------------------------------------------------------

    def record_pr_event(
        self,
        group: str,
        number: int,
        url: str,
        event: PREvent,
        versions: Mapping[str, str],
        *,
        rebuilt: bool = False,
    ) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO pr_events (policy_group, number, url, event, versions, at, rebuilt)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (group, number, url, event, json.dumps(dict(versions), sort_keys=True), _ts(self.now()), int(rebuilt)),
            )

    def pr_events(self, number: int | None = None) -> list[PREventRecord]:
        sql = "SELECT policy_group, number, url, event, versions, at, rebuilt FROM pr_events"
        rows = self._conn.execute(
            sql + (" WHERE number = ? ORDER BY id" if number is not None else " ORDER BY id"),
            (number,) if number is not None else (),
        )
        return [PREventRecord(g, n, u, e, json.loads(v), _when(at), bool(rb)) for g, n, u, e, v, at, rb in rows]

    def latest_pr_events(self) -> dict[int, PREventRecord]:
        """Each pull request's latest event, by number."""
        rows = self._conn.execute(
            "SELECT policy_group, number, url, event, versions, at, rebuilt FROM pr_events"
            " WHERE id IN (SELECT MAX(id) FROM pr_events GROUP BY number)"
        )
        return {n: PREventRecord(g, n, u, e, json.loads(v), _when(at), bool(rb)) for g, n, u, e, v, at, rb in rows}

    # -- the base branch ------------------------------------------------------------------------

    def base_versions(self) -> dict[str, tuple[str, ...]]:
        """What each policy's fields hold on the base branch as of the last merge recorded."""
        return {p: tuple(json.loads(t)) for p, t in self._conn.execute("SELECT policy, tags FROM base_versions")}

    def record_merge(
        self, revision: str, at: datetime, versions: Mapping[str, Sequence[str]], *, rebuilt: bool = False
    ) -> None:
        """After ``revision`` (committed ``at``) these policies' fields hold these tags."""
        doc = {p: sorted(set(tags)) for p, tags in versions.items()}
        with self.transaction() as c:
            c.execute(
                "INSERT INTO merges (revision, at, seen, versions, rebuilt) VALUES (?, ?, ?, ?, ?)",
                (revision, _ts(at), _ts(self.now()), json.dumps(doc, sort_keys=True), int(rebuilt)),
            )
            c.executemany(
                "INSERT OR REPLACE INTO base_versions (policy, tags, revision) VALUES (?, ?, ?)",
                [(p, json.dumps(tags), revision) for p, tags in doc.items()],
            )

    def merges(self, limit: int = 1000) -> list[MergeRecord]:
        rows = self._conn.execute(
            "SELECT revision, at, seen, versions, rebuilt FROM merges ORDER BY id DESC LIMIT ?", (limit,)
        )
        out = [
            MergeRecord(r, _when(at), _when(seen), {p: tuple(t) for p, t in json.loads(v).items()}, bool(rb))
            for r, at, seen, v, rb in rows
        ]
        return out[::-1]

    # -- clusters -----------------------------------------------------------------------------

    def record_cluster_report(self, cluster: str, revision: str, payload: Mapping[str, Any]) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO cluster_reports (cluster, revision, reported_at, payload) VALUES (?, ?, ?, ?)",
                (cluster, revision, _ts(self.now()), json.dumps(dict(payload), sort_keys=True)),
            )

    def cluster_reports(self, cluster: str | None = None, limit: int = 100) -> list[ClusterReport]:
        where, args = ("WHERE cluster = ?", (cluster, limit)) if cluster is not None else ("", (limit,))
        rows = self._conn.execute(
            f"SELECT cluster, revision, reported_at, payload FROM cluster_reports {where} ORDER BY id DESC LIMIT ?",
            args,
        )
        return [ClusterReport(c, r, _when(at), json.loads(p)) for c, r, at, p in rows][::-1]

    # -- retention ----------------------------------------------------------------------------

    def prune(self) -> int:
        """Forget what is older than the retention: cycles and their choices, pull-request events
        (each PR's latest kept), merges, cluster reports (each cluster's latest kept), tags gone
        from the registry and repositories no policy listed since. Returns the rows deleted."""
        cutoff = _ts(self.now() - self.retention)
        deleted = 0
        with self.transaction() as c:
            for sql in (
                # the newest cycle stays, whatever its age: the next cycle's choices extend from it
                "DELETE FROM cycles WHERE started < :cutoff AND id < (SELECT MAX(id) FROM cycles)",
                # a choice made before the oldest cycle kept goes once a later one held at that cycle
                "DELETE FROM choices WHERE since_cycle < (SELECT MIN(id) FROM cycles) AND EXISTS (SELECT 1 FROM"
                " choices AS later WHERE later.policy = choices.policy AND later.id > choices.id"
                " AND later.since_cycle <= (SELECT MIN(id) FROM cycles))",
                "DELETE FROM pr_events WHERE at < :cutoff AND EXISTS"
                " (SELECT 1 FROM pr_events AS later WHERE later.number = pr_events.number AND later.id > pr_events.id)",
                "DELETE FROM merges WHERE seen < :cutoff",
                "DELETE FROM cluster_reports WHERE reported_at < :cutoff AND EXISTS (SELECT 1 FROM cluster_reports"
                " AS later WHERE later.cluster = cluster_reports.cluster AND later.id > cluster_reports.id)",
                "DELETE FROM tags WHERE gone < :cutoff",
                "DELETE FROM repositories WHERE last_listed < :cutoff",
            ):
                deleted += c.execute(sql, {"cutoff": cutoff}).rowcount
        if deleted:
            self._forget()
        return deleted

    def size(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        return sum(p.stat().st_size for p in (self.path, self.path.with_name(DB_NAME + "-wal")) if p.exists())

    def checkpoint(self) -> None:
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- queries for `automator status` and `automator history` -------------------------------

    @classmethod
    def read_only(cls, directory: Path) -> StateStore:
        """The store's queries on a read-only connection, beside the process that writes it (no
        lock taken, nothing written, nothing migrated). A missing database is a ConfigError."""
        path = Path(directory) / DB_NAME
        if not path.is_file():
            raise ConfigError(
                f"--state-dir {directory}: no {DB_NAME} there; give the directory `automator run --state-dir` writes"
            )
        store = cls.__new__(cls)
        store.directory, store.path, store.now = Path(directory), path, _utcnow
        store.retention = DEFAULT_RETENTION
        store._known, store._held, store._listed_at = {}, None, {}
        store.recovered = None
        try:
            store._conn = cls.reader(Path(directory))
            store._conn.execute("SELECT 1 FROM meta LIMIT 1")
        except sqlite3.Error as exc:
            raise ConfigError(f"--state-dir {directory}: cannot read {DB_NAME}: {exc}") from exc
        store._lock_fd = os.open(os.devnull, os.O_RDONLY)  # close() closes one
        return store

    def latest_choices(self) -> dict[str, tuple[PolicyChoice | None, datetime]]:
        """Per policy, its latest choice (None: the last cycles did not scan it) and the start of
        the cycle it was first made in."""
        rows = self._conn.execute(
            "SELECT c.policy, c.repository, c.tag, c.digest, c.current, c.error, c.reason, c.scanned, y.started"
            " FROM choices AS c LEFT JOIN cycles AS y ON y.id = c.since_cycle"
            " WHERE c.id IN (SELECT MAX(id) FROM choices GROUP BY policy) ORDER BY c.policy"
        )
        return {row[0]: (PolicyChoice(*row[:7]) if row[7] else None, _when(row[8] or 0)) for row in rows}

    def all_tags(self) -> dict[str, list[TagRecord]]:
        """Every tag of every repository, by repository (oldest first)."""
        out: dict[str, list[TagRecord]] = {}
        rows = self._conn.execute(
            "SELECT r.name, t.tag, t.digest, t.first_seen, t.rebuilt, t.gone FROM tags t JOIN repositories r"
            " ON r.id = t.repository ORDER BY r.name, t.first_seen, t.tag"
        )
        for name, tag, d, fs, rb, g in rows:
            out.setdefault(name, []).append(TagRecord(name, tag, d, _when(fs), bool(rb), _dt(g)))
        return out

    def record_announcements(self, items: Iterable[tuple[str, str, str]]) -> None:
        """Tags a registry webhook announced: (repository, tag, the webhook's source), each
        kept with its first announcement and its time, in one row of ``meta`` (at most
        ``MAX_ANNOUNCEMENTS``, the oldest dropped first), for ``automator history``."""
        known = self._announced()
        now = _ts(self.now())
        added = False
        for repository, tag, source in items:
            key = f"{repository}\t{tag}"
            if key not in known:
                known[key] = [source, now]
                added = True
        if not added:
            return
        if len(known) > MAX_ANNOUNCEMENTS:
            known = dict(sorted(known.items(), key=lambda kv: kv[1][1])[-MAX_ANNOUNCEMENTS:])
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('announced', ?)", (json.dumps(known, sort_keys=True),))

    def _announced(self) -> dict[str, list[Any]]:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'announced'").fetchone()
        found: dict[str, list[Any]] = json.loads(row[0]) if row is not None else {}
        return found

    def announcements(self) -> dict[tuple[str, str], tuple[str, datetime]]:
        """(repository, tag) -> (the webhook that first announced it, when)."""
        out = {}
        for key, (source, at) in self._announced().items():
            repository, _, tag = key.partition("\t")
            out[(repository, tag)] = (str(source), _when(int(at)))
        return out

    def latest_cluster_reports(self) -> dict[str, ClusterReport]:
        """Each cluster's latest report."""
        rows = self._conn.execute(
            "SELECT cluster, revision, reported_at, payload FROM cluster_reports"
            " WHERE id IN (SELECT MAX(id) FROM cluster_reports GROUP BY cluster) ORDER BY cluster"
        )
        return {c: ClusterReport(c, r, _when(at), json.loads(p)) for c, r, at, p in rows}


def _choice_row(choice: PolicyChoice) -> tuple[Any, ...]:
    return (choice.policy, choice.repository, choice.tag, choice.digest, choice.current, choice.error, choice.reason)
