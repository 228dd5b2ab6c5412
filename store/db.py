"""Opening the registry database: one place that sets the pragmas every connection must have."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import peewee as pw

from store.models import db_proxy

DEFAULT_DB_PATH = Path("position_registry.db")
MEMORY = ":memory:"

# A lost acknowledged fill costs money and the write volume is small: synchronous=FULL.
PRAGMAS: dict[str, object] = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "full",
    "busy_timeout": 5000,
}
READONLY_PRAGMAS: dict[str, object] = {"foreign_keys": 1, "busy_timeout": 5000}

# What SQLite must answer when the pragmas durability rests on are read back. Setting a pragma never fails loudly:
# SQLite that cannot switch to WAL (no shared memory, as on a network mount) just keeps answering the old mode.
REQUIRED: dict[str, object] = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}
# A read-only connection cannot switch the journal mode, but must still enforce foreign keys on what it reads.
READONLY_REQUIRED: dict[str, object] = {"foreign_keys": 1}
# SQLite keeps an in-memory database's journal in memory whatever is asked; nothing on disk to make durable.
MEMORY_REQUIRED: dict[str, object] = {**REQUIRED, "journal_mode": "memory"}

SYNCHRONOUS_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

REMEDIES = {
    "journal_mode": "WAL needs shared memory beside the file, which this file system does not provide (a network "
    "or FUSE mount, for one): put the registry on a local disk (--db or db_path)",
    "synchronous": "this SQLite build does not honour the setting: run with the system's standard SQLite library",
    "foreign_keys": "this SQLite build lacks foreign key support: run with the system's standard SQLite library",
}


class RegistryOpenError(Exception):
    """The registry file cannot be opened as asked (missing, unreadable, not a database, or not durable)."""


def _shown(pragma: str, value: object) -> str:
    if pragma == "synchronous" and isinstance(value, int) and value in SYNCHRONOUS_NAMES:
        return f"{value} ({SYNCHRONOUS_NAMES[value]})"
    return "nothing" if value is None else repr(value)


def _read_pragma(conn: sqlite3.Connection, pragma: str) -> object:
    row = conn.execute(f"PRAGMA {pragma}").fetchone()
    value: object = None if row is None else row[0]
    return value.lower() if isinstance(value, str) else value


def check_pragmas(conn: sqlite3.Connection, path: Path | str, required: Mapping[str, object]) -> None:
    """Raise RegistryOpenError unless every pragma in `required` reads back from `conn` as required."""
    for pragma, asked in required.items():
        answered = _read_pragma(conn, pragma)
        if answered != asked:
            raise RegistryOpenError(
                f"registry database {path} is not durable as required: PRAGMA {pragma} was asked for "
                f"{_shown(pragma, asked)} and SQLite answered {_shown(pragma, answered)}; "
                f"{REMEDIES.get(pragma, 'put the registry on a local disk')}"
            )


class CheckedDatabase(pw.SqliteDatabase):
    """Peewee opens one connection per thread (the daemon's jobs run in threads) and sets the pragmas on each:
    every one of them is read back here before peewee may use it, not just the first."""

    def __init__(
        self,
        database: str,
        *,
        label: Path | str,
        pragmas: Mapping[str, object],
        required: Mapping[str, object],
        uri: bool = False,
    ) -> None:
        self._label = label
        self._required = dict(required)
        super().__init__(database, pragmas=dict(pragmas), uri=uri)

    def _connect(self) -> sqlite3.Connection:
        # peewee's stubs leave out this hook; it is the one place a new connection passes before peewee keeps it.
        conn: sqlite3.Connection = super()._connect()  # type: ignore[misc]
        try:
            check_pragmas(conn, self._label, self._required)
        except RegistryOpenError:
            conn.close()
            raise
        return conn


def connect(path: Path | str, *, readonly: bool = False, create: bool = True) -> pw.SqliteDatabase:
    """Return a connected database. `readonly` never creates or writes anything (not even WAL files' content).

    Every connection, in any thread, is refused with RegistryOpenError unless the pragmas durability rests on read
    back as asked (WAL, synchronous=FULL, foreign keys; foreign keys alone when read-only)."""
    p = Path(path)
    if str(path) != MEMORY and not p.exists() and (readonly or not create):
        raise RegistryOpenError(f"registry database {p} does not exist")
    db: CheckedDatabase
    if readonly:
        db = CheckedDatabase(
            f"file:{p}?mode=ro", label=p, pragmas=READONLY_PRAGMAS, required=READONLY_REQUIRED, uri=True
        )
    else:
        required = MEMORY_REQUIRED if str(path) == MEMORY else REQUIRED
        db = CheckedDatabase(str(path), label=p, pragmas=PRAGMAS, required=required)
    try:
        db.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        raise RegistryOpenError(f"cannot open registry database {p}: {exc}") from None
    return db


def bind(db: pw.SqliteDatabase) -> None:
    """Point the models at `db` (the daemon binds once at startup; tests bind per test)."""
    db_proxy.initialize(db)


def scratch_dir() -> str | None:
    """Where a throwaway registry file (a DST seed's; a backtest's lives in memory) belongs: memory-backed /dev/shm
    when there is one.
    Such a registry still commits with synchronous=FULL (one code path for every registry); an fsync per
    transition is what a kept registry pays for durability, not a run whose file is deleted at its end. None: the
    system's temporary folder."""
    shm = Path("/dev/shm")  # noqa: S108 - callers make a private TemporaryDirectory inside it
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
