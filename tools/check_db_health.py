"""`python -m tools.check_db_health [--db PATH] [--json]`: is the registry file sound? Read-only.

Reports the file, its size, SQLite's `integrity_check`, the schema version, row counts, the chain anchors and
every field of the registry audit. The audit is always full (every chained row re-hashed) and checks the stored
anchors too, so rows deleted at the end of a chain, or a damaged anchor, are findings. Exits 0 when healthy, 1
when anything is wrong, 2 when the file is missing. A damaged, locked or foreign file gets one line naming the
file and what to do, never a traceback.

A keyed registry (`store.keys`) is verified with its key: `--key-file PATH`, else `registry_key_file` from
`--config FILE`, else `<db>.key` (the daemon's default for `registry_key_file`). Without the key a keyed registry
cannot be verified: exit 2 with one line saying where the key was expected. SQLite's `integrity_check` and the
schema drift check (`store.integrity`: append-only triggers, unique indexes, columns) are reported as problems
too.

`--reset-anchors [--execute]` is the one write: after an anchor finding has been investigated (and the chain
restored or rebuilt), it forgets the anchors, so the daemon's next audit is full and anchors the chains where
they end then. Dry-run by default; it never creates or migrates a file.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import peewee as pw

from lifecycle.errors import RegistryVersionError
from store.anchors import (
    AnchorTableDamaged,
    StoredAnchor,
    clear_anchors,
    load_anchors,
    signed_anchors_missing,
    vouched_heads,
)
from store.audit import CHAINS, DEFAULT_MAX_STOP_DISTANCE_PCT, AuditReport, quick_check, run_audit
from store.db import RegistryOpenError, connect
from store.integrity import schema_drift
from store.keys import Keyed, KeyFileError, default_key_path, sealing_key, verify_seal
from store.migrations import CHAIN_ANCHOR_VERSION, current_version
from store.models import ALL_MODELS, SCHEMA_VERSION, V1_MODELS
from tools._cli import (
    EXIT_OK,
    EXIT_PROBLEMS,
    ProblemsFound,
    ToolError,
    UsageError,
    bounded_int,
    dry_run_prefix,
    hold_writer_lock,
    make_parser,
    run_tool,
    write_json,
    write_text,
)
from tools._dbfile import describe_sqlite_error, existing_registry_file, is_lock_error, wait_for_write_lock

RESTORE = "restore it from backup; keep the service stopped"
RESET_HINT = (
    "investigate first (docs/tools.md, check_db_health); once the chain is restored or rebuilt and its current end is"
    " the truth, clear the anchors with python -m tools.check_db_health --reset-anchors --execute"
)
ANCHOR_LABEL_MARK = "(anchor:"
"""How `store.audit` labels a chain break that is an anchor which no longer holds."""
INDENT = " " * 17
# A reader never waits for the daemon's WAL writes; a lock that lasts longer than this is someone holding the file.
DEFAULT_BUSY_TIMEOUT_MS = 1000
MAX_BUSY_TIMEOUT_MS = 600_000


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def anchor_json(anchor: StoredAnchor) -> dict[str, Any]:
    full = anchor.full_verified_ms
    return {
        "through_id": anchor.head.through_id,
        "through_hash": anchor.head.through_hash,
        "rows": anchor.head.rows,
        "verified": iso_utc(anchor.verified_ms),
        "verified_ms": anchor.verified_ms,
        "last_full_verification": "never" if full is None else iso_utc(full),
        "full_verified_ms": full,
    }


def anchor_text(name: str, anchor: StoredAnchor) -> str:
    full = anchor.full_verified_ms
    return (
        f"{name}: through_id={anchor.head.through_id} rows={anchor.head.rows}"
        f" hash={anchor.head.through_hash[:12]} verified={iso_utc(anchor.verified_ms)}"
        f" last_full={'never' if full is None else iso_utc(full)}"
    )


def in_chain_order(anchors: dict[str, StoredAnchor]) -> list[tuple[str, StoredAnchor]]:
    """The audit's chain order (transition, fill), then any name that is not a chain (a damaged row)."""
    order = {name: i for i, name in enumerate(CHAINS)}
    return sorted(anchors.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def anchors_text(anchors: dict[str, StoredAnchor], *, unreadable: bool = False) -> list[str]:
    """The report's anchors section: one chain per line under one heading."""
    if unreadable:
        return ["anchors:         unreadable (chain_anchor holds values of the wrong type)"]
    if not anchors:
        return ["anchors:         none recorded yet"]
    lines = [anchor_text(name, anchor) for name, anchor in in_chain_order(anchors)]
    return ["anchors:         " + lines[0], *(INDENT + line for line in lines[1:])]


@dataclass
class HealthReport:
    file: Path
    size_bytes: int
    integrity: list[str] = field(default_factory=list)
    schema: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    anchors: dict[str, StoredAnchor] = field(default_factory=dict)
    anchors_unreadable: bool = False
    audit: AuditReport | None = None
    key: str = "none (unkeyed registry)"
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Worth knowing, not wrong (an older schema the daemon will migrate; what to do after an anchor finding)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        audit = None
        if self.audit is not None:
            audit = {**self.audit.fields(), "details": self.audit.details, "scope": self.audit.scope}
        return {
            "file": str(self.file),
            "ok": self.ok,
            "size_bytes": self.size_bytes,
            "integrity_check": self.integrity,
            "schema": self.schema,
            "rows": self.rows,
            "anchors": {name: anchor_json(a) for name, a in in_chain_order(self.anchors)},
            "audit": audit,
            "key": self.key,
            "problems": self.problems,
            "notes": self.notes,
        }

    def to_text(self) -> list[str]:
        lines = [
            f"file:            {self.file}",
            f"size:            {self.size_bytes} bytes",
            f"integrity_check: {'; '.join(self.integrity[:5])}",
            "schema:          " + ", ".join(f"{k}={'-' if v is None else v}" for k, v in self.schema.items()),
            "rows:            " + ", ".join(f"{k}={v}" for k, v in self.rows.items()),
            *anchors_text(self.anchors, unreadable=self.anchors_unreadable),
            f"key:             {self.key}",
        ]
        if self.audit is not None:
            fields = " ".join(f"{k}={v}" for k, v in self.audit.fields().items())
            lines.append(f"audit:           {fields} scope={self.audit.scope}")
        lines += [f"note:            {note}" for note in self.notes]
        lines.append("status:          " + ("HEALTHY" if self.ok else "PROBLEMS: " + "; ".join(self.problems)))
        return lines


def _describe_sqlite_error(path: Path, exc: Exception) -> str:
    return describe_sqlite_error(path, exc, RESTORE)


def _existing_registry_file(path: Path) -> int:
    return existing_registry_file(path, missing_hint="check --db PATH", damaged_hint=RESTORE)


def _sql(db: pw.SqliteDatabase, sql: str) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql)  # type: ignore[no-untyped-call]
    return cursor


def _unowned_note(db: pw.SqliteDatabase, count: int) -> str:
    """The recorded unowned fills (docs/operations.md): not a problem (each is accounted for and was reported once as
    UNOWNED_FILL), but what an operator investigating one looks for."""
    latest = (
        "SELECT fill_id, symbol_key, side, qty, price, fill_ms, reason FROM unowned_fill"
        " ORDER BY fill_ms DESC, id DESC LIMIT 1"
    )
    fill_id, symbol, side, qty, price, fill_ms, reason = _sql(db, latest).fetchone()
    return (
        f"{count} unowned fill(s) recorded (fills no position could own, each reported once as UNOWNED_FILL); the"
        f" latest: {fill_id} {symbol} {side} {qty} @ {price} at {iso_utc(int(fill_ms))}: {reason}"
    )


def _required_tables(version: int | None) -> set[str]:
    """The tables a file at `version` must hold. A file older than the code lacks the later tables by right: the
    daemon's migrations add them when it next opens the file."""
    models = ALL_MODELS if version is None or version >= SCHEMA_VERSION else V1_MODELS
    return {m._meta.table_name for m in models}


def _schema(db: pw.SqliteDatabase, report: HealthReport) -> set[str]:
    tables = {str(r[0]) for r in _sql(db, "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    (user_version,) = _sql(db, "PRAGMA user_version").fetchone()
    table_version = None
    if "schema_version" in tables:
        (table_version,) = _sql(db, "SELECT max(version) FROM schema_version").fetchone()
    report.schema = {"code": SCHEMA_VERSION, "table": table_version, "user_version": int(user_version)}
    recorded = [v for v in (table_version, int(user_version) or None) if v is not None]
    version = max(recorded) if recorded else None
    missing = sorted(_required_tables(version) - tables)
    if missing:
        report.problems.append(
            f"schema incomplete: missing tables {', '.join(missing)} (not a registry, or a failed migration)"
        )
    if not recorded:
        report.problems.append("no schema version recorded (schema_version table empty and user_version 0)")
    elif max(recorded) > SCHEMA_VERSION:
        report.problems.append(
            f"schema version {max(recorded)} is newer than this code ({SCHEMA_VERSION}): deploy the matching release"
        )
    elif len(set(recorded)) > 1:
        report.problems.append(f"schema versions disagree (table {table_version}, user_version {user_version})")
    elif max(recorded) < SCHEMA_VERSION:
        anchors = "; until then no chain anchors are recorded" if max(recorded) < CHAIN_ANCHOR_VERSION else ""
        report.notes.append(
            f"schema version {max(recorded)} is older than this code ({SCHEMA_VERSION}): the daemon migrates it"
            f" when it next opens the file (back the file up first){anchors}"
        )
    return tables & {m._meta.table_name for m in ALL_MODELS}


def _damaged_anchor_table(db: pw.SqliteDatabase, report: HealthReport) -> None:
    """load_anchors could not read the rows (a value of the wrong type): the anchors cannot vouch for anything."""
    (count,) = _sql(db, "SELECT count(*) FROM chain_anchor").fetchone()
    report.anchors_unreadable = True
    report.problems.append(
        f"chain_anchor is damaged ({count} row(s) with values of the wrong type), so the chains were audited"
        f" without anchors: {RESET_HINT}"
    )


def _anchor_set_problems(anchors: dict[str, StoredAnchor]) -> list[str]:
    """A clean audit anchors every chain at once and a reset clears them all, so a partial or foreign set means the
    anchor table itself was edited (an unanchored chain hides rows deleted at its end)."""
    if not anchors:
        return []
    problems = [
        f"chain_anchor holds an anchor for unknown chain {name!r}" for name in sorted(set(anchors) - set(CHAINS))
    ]
    problems += [f"chain_anchor has no anchor for the {name} chain" for name in CHAINS if name not in anchors]
    if problems:
        return [f"{'; '.join(problems)} (the anchor table was edited): {RESET_HINT}"]
    return []


def _read_anchors(db: pw.SqliteDatabase, report: HealthReport, present: set[str]) -> None:
    if "chain_anchor" not in present:
        return
    try:
        report.anchors = load_anchors(db)
    except AnchorTableDamaged:
        _damaged_anchor_table(db, report)
        return
    report.problems += _anchor_set_problems(report.anchors)


def _has_anchor_finding(audit: AuditReport) -> bool:
    return any(
        ANCHOR_LABEL_MARK in label
        for name in ("transition_chain_breaks", "fill_chain_breaks")
        for label in audit.details.get(name, [])
    )


def _keyed(db: pw.SqliteDatabase, path: Path, key_file: Path | None, report: HealthReport) -> Keyed | None:
    """The key of a sealed registry (UsageError, exit 2, when it cannot be read: nothing can be verified)."""
    key_path = key_file or default_key_path(path)
    try:
        key = sealing_key(db, path, key_path, fix="--key-file (the daemon's registry_key_file)")
    except KeyFileError as exc:
        raise UsageError(str(exc)) from None
    if key is None:
        return None
    report.key = f"{key_path} (key id {key.key_id})"
    return verify_seal(db, key)


def _audit(
    db: pw.SqliteDatabase,
    report: HealthReport,
    keyed: Keyed | None = None,
    max_stop_distance_pct: Decimal = DEFAULT_MAX_STOP_DISTANCE_PCT,
) -> None:
    # Full even with anchors: this is the check an operator trusts, so every row is re-hashed; the anchors add
    # what a chain alone cannot show (rows deleted at its end).
    heads = {name: anchor.head for name, anchor in report.anchors.items()}
    if keyed is not None:
        heads = signed_anchors_missing(db, keyed, vouched_heads(db, keyed, heads))
    report.audit = run_audit(db, anchors=heads, full=True, keyed=keyed, max_stop_distance_pct=max_stop_distance_pct)
    if not report.audit.ok:
        report.problems.append(report.audit.summary())
        if _has_anchor_finding(report.audit):
            report.notes.append(f"a chain no longer passes through its anchor: {RESET_HINT}")


def check(
    path: Path,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    key_file: Path | None = None,
    max_stop_distance_pct: Decimal = DEFAULT_MAX_STOP_DISTANCE_PCT,
) -> HealthReport:
    """Inspect `path` without writing to it; raises ToolError subclasses for files that cannot be inspected."""
    size = _existing_registry_file(path)
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
        if report.schema.get("table") == SCHEMA_VERSION:  # an older file lacks later objects by right
            report.problems += [f"schema drift: {p} ({RESTORE})" for p in schema_drift(db)]
        keyed = _keyed(db, path, key_file, report) if "chain_seal" in present else None
        with db.bind_ctx(list(ALL_MODELS)):
            for model in ALL_MODELS:
                if model._meta.table_name in present:
                    report.rows[model._meta.table_name] = model.select().count()
        _read_anchors(db, report, present)
        if report.rows.get("unowned_fill"):
            report.notes.append(_unowned_note(db, report.rows["unowned_fill"]))
        if {"position", "transition", "fill"} <= present:
            _audit(db, report, keyed, max_stop_distance_pct)
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:  # raw cursors raise sqlite3's own errors
        raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    finally:
        db.close()
    return report


# --- --reset-anchors ----------------------------------------------------------------------------------------------


@dataclass
class ResetReport:
    file: Path
    execute: bool
    anchors: dict[str, StoredAnchor]
    anchor_rows: int
    """Rows in chain_anchor (the anchors above, or the rows of a damaged table that could not be read)."""
    cleared: int = 0

    @property
    def ok(self) -> bool:
        """The shared convention: a dry-run that finds work to do is not ok (exit 1)."""
        return self.execute or not self.anchor_rows

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "ok": self.ok,
            "action": "reset_anchors",
            "execute": self.execute,
            "anchors": {name: anchor_json(a) for name, a in in_chain_order(self.anchors)},
            "anchor_rows": self.anchor_rows,
            "cleared": self.cleared,
            "next_daemon_audit": "full" if self.execute else None,
        }

    def to_text(self) -> list[str]:
        if not self.anchor_rows:
            return [f"no chain anchors recorded in {self.file}: nothing to clear"]
        prefix = dry_run_prefix(self.execute)
        verb = "clear" if prefix else "cleared"
        lines = [f"{prefix}{verb} {self.anchor_rows} chain anchor(s) in {self.file}:"]
        lines += [INDENT + anchor_text(name, a) for name, a in in_chain_order(self.anchors)]
        if len(self.anchors) < self.anchor_rows:
            lines.append(INDENT + "(the anchor rows could not be read: values of the wrong type)")
        if self.execute:
            lines.append(
                "the daemon's next audit will be a full one (every row re-hashed); if it is clean it records new"
                " anchors where the chains end then"
            )
        else:
            lines.append("run again with --execute to clear them; the daemon's next audit is then a full one")
        return lines


def _locked(path: Path) -> ProblemsFound:
    return ProblemsFound(
        f"{path} is locked by another process (probably the daemon): nothing was cleared. Stop the service, then"
        " run --reset-anchors --execute again"
    )


@contextmanager
def _open_for_reset(path: Path, execute: bool, busy_timeout_ms: int) -> Iterator[pw.SqliteDatabase]:
    """The existing file, writable only for --execute (create=False: a wrong path never becomes a new registry)."""
    _existing_registry_file(path)
    if execute:
        hold_writer_lock(path, "check_db_health --reset-anchors --execute")  # the daemon writes anchors too
        try:
            wait_for_write_lock(path, busy_timeout_ms)
        except sqlite3.Error as exc:
            if is_lock_error(exc):
                raise _locked(path) from None
            raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    try:
        db = connect(path, readonly=not execute, create=False)
    except RegistryOpenError as exc:
        if is_lock_error(exc):
            raise _locked(path) from None
        raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    try:
        db.pragma("busy_timeout", int(busy_timeout_ms))
        yield db
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:
        if is_lock_error(exc):
            raise _locked(path) from None
        raise ProblemsFound(_describe_sqlite_error(path, exc)) from None
    finally:
        db.close()


def _require_current_schema(db: pw.SqliteDatabase, path: Path) -> None:
    # Writing to a schema this code did not write (or migrating as a side effect) is never this tool's job.
    try:
        version = current_version(db)
    except RegistryVersionError as exc:
        raise ProblemsFound(f"{path}: {exc}; nothing was changed") from None
    if version < SCHEMA_VERSION:
        why = (
            "it has no chain anchors to clear" if version < CHAIN_ANCHOR_VERSION else "clear its anchors once migrated"
        )
        raise ProblemsFound(
            f"{path} is at schema version {version}, older than this code ({SCHEMA_VERSION}): {why}; nothing was"
            " changed (the daemon migrates the file when it next opens it)"
        )
    if version > SCHEMA_VERSION:
        raise ProblemsFound(
            f"{path} is at schema version {version}, newer than this code ({SCHEMA_VERSION}): nothing was changed;"
            " use the release that wrote it"
        )


def reset_anchors(path: Path, *, execute: bool, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> ResetReport:
    """Dry-run: what would be cleared. --execute: clear every anchor, so the daemon's next audit is full."""
    with _open_for_reset(path, execute, busy_timeout_ms) as db:
        _require_current_schema(db, path)
        try:
            anchors = load_anchors(db)
        except AnchorTableDamaged:  # a damaged anchor row is one of the reasons to reset
            anchors = {}
        (rows,) = _sql(db, "SELECT count(*) FROM chain_anchor").fetchone()
        report = ResetReport(file=path, execute=execute, anchors=anchors, anchor_rows=int(rows))
        if execute and report.anchor_rows:
            report.cleared = clear_anchors(db)
    return report


def _run_reset(args: Any) -> int:
    report = reset_anchors(args.db, execute=args.execute, busy_timeout_ms=args.busy_timeout_ms)
    if args.json:
        write_json(report.to_json())
    else:
        write_text(report.to_text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _from_config(args: Any) -> tuple[Path | None, Decimal]:
    """The key file (--key-file, else the config's registry_key_file, else None: DB.key) and the stop bound of
    invalid_stop_prices (the config's risk.max_stop_distance_pct, else the default), from --config when given."""
    key_file: Path | None = args.key_file
    if args.config is None:
        return key_file, DEFAULT_MAX_STOP_DISTANCE_PCT
    from tools._venue import load  # only with --config: the check itself reads nothing but the registry

    settings = load(args.config)
    return key_file or settings.registry_key_file, settings.risk.max_stop_distance_pct


def _run_check(args: Any) -> int:
    path: Path = args.db
    key_file, max_stop = _from_config(args)
    report = check(path, busy_timeout_ms=args.busy_timeout_ms, key_file=key_file, max_stop_distance_pct=max_stop)
    if args.json:
        write_json(report.to_json())
    else:
        write_text(report.to_text())
    if not report.ok:
        sys.stderr.write(f"error: {path}: {'; '.join(report.problems)}\n")
        return EXIT_PROBLEMS
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    parser = make_parser(
        "python -m tools.check_db_health",
        "Registry database integrity and health report (read-only; --reset-anchors --execute clears the chain"
        " anchors after an investigated anchor finding)",
        modifies_state=True,
    )
    parser.add_argument(
        "--busy-timeout-ms",
        type=bounded_int(0, MAX_BUSY_TIMEOUT_MS),
        default=DEFAULT_BUSY_TIMEOUT_MS,
        metavar="MS",
        help=f"wait this long for a lock held by another process (default {DEFAULT_BUSY_TIMEOUT_MS})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the registry's key file (default: registry_key_file from --config, else DB.key beside the registry)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="the daemon's config, read only for registry_key_file and risk.max_stop_distance_pct",
    )
    parser.add_argument(
        "--reset-anchors",
        action="store_true",
        help="forget the chain anchors so the daemon's next audit is full (dry-run unless --execute); only after"
        " investigating an anchor finding",
    )
    args = parser.parse_args(argv)
    try:
        if args.execute and not args.reset_anchors:
            raise UsageError("--execute only applies to --reset-anchors: the health check itself never writes")
        return _run_reset(args) if args.reset_anchors else _run_check(args)
    except ToolError as exc:
        if args.json:
            write_json({"file": str(args.db), "ok": False, "error": str(exc)})
        raise


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
