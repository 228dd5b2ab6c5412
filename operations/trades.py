"""Trades out of the registry: each position's fills, orders and closing cause read once, handed to the pure
`lifecycle.accounting`, and reported (`TRADE_CLOSED`, the session summary).

The readers use the peewee models as bound by the caller: the daemon's `Registry` (every `Registry` call rebinds
the models to its own file) or a read-only tool's `read_registry`. Nothing here writes. Both see the code's own schema
(the daemon migrates at start, a read-only tool refuses an older file), so the tables are not looked up first.

Fees and funding are the `account_charge` rows the account_log job attributed to each position (docs/money.md).
Until a position's rows are read, its `fees` and `funding` are 0 and nothing in the record says so: that is why
the report tool refuses a registry without any fee row (unless `--gross`) and the Telegram replies say "none
recorded yet", and why `TRADE_CLOSED` may show the fee of the last fill only in later reports.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from lifecycle.accounting import (
    EXIT_REASONS,
    AccountingError,
    Charge,
    LedgerFill,
    PnlEvent,
    PositionBook,
    Summary,
    TradeRecord,
    cents,
    classify_exit,
    equity_curve,
    max_drawdown,
    position_events,
    summarise,
    trade_record,
)
from lifecycle.clock import from_ms, to_ms
from lifecycle.events import Ev, emit
from lifecycle.units import units_to_qty
from specs.lifecycle import TERMINAL_STATES
from store.models import AccountCharge, Position
from store.registry import Registry

log = logging.getLogger("scheduler.session")

# The close path's names for why a position ended (operations.close) -> the accounting's.
_REASON_ALIASES = {"exit": "strategy_exit", "tp": "take_profit"}


@dataclass(frozen=True)
class _Row:
    pk: int
    uid: str
    symbol: str
    side: str
    state: str
    stop_price: str | None
    created_ms: int
    closed_ms: int | None


def _tuples(query: Any) -> list[tuple[Any, ...]]:
    # Plain tuples: no model instance per row, and the foreign keys as ids (peewee's stub types rows as models).
    return list(query.tuples())


@dataclass(frozen=True)
class _FillRow:
    fill_id: str
    client_order_id: str | None
    venue_order_id: str | None
    side: str
    is_entry: bool
    qty_units: int
    price: str
    fill_ms: int


def load_books(*, uids: Iterable[str] | None = None, closed_since_ms: int | None = None) -> list[PositionBook]:
    """Every position with at least one fill (all of them, or `uids`; with `closed_since_ms`, only those closed
    since), as the accounting's input, oldest first. Five fixed statements, whatever the number of positions: the
    positions' ids travel as one JSON parameter (`json_each`), so no statement outgrows SQLite's variable limit,
    and no query is built through the ORM (a backtest reports a trade at every close: its query building was most
    of the report)."""
    conditions, params = ["1"], list[object]()
    if uids is not None:
        conditions.append("uid IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(uids)))
    if closed_since_ms is not None:
        conditions.append("closed_ms >= ?")
        params.append(closed_since_ms)
    rows = [
        _Row(*t)
        for t in _select(
            "SELECT id, uid, symbol_key, side, state, stop_price, created_ms, closed_ms FROM position"  # noqa: S608
            f" WHERE {' AND '.join(conditions)} ORDER BY created_ms, id",  # code; the values are parameters
            params,
        )
    ]
    if not rows:
        return []
    pks = json.dumps([r.pk for r in rows])
    fills: dict[int, list[_FillRow]] = {}
    for owner, fill_id, coid, vid, side, is_entry, *rest in _select(
        "SELECT position_id, fill_id, client_order_id, venue_order_id, side, is_entry, qty_units, price, fill_ms"
        " FROM fill WHERE position_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        [pks],
    ):
        fills.setdefault(int(owner), []).append(_FillRow(fill_id, coid, vid, side, bool(is_entry), *rest))
    purposes: dict[str, str] = {}
    first_stop: dict[int, str] = {}
    for owner, coid, vid, purpose, trigger in _select(
        'SELECT position_id, client_order_id, venue_order_id, purpose, trigger_price FROM "order"'
        " WHERE position_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        [pks],
    ):
        purposes[coid] = purpose
        if vid:
            purposes.setdefault(vid, purpose)
        if purpose == "stop" and trigger and int(owner) not in first_stop:
            first_stop[int(owner)] = trigger
    causes: dict[int, str] = {}
    for owner, cause in _select(
        "SELECT position_id, cause FROM transition WHERE position_id IN (SELECT value FROM json_each(?))"
        " AND target IN (SELECT value FROM json_each(?)) ORDER BY id",
        [pks, json.dumps(sorted(TERMINAL_STATES))],
    ):
        causes[int(owner)] = cause
    charged: dict[int, list[Charge]] = {}
    charge_rows = _select(
        "SELECT position_id, entry_id, kind, amount, at_ms, fill_id FROM account_charge"
        " WHERE position_id IN (SELECT value FROM json_each(?)) ORDER BY entry_id",
        [pks],
    )
    shares = _booked_shares({str(fid) for *_, fid in charge_rows if fid})
    for owner, entry_id, kind, amount, at_ms, fill_id in charge_rows:
        share = shares.get(fill_id, Decimal(1)) if kind == "fee" else Decimal(1)
        charge = Charge(str(entry_id), kind, Decimal(amount) * share, from_ms(at_ms))
        charged.setdefault(int(owner), []).append(charge)
    return [
        replace(
            _book(r, fills[r.pk], purposes, first_stop.get(r.pk), causes.get(r.pk, "")),
            charges=tuple(charged.get(r.pk, ())),
        )
        for r in rows
        if r.pk in fills
    ]


def _select(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
    """A fixed statement on the database the models are bound to (the caller's registry)."""
    cursor = Position._meta.database.execute_sql(sql, tuple(params))
    return list(cursor.fetchall())


def load_unattributed_charges() -> list[PnlEvent]:
    """Fees and funding of no position of ours (a trade by hand, a fill not in the ledger yet): account money all
    the same, so the account's net includes them (uid `-`). With them, the unowned share of the fee of a fill a
    position booked only part of (`_booked_shares`)."""
    query = AccountCharge.select(
        AccountCharge.kind, AccountCharge.amount, AccountCharge.at_ms, AccountCharge.symbol_key
    )
    rows = _tuples(query.where(AccountCharge.position.is_null(True)).order_by(AccountCharge.entry_id))
    out = [PnlEvent(from_ms(at_ms), "-", symbol or "-", kind, Decimal(amount)) for kind, amount, at_ms, symbol in rows]
    split = _select(
        "SELECT c.amount, c.at_ms, c.symbol_key, c.fill_id FROM account_charge c"
        " JOIN unowned_fill u ON u.fill_id = c.fill_id"
        " WHERE c.kind = 'fee' AND c.position_id IS NOT NULL ORDER BY c.entry_id",
        [],
    )
    shares = _booked_shares({str(fid) for *_, fid in split})
    for amount, at_ms, symbol, fill_id in split:
        if fill_id in shares:
            rest = Decimal(amount) * (1 - shares[fill_id])
            out.append(PnlEvent(from_ms(at_ms), "-", symbol or "-", "fee", rest))
    out.sort(key=lambda e: e.time)
    return out


def _booked_shares(fill_ids: set[str]) -> dict[str, Decimal]:
    """For fills attribution split (a hand's trade through zero: the part that closed our position in the ledger,
    the rest in `unowned_fill` under the same fill id): the booked part's share of the whole. The venue charges one
    fee for the whole fill; our trade bears this share of it and the account the rest, so the two still add up."""
    if not fill_ids:
        return {}
    found = _select(
        "SELECT f.fill_id, f.qty_units, u.qty FROM fill f JOIN unowned_fill u ON u.fill_id = f.fill_id"
        " WHERE f.fill_id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(fill_ids))],
    )
    shares: dict[str, Decimal] = {}
    for fill_id, units, rest in found:
        booked = units_to_qty(units)
        shares[str(fill_id)] = booked / (booked + Decimal(str(rest)))
    return shares


def _book(row: _Row, fills: Sequence[_FillRow], purposes: dict[str, str], stop: str | None, cause: str) -> PositionBook:
    ledger = tuple(
        LedgerFill(f.fill_id, f.side, bool(f.is_entry), units_to_qty(f.qty_units), Decimal(f.price), from_ms(f.fill_ms))
        for f in fills
    )
    closed = row.state in TERMINAL_STATES
    reason = None
    if closed:
        exits = [f for f in fills if not f.is_entry]
        owners = [purposes.get(f.client_order_id or "") or purposes.get(f.venue_order_id or "") for f in exits]
        reason = classify_exit(
            exit_purposes=owners,
            fill_ids=[f.fill_id for f in exits],
            close_cause=cause,
        )
    # The first stop order we sent is the one the entry was sized against; a later move does not change the plan.
    initial_stop = stop or row.stop_price
    return PositionBook(
        uid=row.uid,
        symbol=row.symbol,
        side=row.side,
        fills=ledger,
        initial_stop=None if initial_stop is None else Decimal(initial_stop),
        exit_reason=reason,
        opened=from_ms(row.created_ms),
        closed=None if row.closed_ms is None or not closed else from_ms(row.closed_ms),
    )


def load_charge_count() -> int:
    """Fee and funding rows the registry holds (0 while the account log has never been read into it)."""
    return int(_select("SELECT count(*) FROM account_charge", [])[0][0])


def trade_closed_fields(record: TradeRecord) -> dict[str, object]:
    return {
        "uid": record.uid,
        "symbol": record.symbol,
        "side": record.side,
        "qty": record.qty,
        "entry": record.entry_vwap.quantize(Decimal("0.00000001")).normalize(),
        "exit": None if record.exit_vwap is None else record.exit_vwap.quantize(Decimal("0.00000001")).normalize(),
        "net_pnl": cents(record.net),
        "fees": cents(record.fees),
        "funding": cents(record.funding),
        "r": None if record.r_multiple is None else record.r_multiple.quantize(Decimal("0.01")),
        "reason": record.reason,
        "held_s": record.held_s,
    }


def report_trade(registry: Registry, uid: str, *, reason: str | None = None) -> TradeRecord | None:
    """Emit `TRADE_CLOSED` for position `uid`, closed in `registry`, and return its record.

    `reason` is the close path's own word for why it closed (stop, take_profit, exit, phantom, liquidation,
    manual, sync); without it, or with a word that is none of these, the reason is read from the evidence
    (`lifecycle.accounting.classify_exit`).
    Returns None, and logs nothing, for a position that never had a fill (a cancelled or rejected entry) or is
    not terminal yet. Read-only; for a position the registry holds it never raises (a ledger the accounting cannot
    read is one warning line)."""
    registry.get(uid)  # binds the models to this registry's file (and raises UnknownPosition for a wrong uid)
    books = load_books(uids=[uid])
    if not books or books[0].closed is None:
        return None
    book = books[0]
    named = _REASON_ALIASES.get(reason or "", reason)
    if named in EXIT_REASONS:  # a caller's vaguer word ("reconcile", "exits") leaves the evidence's reason
        book = replace(book, exit_reason=named)
    try:
        record = trade_record(book)
    except AccountingError as exc:
        # The close itself already happened; a ledger the accounting cannot read is the audit's finding to make.
        log.warning("TRADE_CLOSED not computed for %s: %s", uid, exc)
        return None
    emit(Ev.TRADE_CLOSED, None, **trade_closed_fields(record))
    return record


@dataclass(frozen=True)
class Session:
    summary: Summary
    records: tuple[TradeRecord, ...]


def session(registry: Registry, since: datetime) -> Session:
    """The trades closed since `since` (a run's start) and their statistics; drawdown on their realised curve."""
    registry.active_positions()  # any Registry call binds the models to its file; load_books reads them
    books = [b for b in load_books(closed_since_ms=to_ms(since)) if b.closed is not None]
    records = tuple(trade_record(b) for b in books)
    curve = equity_curve(e for b in books for e in position_events(b))
    return Session(summarise(records, max_drawdown(curve)), records)


def session_table(s: Session) -> list[str]:
    """The summary as a few aligned lines for the log and the terminal."""
    sm = s.summary
    rate = "-" if sm.win_rate is None else f"{sm.win_rate * 100:.1f} %"
    rows = [
        ("trades", str(sm.trades)),
        ("win rate", rate),
        ("net PnL (USD)", f"{cents(sm.net):,.2f}"),
        ("fees (USD)", f"{cents(sm.fees):,.2f}"),
        ("funding (USD)", f"{cents(sm.funding):,.2f}"),
        ("max drawdown (USD)", f"{cents(sm.max_drawdown):,.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return ["session summary", *(f"  {k.ljust(width)}  {v:>14}" for k, v in rows)]


def log_session_summary(registry: Registry, since: datetime, stream: TextIO | None = None) -> Session | None:
    """`SESSION_SUMMARY`, then the same as a small table on `stream` (stderr) (the daemon's stop, the paper run's
    end). Never raises: a summary must not turn a clean stop into a failed one."""
    try:
        s = session(registry, since)
    except Exception as exc:
        log.warning("SESSION_SUMMARY unavailable: %s: %s", type(exc).__name__, exc)
        return None
    sm = s.summary
    emit(
        Ev.SESSION_SUMMARY,
        trades=sm.trades,
        wins=sm.wins,
        win_rate_pct=None if sm.win_rate is None else (sm.win_rate * 100).quantize(Decimal("0.1")),
        net_pnl=cents(sm.net),
        fees=cents(sm.fees),
        funding=cents(sm.funding),
        max_drawdown=cents(sm.max_drawdown),
    )
    # The table is for the person at the terminal (make run, a service's journal): plain lines, not log records.
    out = stream or sys.stderr
    out.write("\n".join(session_table(s)) + "\n")
    out.flush()
    return s
