"""Opening the registry database: one place that sets the pragmas every connection must have."""

from __future__ import annotations

from pathlib import Path

import peewee as pw

from lifecycle.models import db_proxy

DEFAULT_DB_PATH = Path("position_registry.db")

# A lost acknowledged fill costs money and the write volume is small: synchronous=FULL.
PRAGMAS: dict[str, object] = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "full",
    "busy_timeout": 5000,
}


class RegistryOpenError(Exception):
    """The registry file cannot be opened as asked (missing, unreadable, not a database)."""


def connect(path: Path | str, *, readonly: bool = False, create: bool = True) -> pw.SqliteDatabase:
    """Return a connected database. `readonly` never creates or writes anything (not even WAL files' content)."""
    p = Path(path)
    if str(path) != ":memory:" and not p.exists() and (readonly or not create):
        raise RegistryOpenError(f"registry database {p} does not exist")
    if readonly:
        db = pw.SqliteDatabase(f"file:{p}?mode=ro", uri=True, pragmas={"foreign_keys": 1, "busy_timeout": 5000})
    else:
        db = pw.SqliteDatabase(str(path), pragmas=PRAGMAS)
    try:
        db.connect(reuse_if_open=True)
    except pw.OperationalError as exc:
        raise RegistryOpenError(f"cannot open registry database {p}: {exc}") from None
    return db


def bind(db: pw.SqliteDatabase) -> None:
    """Point the models at `db` (the daemon binds once at startup; tests bind per test)."""
    db_proxy.initialize(db)
