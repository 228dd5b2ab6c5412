"""Fees and funding from the venue's account log, durable in the registry (`account_charge`, schema version 5).

Raw SQL, as `store.pause`: the rows are written by their own job and never bind a model. Idempotent by the log's
entry id (`INSERT OR IGNORE`), and the cursor moves in the same transaction as the rows it covers, so a crash
between a page and its rows re-reads the page instead of losing it.

Attribution: a fee belongs to the position of the fill it books (its `execution` is our ledger's fill id); funding
belongs to the position that carried the symbol into that instant by its ledger (its entry fills before the
instant outweigh its exits before it; when its close was booked does not matter). A row that cannot be attributed
yet (the fill is not in the ledger yet) keeps `position` NULL and is tried again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal

import peewee as pw

from lifecycle.account_log import ChargeRow
from lifecycle.clock import to_ms

CURSOR = "account_log"


def _sql(db: pw.Database, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
    cursor: sqlite3.Cursor = db.execute_sql(sql, tuple(params))  # type: ignore[no-untyped-call]
    return cursor


def last_entry_id(db: pw.Database) -> int | None:
    row = _sql(db, 'SELECT "last_entry_id" FROM "account_log_cursor" WHERE "name" = ?', (CURSOR,)).fetchone()
    return None if row is None else int(row[0])


def _owner(db: pw.Database, row: ChargeRow | tuple[str, str | None, str | None, int]) -> int | None:
    kind, symbol, fill_id, at_ms = (
        (row.kind, row.symbol, row.fill_id, to_ms(row.time)) if isinstance(row, ChargeRow) else row
    )
    if kind == "fee" and fill_id:
        found = _sql(db, 'SELECT "position_id" FROM "fill" WHERE "fill_id" = ?', (fill_id,)).fetchone()
        return None if found is None else int(found[0])
    if kind == "funding" and symbol:
        # Carried into the instant by its ledger: its entry fills before it outweigh its exit fills before it. A fill
        # of the same millisecond is not counted: the venue books funding on the position it holds at the instant,
        # before any order sent at that instant fills (the engine books it after the step's triggers and before
        # the jobs, and a backtest's bar boundaries are funding instants). `closed_ms` is when the close was
        # booked, which can be cycles after the fill that closed it (a hand's close found by reconciliation):
        # only a cheap pre-filter.
        found = _sql(
            db,
            'SELECT p."id" FROM "position" p WHERE p."symbol_key" = ? AND (p."closed_ms" IS NULL OR p."closed_ms" >= ?)'
            ' AND (SELECT total(CASE WHEN f."is_entry" THEN f."qty_units" ELSE -f."qty_units" END) FROM "fill" f'
            '      WHERE f."position_id" = p."id" AND f."fill_ms" < ?) > 0'
            ' ORDER BY p."id" DESC LIMIT 1',
            (symbol, at_ms, at_ms),
        ).fetchone()
        return None if found is None else int(found[0])
    return None


def record(db: pw.Database, rows: Sequence[ChargeRow], *, through_entry_id: int, now_ms: int) -> int:
    """Store `rows` (attributed where possible) and move the cursor to `through_entry_id`, in one transaction.
    Returns how many rows were new."""
    added = 0
    with db.atomic("IMMEDIATE"):
        for row in rows:
            cur = _sql(
                db,
                'INSERT OR IGNORE INTO "account_charge" ("entry_id", "kind", "amount", "at_ms", "symbol_key",'
                ' "fill_id", "position_id", "recorded_ms") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                (row.entry_id, row.kind, format(row.amount, "f"), to_ms(row.time), row.symbol, row.fill_id,
                 _owner(db, row), now_ms),
            )  # fmt: skip
            added += cur.rowcount
        _sql(
            db,
            'INSERT INTO "account_log_cursor" ("name", "last_entry_id", "updated_ms") VALUES (?, ?, ?)'
            ' ON CONFLICT ("name") DO UPDATE SET "last_entry_id" = MAX("last_entry_id", excluded."last_entry_id"),'
            ' "updated_ms" = excluded."updated_ms"',
            (CURSOR, through_entry_id, now_ms),
        )
    return added


def attribute_pending(db: pw.Database) -> tuple[int, int]:
    """Attribute the rows still without a position where that is now possible. Returns (attributed, still open)."""
    pending = _sql(
        db, 'SELECT "id", "kind", "symbol_key", "fill_id", "at_ms" FROM "account_charge" WHERE "position_id" IS NULL'
    ).fetchall()
    done = 0
    with db.atomic("IMMEDIATE"):
        for pk, kind, symbol, fill_id, at_ms in pending:
            owner = _owner(db, (str(kind), symbol, fill_id, int(at_ms)))
            if owner is not None:
                _sql(db, 'UPDATE "account_charge" SET "position_id" = ? WHERE "id" = ?', (owner, pk))
                done += 1
    return done, len(pending) - done


def rows(db: pw.Database, kind: str) -> list[tuple[Decimal, int | None]]:
    """(amount, position id or None) of every stored row of `kind`, in log order (for reports and tests)."""
    found = _sql(
        db, 'SELECT "amount", "position_id" FROM "account_charge" WHERE "kind" = ? ORDER BY "entry_id"', (kind,)
    )
    return [(Decimal(str(a)), None if p is None else int(p)) for a, p in found.fetchall()]
