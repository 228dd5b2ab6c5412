"""The money view under the schedule: after a clean slice, the fees and funding the registry holds are the venue's.

The daemon reads the venue's account log into `account_charge` (operations.account_log). These checks state what
that table must then hold, from the venue's own books (the simulator's account log, read directly, never through
the faults) and from the fill ledger, without calling the code that fills it:
- nothing lost, nothing counted twice: per kind, the stored amounts add up to the venue's (fees paid, funding
  received over every cash entry), every stored row is a venue entry, and the cursor stands at the venue's last
  entry;
- a fee belongs to the position whose ledger holds the fill it books, and to none when no ledger row does (a hand's
  trade);
- funding at an instant belongs to a position that carried the symbol into it by its ledger (its fills before the
  instant add up to quantity held), and to none when no position did.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from simulator.ledger import LedgerEntry

if TYPE_CHECKING:
    import peewee as pw

DETAIL_LIMIT = 3


def money_finding(entries: list[LedgerEntry], db: pw.Database) -> str | None:
    """What is wrong with the registry's charges against the venue's account log `entries`; None when nothing."""
    return _completeness(entries, db) or _fee_owners(db) or _funding_owners(db)


def _completeness(entries: list[LedgerEntry], db: pw.Database) -> str | None:
    cash = [e for e in entries if e.is_cash]
    venue = {"fee": -sum((e.fee or Decimal(0) for e in cash), Decimal(0))}
    venue["funding"] = sum((e.realized_funding or Decimal(0) for e in cash), Decimal(0))
    stored = _rows(db, 'SELECT "entry_id", "kind", "amount" FROM "account_charge"')
    held: dict[str, Decimal] = defaultdict(Decimal)
    for _entry, kind, amount in stored:
        held[str(kind)] += Decimal(str(amount))
    for kind, amount in venue.items():
        if held[kind] != amount:
            return f"the registry holds {held[kind]} of {kind}, the venue's account log {amount}"
    unknown = sorted({int(r[0]) for r in stored} - {e.id for e in entries})[:DETAIL_LIMIT]
    if unknown:
        return f"account_charge rows of no venue account-log entry: {unknown}"
    cursor = _rows(db, 'SELECT "last_entry_id" FROM "account_log_cursor"')
    last = entries[-1].id if entries else None
    at = int(cursor[0][0]) if cursor else None
    if at != last:
        return f"the account-log cursor stands at {at}, the venue's last entry is {last}"
    return None


def _fee_owners(db: pw.Database) -> str | None:
    wrong = _rows(
        db,
        'SELECT c."entry_id", c."position_id", f."position_id" FROM "account_charge" c'
        ' LEFT JOIN "fill" f ON f."fill_id" = c."fill_id" WHERE c."kind" = \'fee\''
        ' AND c."position_id" IS NOT f."position_id"',
    )
    if wrong:
        shown = [f"entry {e}: position {got}, its fill's {want}" for e, got, want in wrong[:DETAIL_LIMIT]]
        return f"fees booked against another position than their fill's: {shown}"
    return None


def _funding_owners(db: pw.Database) -> str | None:
    fills: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # symbol -> (fill_ms, position id, signed qty)
    for symbol, position, is_entry, qty, at_ms in _rows(
        db,
        'SELECT p."symbol_key", f."position_id", f."is_entry", f."qty_units", f."fill_ms" FROM "fill" f'
        ' JOIN "position" p ON p."id" = f."position_id"',
    ):
        fills[str(symbol)].append((int(at_ms), int(position), int(qty) if is_entry else -int(qty)))
    wrong: list[str] = []
    for entry, symbol, owner, at_ms in _rows(
        db, 'SELECT "entry_id", "symbol_key", "position_id", "at_ms" FROM "account_charge" WHERE "kind" = \'funding\''
    ):
        holders = _holders(fills[str(symbol)], int(at_ms))
        if (owner is None and holders) or (owner is not None and int(owner) not in holders):
            wrong.append(f"entry {entry} at {at_ms}: position {owner}, holders by the ledger {sorted(holders)}")
    if wrong:
        return f"funding booked against a position that did not hold the symbol then: {wrong[:DETAIL_LIMIT]}"
    return None


def _holders(fills: list[tuple[int, int, int]], at_ms: int) -> set[int]:
    """Positions whose ledger carried quantity into `at_ms`: what their fills before it add up to. The engine books
    funding after a step's triggers and before anything sent at that instant fills, so a fill of the funding's own
    millisecond is after it."""
    held: dict[int, int] = defaultdict(int)
    for fill_ms, position, signed in fills:
        if fill_ms < at_ms:
            held[position] += signed
    return {p for p, qty in held.items() if qty > 0}


def _rows(db: pw.Database, sql: str) -> list[tuple[Any, ...]]:  # SQLite values
    return list(db.execute_sql(sql).fetchall())  # type: ignore[no-untyped-call]
