"""`python -m tools.check_db_health [--db PATH] [--json]`: is the registry file sound? Read-only.

Reports the file, its size, SQLite's `integrity_check`, the schema version, row counts and every field of the
registry audit. Exits 0 when healthy, 1 when anything is wrong, 2 when the file is missing. A damaged, locked or
foreign file gets one line naming the file and what to do, never a traceback.
"""

from __future__ import annotations

import sqlite3
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee as pw

from lifecycle.audit import AuditReport, quick_check, run_audit
from lifecycle.db import RegistryOpenError, connect
from lifecycle.models import ALL_MODELS, SCHEMA_VERSION
from tools._cli import ProblemsFound, UsageError, make_parser, run_tool, write_json, write_text

RESTORE = "restore it from backup; keep the service stopped"
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class HealthReport:
    file: Path
    size_bytes: int
    integrity: list[str] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    audit: AuditReport | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "ok": self.ok,
            "size_bytes": self.size_bytes,
            "integrity_check": self.integrity,
            "schema": self.schema,
            "rows": self.rows,
            "audit": None if self.audit is None else {**self.audit.fields(), "details": self.audit.details},
            "problems": self.problems,
        }

    def to_text(self) -> list[str]:
        lines = [
            f"file:            {self.file}",
            f"size:            {self.size_bytes} bytes",
            f"integrity_check: {'; '.join(self.integrity[:5])}",
            "schema:          " + ", ".join(f"{k}={'-' if v is None else v}" for k, v in self.schema.items()),
            "rows:            " + ", ".join(f"{k}={v}" for k, v in self.rows.items()),
        ]
        if self.audit is not None:
            lines.append("audit:           " + " ".join(f"{k}={v}" for k, v in self.audit.fields().items()))
        lines.append("status:          " + ("HEALTHY" if self.ok else "PROBLEMS: " + "; ".join(self.problems)))
        return lines


def _describe_sqlite_error(path: Path, exc: Exception) -> str:
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return (
            f"{path} is locked by another process (the daemon or a tool holding an exclusive lock): retry when it"
            " is released; stop that process first if it never is"
        )
    if "not a database" in low:
        return f"{path} is not a SQLite database (damaged header or wrong file): {RESTORE}"
    if "malformed" in low or "corrupt" in low:
        return f"{path} is corrupted ({text}): {RESTORE}"
    if "unable to open" in low or "readonly" in low or "permission" in low:
        return f"cannot open {path} ({text}): check the path and its permissions"
    return f"{path}: SQLite error ({text}): {RESTORE}"


def _check_header(path: Path, size: int) -> None:
    """Catch a wrong or truncated file from its 100-byte header before SQLite reads any page."""
    if size == 0:
        raise ProblemsFound(f"{path} is empty (0 bytes), not a registry: {RESTORE}")
    with path.open("rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise ProblemsFound(f"{path} is not a SQLite database (damaged header or wrong file): {RESTORE}")
    (raw_page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise ProblemsFound(f"{path} has a damaged header (page size {raw_page_size}): {RESTORE}")
    change_counter, page_count = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    if size % page_size:
        raise ProblemsFound(
            f"{path} is truncated ({size} bytes is not a whole number of {page_size}-byte pages): {RESTORE}"
        )
    # The header's page count is authoritative only when its version-valid-for matches the change counter.
    if valid_for == change_counter and page_count and size < page_count * page_size:
        raise ProblemsFound(f"{path} is truncated ({size} bytes, the header says {page_count * page_size}): {RESTORE}")


def _sql(db: pw.SqliteDatabase, sql: str) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql)  # type: ignore[no-untyped-call]
    return cursor


def _schema(db: pw.SqliteDatabase, report: HealthReport) -> set[str]:
    tables = {str(r[0]) for r in _sql(db, "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    (user_version,) = _sql(db, "PRAGMA user_version").fetchone()
    table_version = None
    if "schema_version" in tables:
        (table_version,) = _sql(db, "SELECT max(version) FROM schema_version").fetchone()
    report.schema = {"code": SCHEMA_VERSION, "table": table_version, "user_version": int(user_version)}
    expected = {m._meta.table_name for m in ALL_MODELS}
    missing = sorted(expected - tables)
    if missing:
        report.problems.append(
            f"schema incomplete: missing tables {', '.join(missing)} (not a registry, or a failed migration)"
        )
    recorded = [v for v in (table_version, int(user_version) or None) if v is not None]
    if not recorded:
        report.problems.append("no schema version recorded (schema_version table empty and user_version 0)")
    elif max(recorded) > SCHEMA_VERSION:
        report.problems.append(
            f"schema version {max(recorded)} is newer than this code ({SCHEMA_VERSION}): deploy the matching release"
        )
    elif len(set(recorded)) > 1:
        report.problems.append(f"schema versions disagree (table {table_version}, user_version {user_version})")
    return tables & expected


def check(path: Path, *, busy_timeout_ms: int = 2000) -> HealthReport:
    """Inspect `path` without writing to it; raises ToolError subclasses for files that cannot be inspected."""
    if not path.exists():
        raise UsageError(f"registry database {path} does not exist: check --db PATH (nothing was created)")
    if not path.is_file():
        raise UsageError(f"{path} is not a file: pass the registry database with --db PATH")
    size = path.stat().st_size
    _check_header(path, size)
    try:
        db = connect(path, readonly=True)
    except RegistryOpenError as exc:
        raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    report = HealthReport(file=path, size_bytes=size)
    try:
        db.pragma("busy_timeout", int(busy_timeout_ms))
        integrity = quick_check(db, full=True)
        report.integrity = integrity.messages
        if not integrity.ok:
            report.problems.append(f"integrity_check failed: {integrity.messages[0]} ({RESTORE})")
        present = _schema(db, report)
        with db.bind_ctx(list(ALL_MODELS)):
            for model in ALL_MODELS:
                if model._meta.table_name in present:
                    report.rows[model._meta.table_name] = model.select().count()
        if {"position", "transition", "fill"} <= present:
            report.audit = run_audit(db)
            if not report.audit.ok:
                report.problems.append(report.audit.summary())
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:  # raw cursors raise sqlite3's own errors
        raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    finally:
        db.close()
    return report


def main(argv: Sequence[str]) -> int:
    parser = make_parser("python -m tools.check_db_health", "Registry database integrity and health report (read-only)")
    parser.add_argument("--busy-timeout-ms", type=int, default=2000, help="wait this long for a lock (default 2000)")
    args = parser.parse_args(argv)
    path: Path = args.db
    try:
        report = check(path, busy_timeout_ms=args.busy_timeout_ms)
    except (ProblemsFound, UsageError) as exc:
        if args.json:
            write_json({"file": str(path), "ok": False, "error": str(exc)})
        raise
    if args.json:
        write_json(report.to_json())
    else:
        write_text(report.to_text())
    if not report.ok:
        sys.stderr.write(f"error: {path}: {'; '.join(report.problems)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
