"""The state database: schema migrations, retention, files we cannot use, readers beside the writer."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.errors import ConfigError
from automator.state import DB_NAME, PolicyChoice, StateStore
from automator.state.schema import MIGRATIONS, Migration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeNow:
    def __init__(self, when: datetime = T0) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when

    def advance(self, **kw: float) -> None:
        self.when += timedelta(**kw)


def aside(tmp_path: Path, kind: str) -> list[Path]:
    return sorted(p for p in tmp_path.iterdir() if p.name.startswith(f"{DB_NAME}.{kind}-") and "-wal" not in p.name)


def test_a_fresh_database_is_flagged_for_rebuild_until_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="automator.state"), StateStore(tmp_path) as store:
        assert store.rebuild_pending
        assert store.schema_version == len(MIGRATIONS)
    assert f"no database at {tmp_path / DB_NAME}" in caplog.text
    with StateStore(tmp_path) as store:  # a crash before the rebuild: still pending after the restart
        assert store.rebuild_pending
        store.rebuilt()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="automator.state"), StateStore(tmp_path) as store:
        assert not store.rebuild_pending
        assert store.recovered is None
    assert caplog.text == ""


def test_first_seen_is_kept_across_a_restart(tmp_path: Path) -> None:
    now = FakeNow()
    with StateStore(tmp_path, now=now) as store:
        assert store.record_listing("r.io/app", ["1.0.0", "1.1.0"]) == 2
    now.advance(hours=5)
    with StateStore(tmp_path, now=now) as store:
        assert store.record_listing("r.io/app", ["1.0.0", "1.1.0", "1.2.0"], {"1.1.0": "sha256:aa"}) == 1
        seen = {t.tag: (t.first_seen, t.digest, t.gone) for t in store.tags("r.io/app")}
    assert seen == {
        "1.0.0": (T0, None, None),
        "1.1.0": (T0, "sha256:aa", None),
        "1.2.0": (T0 + timedelta(hours=5), None, None),
    }


def test_a_tag_missing_from_a_listing_is_marked_gone_and_back_when_listed_again(tmp_path: Path) -> None:
    now = FakeNow()
    with StateStore(tmp_path, now=now) as store:
        store.record_listing("r.io/app", ["1", "2"])
        now.advance(minutes=5)
        store.record_listing("r.io/app", ["2"])
        assert {t.tag: t.gone for t in store.tags("r.io/app")} == {"1": now.when, "2": None}
        now.advance(minutes=5)
        store.record_listing("r.io/app", ["1", "2"])
        assert {t.tag: (t.first_seen, t.gone) for t in store.tags("r.io/app")} == {"1": (T0, None), "2": (T0, None)}


def test_choices_are_kept_per_cycle_and_an_unchanged_one_costs_no_row(tmp_path: Path) -> None:
    a1 = PolicyChoice("a", "r.io/a", "1.0", None, "0.9")
    b1 = PolicyChoice("b", "r.io/b", None, None, "2.0", "registry down")
    a2 = PolicyChoice("a", "r.io/a", "1.1", "sha256:bb", "0.9")
    with StateStore(tmp_path) as store:
        cycles = []
        for choices in ([a1, b1], [a1, b1], [a2, b1]):
            cycles.append(store.begin_cycle("rev"))
            store.record_choices(cycles[-1], choices)
            store.finish_cycle(cycles[-1], "ok")
        assert store.choices(cycles[0]) == store.choices(cycles[1]) == [a1, b1]
        assert store.choices(cycles[2]) == [a2, b1]
        assert [(h.choice, h.since, h.until) for h in store.choice_history("a")] == [
            (a1, cycles[0], cycles[1]),
            (a2, cycles[2], None),
        ]
        assert len(store.choice_history("b")) == 1
        rows = store._conn.execute("SELECT COUNT(*) FROM choices").fetchone()[0]
        assert rows == 3  # the cycle that changed nothing wrote no row
    with StateStore(tmp_path) as store:  # a restart: the next cycle compares against the file
        later = store.begin_cycle("rev")
        store.record_choices(later, [a2])  # b is no longer scanned (removed, suspended)
        assert store.choices(later) == [a2]
        assert store.choices(cycles[2]) == [a2, b1]
        assert [(h.since, h.until) for h in store.choice_history("b")] == [(cycles[0], later - 1)]
        assert store._conn.execute("SELECT COUNT(*) FROM choices").fetchone()[0] == 4
        assert [c.outcome for c in store.cycles()] == ["ok", "ok", "ok", "running"]


def test_migrations_bring_an_older_schema_up_to_date_keeping_its_rows(tmp_path: Path) -> None:
    with StateStore(tmp_path, migrations=MIGRATIONS) as store:
        store.record_listing("r.io/app", ["1.0.0"])
        store.rebuilt()
        assert store.schema_version == len(MIGRATIONS)
    later = Migration("a note per tag", "ALTER TABLE tags ADD COLUMN note TEXT")
    with StateStore(tmp_path, migrations=(*MIGRATIONS, later)) as store:
        assert store.schema_version == len(MIGRATIONS) + 1
        assert store.recovered is None and not store.rebuild_pending
        assert [t.tag for t in store.tags("r.io/app")] == ["1.0.0"]
        assert "note" in [row[1] for row in store._conn.execute("PRAGMA table_info(tags)")]


def test_a_version_1_database_gains_the_choices_reason_keeping_its_rows(tmp_path: Path) -> None:
    """Schema 2: a choice's reason apart from its error, so a chosen tag can say why (the variant
    rule) without reading as a failure; the rows a version-1 database kept stay as they were."""
    chose = PolicyChoice("a", "r.io/a", "1.0", None, "0.9")
    failed = PolicyChoice("b", "r.io/b", None, None, "2.0", "registry down")
    with StateStore(tmp_path, migrations=MIGRATIONS[:1]) as store:  # as release 1 left it
        store.rebuilt()
        first = store.begin_cycle("rev")
        store._conn.executemany(
            "INSERT INTO choices (policy, repository, tag, digest, current, error, since_cycle)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                ("a", "r.io/a", "1.0", None, "0.9", None, first),
                ("b", "r.io/b", None, None, "2.0", "registry down", first),
            ],
        )
        assert store.schema_version == 1
    with StateStore(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS) >= 2
        assert store.recovered is None and not store.rebuild_pending
        assert store.choices(first) == [chose, failed]
        kept = PolicyChoice("a", "r.io/a", "1.0", None, "1.0", reason="variant rule: kept -alpine")
        second = store.begin_cycle("rev")
        store.record_choices(second, [kept, failed])
        assert store.choices(second) == [kept, failed]
        assert store.latest_choices()["a"][0] == kept
        assert [h.choice for h in store.choice_history("a")] == [chose, kept]
    with StateStore.read_only(tmp_path) as reader:  # `automator status` reads it back
        assert reader.latest_choices()["a"][0] == kept


def test_a_failing_migration_moves_the_file_aside_and_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with StateStore(tmp_path) as store:
        store.record_listing("r.io/app", ["1.0.0", "1.1.0"], {"1.0.0": "sha256:aa", "1.1.0": "sha256:aa"})
        store.rebuilt()
    unique = Migration("one tag per digest", "CREATE UNIQUE INDEX tags_digest ON tags (digest)")
    with caplog.at_level(logging.WARNING, logger="automator.state"):
        store = StateStore(tmp_path, migrations=(*MIGRATIONS, unique))
    with store:
        assert store.schema_version == len(MIGRATIONS) + 1
        assert store.rebuild_pending
        assert store.tags("r.io/app") == []
    [moved] = aside(tmp_path, "migration-failed")
    assert f"could not be migrated to schema {len(MIGRATIONS) + 1} (one tag per digest)" in caplog.text
    assert moved.name in caplog.text
    with sqlite3.connect(moved) as old:  # the old rows are still there, for whoever wants them
        assert old.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 2


def test_garbage_is_moved_aside_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / DB_NAME).write_bytes(b"\x00garbage, not sqlite" * 200)
    with caplog.at_level(logging.WARNING, logger="automator.state"), StateStore(tmp_path) as store:
        assert store.rebuild_pending
        store.record_listing("r.io/app", ["1"])
    [moved] = aside(tmp_path, "corrupt")
    assert moved.read_bytes().startswith(b"\x00garbage")
    assert f"{tmp_path / DB_NAME} is not a SQLite database we can read" in caplog.text
    assert "first-seen times of tags already pushed are lost" in caplog.text


def test_a_damaged_page_fails_the_integrity_check_and_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with StateStore(tmp_path) as store:
        store.record_listing("r.io/app", [f"1.{i}.0" for i in range(2000)])
        store.rebuilt()
        store.checkpoint()
    data = bytearray((tmp_path / DB_NAME).read_bytes())
    page = 4096
    assert len(data) > 8 * page
    data[5 * page + 100 : 6 * page] = b"\xff" * (page - 100)  # a b-tree page of the tags, scribbled on
    (tmp_path / DB_NAME).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="automator.state"), StateStore(tmp_path) as store:
        assert store.rebuild_pending
        assert store.tags("r.io/app") == []
    assert aside(tmp_path, "corrupt")
    assert "integrity_check" in caplog.text or "not a SQLite database we can read" in caplog.text


def test_a_newer_schema_is_left_for_the_newer_release(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with StateStore(tmp_path) as store:
        store.rebuilt()
        store._conn.execute("PRAGMA user_version = 99")
    with caplog.at_level(logging.WARNING, logger="automator.state"), StateStore(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.rebuild_pending
    [moved] = aside(tmp_path, "newer")
    assert f"schema version 99, newer than this automator's {len(MIGRATIONS)}" in caplog.text
    with sqlite3.connect(moved) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 99


def test_retention_forgets_old_cycles_events_and_gone_tags_but_keeps_listed_tags(tmp_path: Path) -> None:
    now = FakeNow()
    with StateStore(tmp_path, now=now, retention=timedelta(days=30)) as store:
        old = store.begin_cycle("r1")
        store.record_choices(old, [PolicyChoice("a", "r.io/a", "1"), PolicyChoice("b", "r.io/b", "7")])
        store.record_listing("r.io/a", ["1", "0"])
        store.record_listing("r.io/old", ["9"])
        store.record_pr_event("a", 1, "u1", "opened", {"a": "r.io/a:1"})
        store.record_pr_event("a", 1, "u1", "merged", {"a": "r.io/a:1"})
        store.record_merge("r1", now.when, {"a": ["1"]})
        store.record_cluster_report("prod", "r1", {"ok": True})
        store.record_cluster_report("prod", "r1", {"ok": True, "n": 2})
        now.advance(days=1)
        store.record_listing("r.io/a", ["1"])  # 0 is gone
        now.advance(days=40)
        new = store.begin_cycle("r2")
        store.record_choices(new, [PolicyChoice("a", "r.io/a", "2"), PolicyChoice("b", "r.io/b", "7")])
        store.record_listing("r.io/a", ["1", "2"])
        assert store.prune() > 0
        assert [c.revision for c in store.cycles()] == ["r2"]
        assert [h.choice.tag for h in store.choice_history("a")] == ["2"]
        # b chose 7 before the retention and has not changed since: that choice still holds
        assert store.choices(new) == [PolicyChoice("a", "r.io/a", "2"), PolicyChoice("b", "r.io/b", "7")]
        assert [t.tag for t in store.tags("r.io/a")] == ["1", "2"]  # 1 is old, but still listed: kept
        assert store.tags("r.io/old") == []  # no policy listed it for longer than the retention
        assert [e.event for e in store.pr_events()] == ["merged"]  # each PR's latest event stays
        assert store.merges() == []
        assert store.base_versions() == {"a": ("1",)}  # what the next cycle compares against
        assert [r.payload for r in store.cluster_reports("prod")] == [{"ok": True, "n": 2}]


def test_a_reader_reads_the_last_commit_while_the_writer_writes(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        store.begin_cycle("r1")
        reader = StateStore.reader(tmp_path)
        try:
            with store.transaction() as c:
                c.execute("INSERT INTO cycles (started, revision) VALUES (0, 'r2')")
                # mid-write: the reader is not blocked and sees the last committed state
                assert reader.execute("SELECT revision FROM cycles ORDER BY id").fetchall() == [("r1",)]
            assert reader.execute("SELECT revision FROM cycles ORDER BY id").fetchall() == [("r1",), ("r2",)]
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader.execute("DELETE FROM cycles")
        finally:
            reader.close()


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    with StateStore(tmp_path), pytest.raises(ConfigError, match="another automator process writes this state"):
        StateStore(tmp_path)
