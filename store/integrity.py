"""What the audit cannot see: SQLite's own structural check, schema drift, and which errors mean a damaged file.

The registry audit (`store.audit`) checks the lifecycle's invariants over rows it can read. Three things sit
below it:

- structure: `PRAGMA quick_check` (or the slower `integrity_check`, which also cross-checks every index against
  its table, when the file is small enough for it to be cheap). A damaged b-tree page can leave every row the
  audit reads intact while the next write or lookup fails with "database disk image is malformed".
- schema drift: the append-only triggers, the unique indexes and the columns the code relies on. A dropped
  trigger lets a bug rewrite history silently; a dropped unique index lets the same venue fill be booked twice.
  Neither is a row the audit counts, so neither showed in `REGISTRY_AUDIT_REPORT` before this check.
- damage at run time: `registry_damage(exc)` says whether an exception raised inside a job means the file is
  damaged (corrupt, not a database, I/O error, disk full) rather than a transient (busy, locked) or our own bug.
  The daemon halts on those instead of logging and retrying forever.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import peewee as pw

from store.migrations import APPEND_ONLY_TABLES, trigger_names
from store.models import ALL_MODELS

SMALL_FILE_BYTES = 64 * 1024 * 1024
"""Up to this size startup runs `integrity_check` (indexes against tables too); above it `quick_check`."""

# SQLite primary result codes (the low byte of an extended code) that mean the file itself is damaged or cannot
# be written: CORRUPT, NOTADB, IOERR, FULL, CANTOPEN. BUSY/LOCKED are transient; CONSTRAINT is a refused write.
_DAMAGE_CODES = {11: "corrupt", 26: "not a database", 10: "disk I/O error", 13: "disk full", 14: "cannot open"}
_DAMAGE_TEXT = ("malformed", "not a database", "disk i/o error", "database or disk is full", "unable to open")


class RegistryDamaged(Exception):
    """A structural check failed while the daemon runs (the health job's quick_check): the file is damaged."""


@dataclass(frozen=True)
class StructureReport:
    ok: bool
    check: str  # quick_check | integrity_check
    messages: tuple[str, ...]

    def summary(self) -> str:
        """One line: SQLite's first messages (they can hold newlines), and how many more there are."""
        shown = "; ".join(" ".join(m.split()) for m in self.messages[:3])
        more = f" (+{len(self.messages) - 3} more)" if len(self.messages) > 3 else ""
        return f"PRAGMA {self.check} failed: {shown}{more}"


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: peewee re-raises sqlite3 errors as its own class with the original as args[0]."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 8:
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__]
        todo += [a for a in e.args if isinstance(a, BaseException)]
    return seen


def registry_damage(exc: BaseException) -> str | None:
    """A short description when `exc` says the registry file is damaged or unwritable, else None."""
    for e in _causes(exc):
        if isinstance(e, RegistryDamaged):
            return str(e)
        if not isinstance(e, sqlite3.DatabaseError | pw.DatabaseError):
            continue
        code = getattr(e, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _DAMAGE_CODES:
            return f"{type(e).__name__}: {e}"
        text = str(e).lower()
        if any(marker in text for marker in _DAMAGE_TEXT):
            return f"{type(e).__name__}: {e}"
    return None


def _rows(db: pw.Database, sql: str) -> list[tuple[object, ...]]:
    cursor: sqlite3.Cursor = db.execute_sql(sql)  # type: ignore[no-untyped-call]
    return [tuple(r) for r in cursor.fetchall()]


def structure_check(
    db: pw.Database, path: Path | str | None = None, *, thorough: bool | None = None
) -> StructureReport:
    """SQLite's structural check: `integrity_check` when `thorough` (default: the file is at most SMALL_FILE_BYTES),
    else `quick_check`. A damaged page that stops the check itself is reported as its message, not raised."""
    if thorough is None:
        try:
            thorough = path is not None and Path(path).stat().st_size <= SMALL_FILE_BYTES
        except OSError:
            thorough = False
    check = "integrity_check" if thorough else "quick_check"
    try:
        messages = tuple(str(r[0]) for r in _rows(db, f"PRAGMA {check}"))
    except (sqlite3.DatabaseError, pw.DatabaseError) as exc:
        messages = (f"{type(exc).__name__}: {exc}",)
    return StructureReport(ok=messages == ("ok",), check=check, messages=messages)


def expected_unique_columns() -> dict[str, list[tuple[str, ...]]]:
    """table -> the column tuples the models declare unique (each must be backed by a unique index)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for model in ALL_MODELS:
        meta = model._meta
        uniques: list[tuple[str, ...]] = [
            (f.column_name,) for f in meta.sorted_fields if f.unique and not f.primary_key
        ]
        for fields, unique in meta.indexes:
            if unique:
                uniques.append(tuple(getattr(meta.fields.get(f), "column_name", f) for f in fields))
        if uniques:
            out[meta.table_name] = uniques
    return out


def schema_drift(db: pw.Database) -> list[str]:
    """One line per thing the code relies on that the file lacks: a table, a column, an append-only trigger, a
    unique index. Empty when the schema is as the migrations built it (extra objects are not drift)."""
    problems: list[str] = []
    master = _rows(db, "SELECT type, name, tbl_name FROM sqlite_master")
    tables = {str(name) for kind, name, _ in master if kind == "table"}
    triggers = {(str(name), str(table)) for kind, name, table in master if kind == "trigger"}
    for model in ALL_MODELS:
        table = model._meta.table_name
        if table not in tables:
            problems.append(f"table {table} is missing")
            continue
        have = {str(r[1]) for r in _rows(db, f'PRAGMA table_info("{table}")')}
        missing = [f.column_name for f in model._meta.sorted_fields if f.column_name not in have]
        if missing:
            problems.append(f"table {table} lacks column(s) {', '.join(missing)}")
    for table in APPEND_ONLY_TABLES:
        for name in trigger_names(table):
            if (name, table) not in triggers:
                problems.append(f"append-only trigger {name} on {table} is missing")
    for table, uniques in expected_unique_columns().items():
        if table not in tables:
            continue
        indexed: set[tuple[str, ...]] = set()
        for _, index, unique, *_ in _rows(db, f'PRAGMA index_list("{table}")'):
            if unique:
                info = _rows(db, f'PRAGMA index_info("{index}")')
                indexed.add(tuple(str(c[2]) for c in sorted(info, key=lambda c: int(str(c[0])))))
        for cols in uniques:
            if cols not in indexed:
                problems.append(f"unique index on {table}({', '.join(cols)}) is missing")
    return problems
