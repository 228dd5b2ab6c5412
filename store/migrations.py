"""Schema creation and migrations for the registry database.

The version is recorded twice, in the `schema_version` table and in `PRAGMA user_version`, so that a health
check can read it without the models and a disagreement between the two is itself a finding. Migrations run
in order, each in its own transaction together with its version record: a crash mid-way leaves the database at
the last completed version, never in between.

Version 1 creates the tables of `store.models` and the triggers that make the transition log and the fill
ledger append-only. The triggers are a second line of defence behind the hash chains: a bug that tries to
rewrite history fails loudly at the write, instead of being found by the next audit.

Version 2 adds `chain_anchor`, where each clean audit records how far it verified the two chains.

Version 3 adds `entry_pause`, the operator's /pause and /resume of new entries (docs/telegram.md).

Version 4 adds `chain_seal`, which records the key that keys the chains and signs the anchors (`store.keys`).
Existing rows are not rewritten: a legacy registry is sealed at the daemon's first keyed start with the boundary
where its chains end then (rows before it stay sha256, rows after it are keyed).

Version 5 adds `account_charge` and `account_log_cursor`: the fees and funding read from the venue's account log,
attributed to positions, and how far the log has been read (docs/money.md).

Version 6 adds `entry_decision`: the price each strategy entry was decided at, which a market entry's slippage is
measured from (`monitor_trade_execution`). Positions entered before it have no row; nothing is back-filled.

Version 7 adds `unowned_fill`, append-only: the fills no position can own, recorded and reported once when the
fill door first meets them (docs/operations.md). Nothing is back-filled: a stray of an older run is recorded when
its fill is next read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

import peewee as pw

from lifecycle.errors import RegistryVersionError
from store.models import (
    SCHEMA_VERSION,
    V1_MODELS,
    AccountCharge,
    AccountLogCursor,
    ChainAnchor,
    ChainSeal,
    EntryDecision,
    EntryPause,
    UnownedFill,
)

Migration = Callable[[pw.Database], None]

V1_APPEND_ONLY_TABLES: tuple[str, ...] = ("transition", "fill")
APPEND_ONLY_TABLES: tuple[str, ...] = (*V1_APPEND_ONLY_TABLES, "unowned_fill")
"""Every append-only table (the schema drift check expects both triggers on each)."""


def trigger_names(table: str) -> tuple[str, str]:
    return f"{table}_append_only_update", f"{table}_append_only_delete"


def _create_append_only_triggers(db: pw.Database, tables: tuple[str, ...]) -> None:
    for table in tables:
        upd, dele = trigger_names(table)
        _sql(
            db,
            f'CREATE TRIGGER IF NOT EXISTS "{upd}" BEFORE UPDATE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'append-only: {table} rows are never updated'); END",
        )
        _sql(
            db,
            f'CREATE TRIGGER IF NOT EXISTS "{dele}" BEFORE DELETE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, 'append-only: {table} rows are never deleted'); END",
        )


def _v1_create(db: pw.Database) -> None:
    # bind_ctx: migrations must not depend on (or disturb) whatever database the models are bound to globally
    with db.bind_ctx(list(V1_MODELS)):
        db.create_tables(list(V1_MODELS), safe=False)
    _create_append_only_triggers(db, V1_APPEND_ONLY_TABLES)


def _v2_chain_anchor(db: pw.Database) -> None:
    with db.bind_ctx([ChainAnchor]):
        db.create_tables([ChainAnchor], safe=False)


def _v3_entry_pause(db: pw.Database) -> None:
    with db.bind_ctx([EntryPause]):
        db.create_tables([EntryPause], safe=False)


def _v4_chain_seal(db: pw.Database) -> None:
    with db.bind_ctx([ChainSeal]):
        db.create_tables([ChainSeal], safe=False)


def _v5_account_charges(db: pw.Database) -> None:
    with db.bind_ctx([AccountCharge, AccountLogCursor]):
        db.create_tables([AccountCharge, AccountLogCursor], safe=False)


def _v6_entry_decision(db: pw.Database) -> None:
    with db.bind_ctx([EntryDecision]):
        db.create_tables([EntryDecision], safe=False)


def _v7_unowned_fill(db: pw.Database) -> None:
    with db.bind_ctx([UnownedFill]):
        db.create_tables([UnownedFill], safe=False)
    _create_append_only_triggers(db, ("unowned_fill",))


CHAIN_ANCHOR_VERSION = 2  # the first schema with the chain_anchor table (`_v2_chain_anchor`)

MIGRATIONS: dict[int, Migration] = {
    1: _v1_create,
    CHAIN_ANCHOR_VERSION: _v2_chain_anchor,
    3: _v3_entry_pause,
    4: _v4_chain_seal,
    5: _v5_account_charges,
    6: _v6_entry_decision,
    7: _v7_unowned_fill,
}
"""version -> the step that brings the schema from version-1 to version. Add entries; never edit old ones."""


def _sql(db: pw.Database, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor


def _tables(db: pw.Database) -> set[str]:
    rows = _sql(db, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    return {str(r[0]) for r in rows.fetchall()}


def current_version(db: pw.Database) -> int:
    """The schema version recorded in the database (0 for an empty database).

    Raises RegistryVersionError when the two records disagree or a non-empty database has none.
    """
    tables = _tables(db)
    (user_version,) = _sql(db, "PRAGMA user_version").fetchone()
    if not tables:
        return 0
    table_version: int | None = None
    if "schema_version" in tables:
        (table_version,) = _sql(db, "SELECT max(version) FROM schema_version").fetchone()
    if table_version is None:
        raise RegistryVersionError(
            f"the database has tables ({', '.join(sorted(tables))}) but no schema version recorded; it is not a "
            "registry this code created, or its schema_version table was emptied. Restore it from a backup "
            "or point the daemon at the right file"
        )
    if int(user_version) != int(table_version):
        raise RegistryVersionError(
            f"schema versions disagree: schema_version table says {table_version}, PRAGMA user_version says "
            f"{user_version}. The file was edited outside the daemon; restore it from a backup"
        )
    return int(table_version)


def ensure_schema(
    db: pw.Database,
    *,
    target: int = SCHEMA_VERSION,
    migrations: Mapping[int, Migration] | None = None,
    now_ms: int = 0,
) -> list[int]:
    """Bring `db` to schema version `target`, returning the versions applied (empty when already current).

    Refuses (RegistryVersionError) a database whose version is newer than `target`: an older binary must never
    write to a schema it does not understand.
    """
    steps = MIGRATIONS if migrations is None else migrations
    missing = [v for v in range(1, target + 1) if v not in steps]
    if missing:
        raise RegistryVersionError(f"no migration registered for schema version(s) {missing}; this is a code bug")
    version = current_version(db)
    if version > target:
        raise RegistryVersionError(
            f"the registry database is at schema version {version} but this code only knows up to {target}; "
            "run the newer daemon version that wrote it (or restore a backup taken before the upgrade)"
        )
    applied: list[int] = []
    for v in range(version + 1, target + 1):
        with db.atomic("IMMEDIATE"):
            steps[v](db)
            _sql(db, 'INSERT INTO "schema_version" ("version", "applied_ms") VALUES (?, ?)', (v, now_ms))
            _sql(db, f"PRAGMA user_version = {int(v)}")
        applied.append(v)
    return applied
