"""Schema creation, versioning, the migration path and the append-only triggers, on real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import peewee as pw
import pytest

from bench.registry_factory import build_registry
from lifecycle.errors import RegistryVersionError
from store import migrations
from store.anchors import load_anchors
from store.audit import run_audit
from store.db import connect
from store.models import ALL_MODELS, SCHEMA_VERSION


@pytest.fixture
def db(tmp_path: Path) -> Iterator[pw.SqliteDatabase]:
    d = connect(tmp_path / "reg.db")
    yield d
    d.close()


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_empty_database_gets_tables_version_and_triggers(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    every = list(range(1, SCHEMA_VERSION + 1))
    assert migrations.ensure_schema(db, now_ms=123) == every
    with _raw(tmp_path / "reg.db") as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {m._meta.table_name for m in ALL_MODELS} <= tables
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("SELECT version, applied_ms FROM schema_version").fetchall() == [(v, 123) for v in every]
        triggers = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert triggers == {
        "transition_append_only_update",
        "transition_append_only_delete",
        "fill_append_only_update",
        "fill_append_only_delete",
        "unowned_fill_append_only_update",
        "unowned_fill_append_only_delete",
    }


def test_second_run_is_a_no_op(db: pw.SqliteDatabase) -> None:
    migrations.ensure_schema(db)
    assert migrations.ensure_schema(db) == []
    assert migrations.current_version(db) == SCHEMA_VERSION


def _seed_rows(path: Path) -> None:
    with _raw(path) as c:
        c.execute(
            "INSERT INTO position (uid, symbol_key, venue_symbol, side, state, origin, target_qty_units,"
            " remaining_qty_units, created_ms, updated_ms) VALUES ('p1','PF_XBTUSD','PF_XBTUSD','long','OPEN',"
            "'imported',1,1,0,0)"
        )
        c.execute(
            "INSERT INTO transition (position_id, event, source, target, cause, at_ms, prev_hash, row_hash)"
            " VALUES (1,'import',NULL,'OPEN','t',0,'0','1')"
        )
        c.execute(
            "INSERT INTO fill (fill_id, position_id, side, is_entry, qty_units, price, fill_ms, recorded_ms,"
            " prev_hash, row_hash) VALUES ('f1',1,'buy',1,1,'1',0,0,'0','1')"
        )
        c.execute(
            "INSERT INTO unowned_fill (fill_id, symbol_key, side, qty, price, fill_ms, reason, recorded_ms)"
            " VALUES ('f2','PF_XBTUSD','sell','1','1',0,'t',0)"
        )


SEEDED = {"transition": ("row_hash", "1"), "fill": ("row_hash", "1"), "unowned_fill": ("reason", "t")}
"""Per append-only table: a column `_seed_rows` fills and its value there."""


def test_every_append_only_table_is_seeded() -> None:
    assert set(SEEDED) == set(migrations.APPEND_ONLY_TABLES)


@pytest.mark.parametrize("table", migrations.APPEND_ONLY_TABLES)
@pytest.mark.parametrize("sql", ["UPDATE {t} SET {c} = 'x'", "DELETE FROM {t}"], ids=["update", "delete"])
def test_append_only_tables_refuse_update_and_delete(
    db: pw.SqliteDatabase, tmp_path: Path, table: str, sql: str
) -> None:
    migrations.ensure_schema(db)
    _seed_rows(tmp_path / "reg.db")
    column, value = SEEDED[table]
    with _raw(tmp_path / "reg.db") as c:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            c.execute(sql.format(t=table, c=column))
        assert c.execute(f"SELECT count(*), max({column}) FROM {table}").fetchone() == (1, value)
        # Dropping the trigger (a bug or an attacker) is what lets the write through: the audit must catch it.
        upd, dele = migrations.trigger_names(table)
        c.execute(f"DROP TRIGGER {upd if sql.startswith('UPDATE') else dele}")
        c.execute(sql.format(t=table, c=column))


def test_newer_database_is_refused(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    migrations.ensure_schema(db)
    with _raw(tmp_path / "reg.db") as c:
        c.execute("INSERT INTO schema_version (version, applied_ms) VALUES (?, 0)", (SCHEMA_VERSION + 1,))
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RegistryVersionError, match=f"schema version {SCHEMA_VERSION + 1}.*only knows up to"):
        migrations.ensure_schema(db)


def test_disagreeing_versions_are_refused(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    migrations.ensure_schema(db)
    with _raw(tmp_path / "reg.db") as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RegistryVersionError, match="disagree"):
        migrations.ensure_schema(db)


def test_foreign_database_is_refused(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    with _raw(tmp_path / "reg.db") as c:
        c.execute("CREATE TABLE notes (x TEXT)")
    with pytest.raises(RegistryVersionError, match="no schema version recorded"):
        migrations.ensure_schema(db)


NEXT = SCHEMA_VERSION + 1


def _next_index(db: pw.Database) -> None:
    db.execute_sql('CREATE INDEX "fill_fill_ms" ON "fill" ("fill_ms")')  # type: ignore[no-untyped-call]


def _next_broken(db: pw.Database) -> None:
    db.execute_sql('CREATE INDEX "fill_fill_ms" ON "fill" ("fill_ms")')  # type: ignore[no-untyped-call]
    raise RuntimeError("disk on fire")


def test_migration_path_applies_pending_steps_in_order(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    migrations.ensure_schema(db)  # an existing registry at the current version
    steps = {**migrations.MIGRATIONS, NEXT: _next_index}
    assert migrations.ensure_schema(db, target=NEXT, migrations=steps, now_ms=5) == [NEXT]
    with _raw(tmp_path / "reg.db") as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == NEXT
        versions = c.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, NEXT + 1)]
        assert c.execute("SELECT 1 FROM sqlite_master WHERE name='fill_fill_ms'").fetchone() == (1,)
    # and the current code now refuses the newer database
    with pytest.raises(RegistryVersionError):
        migrations.ensure_schema(db)


def test_fresh_database_runs_every_step(db: pw.SqliteDatabase) -> None:
    steps = {**migrations.MIGRATIONS, NEXT: _next_index}
    assert migrations.ensure_schema(db, target=NEXT, migrations=steps) == list(range(1, NEXT + 1))


def test_failed_migration_leaves_previous_version(db: pw.SqliteDatabase, tmp_path: Path) -> None:
    migrations.ensure_schema(db)
    with pytest.raises(RuntimeError, match="disk on fire"):
        migrations.ensure_schema(db, target=NEXT, migrations={**migrations.MIGRATIONS, NEXT: _next_broken})
    assert migrations.current_version(db) == SCHEMA_VERSION
    with _raw(tmp_path / "reg.db") as c:
        assert c.execute("SELECT 1 FROM sqlite_master WHERE name='fill_fill_ms'").fetchone() is None


def test_missing_step_is_a_code_bug(db: pw.SqliteDatabase) -> None:
    with pytest.raises(RegistryVersionError, match=rf"no migration registered for schema version\(s\) \[{NEXT + 1}\]"):
        migrations.ensure_schema(db, target=NEXT + 1, migrations={**migrations.MIGRATIONS, NEXT: _next_index})


def test_version_1_registry_with_history_upgrades_to_2_and_audits_clean(tmp_path: Path) -> None:
    """A registry written by the first release (schema 1, no chain_anchor) keeps every row through the upgrade."""
    path = tmp_path / "v1.db"
    old = connect(path)
    migrations.ensure_schema(old, target=1, migrations={1: migrations.MIGRATIONS[1]})
    old.close()
    small = tmp_path / "history.db"
    build_registry(small, positions=20, transitions_per_position=4, fills_per_position=4, seed=3)
    with _raw(path) as c:
        c.execute("ATTACH DATABASE ? AS src", (str(small),))
        for table in ("position", '"order"', "fill", "transition"):
            c.execute(f"INSERT INTO main.{table} SELECT * FROM src.{table}")
        c.execute("DETACH DATABASE src")
        before = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("position", "fill", "transition")}
        assert c.execute("SELECT 1 FROM sqlite_master WHERE name = 'chain_anchor'").fetchone() is None
    db = connect(path)
    try:
        assert migrations.ensure_schema(db, now_ms=9) == list(range(2, SCHEMA_VERSION + 1))
        assert migrations.current_version(db) == SCHEMA_VERSION
        report = run_audit(db)
        assert report.ok, report.summary()
        assert load_anchors(db) == {}
    finally:
        db.close()
    with _raw(path) as c:
        after = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("position", "fill", "transition")}
    assert after == before and before["fill"] > 0
