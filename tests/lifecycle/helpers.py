"""Shared helpers: open a registry on a real SQLite file, drive positions to states, snapshot the database."""

from __future__ import annotations

import itertools
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import cast

from lifecycle.clock import FakeClock
from specs.lifecycle import Event
from store import chain
from store.registry import PositionView, Registry

QTY = Decimal("0.5")
_ids = itertools.count(1)


def open_registry(path: Path, clock: FakeClock | None = None) -> Registry:
    return Registry.open(path, clock or FakeClock())


def snapshot(path: Path) -> list[str]:
    """Every row of every table (a second, plain sqlite3 connection: what a crash-restart would see)."""
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def entry_fill(reg: Registry, uid: str, qty: Decimal = QTY, price: Decimal = Decimal("100")) -> str:
    pos = reg.get(uid)
    entries = [o for o in reg.orders(uid) if o.purpose == "entry"]
    side = "buy" if pos.side == "long" else "sell"
    if entries:
        coid = entries[0].client_order_id
    else:
        coid = reg.record_order_intent(uid, purpose="entry", side=side, order_type="market", qty=qty).client_order_id
    fid = f"fill-{next(_ids)}"
    assert reg.record_fill(
        fill_id=fid, client_order_id=coid, side=side, qty=qty, price=price, fill_time=reg.clock.now()
    )
    return fid


def exit_fill(reg: Registry, uid: str, qty: Decimal | None = None, price: Decimal = Decimal("101")) -> str:
    pos = reg.get(uid)
    side = "sell" if pos.side == "long" else "buy"
    q = pos.remaining_qty if qty is None else qty
    coid = reg.record_order_intent(uid, purpose="exit", side=side, order_type="market", qty=q).client_order_id
    fid = f"fill-{next(_ids)}"
    assert reg.record_fill(fill_id=fid, client_order_id=coid, side=side, qty=q, price=price, fill_time=reg.clock.now())
    return fid


def drive_to(reg: Registry, state: str, symbol: str = "PF_XBTUSD") -> PositionView:
    """A position in `state`, reached by legal steps only. Exposed states hold QTY from one entry fill."""
    if state in ("OPEN", "PROTECTED", "EXITING", "CLOSED"):
        p = reg.import_position(symbol=symbol, side="long", qty=QTY, entry_price=Decimal("100"), cause="test")
        if state == "PROTECTED":
            reg.set_protection(p.uid, sl_order_id="sl-1")
            reg.apply(p.uid, Event.PROTECTION_CONFIRMED, cause="test")
        if state in ("EXITING", "CLOSED"):
            reg.apply(p.uid, Event.EXIT_REQUESTED, cause="test")
        if state == "CLOSED":
            exit_fill(reg, p.uid)
            reg.apply(p.uid, Event.POSITION_CLOSED, cause="test")
        return reg.get(p.uid)
    p = reg.open_intent(symbol=symbol, side="long", target_qty=QTY, stop_price=Decimal("90"), cause="test")
    follow = {"ENTRY_OPEN": "entry_acknowledged", "CANCELLED": "entry_cancelled", "REJECTED": "entry_rejected"}
    if state in follow:
        reg.apply(p.uid, Event(follow[state]), cause="test")
    out = reg.get(p.uid)
    assert out.state == state
    return out


def verify_chains(path: Path) -> None:
    """Recompute both hash chains from the stored rows with store.chain; assert every link and hash."""
    con = sqlite3.connect(path)
    try:
        prev = chain.GENESIS
        rows = con.execute(
            "SELECT position_id, event, source, target, cause, at_ms, prev_hash, row_hash FROM transition ORDER BY id"
        )
        for pid, event, source, target, cause, at_ms, prev_hash, row_hash in rows:
            assert prev_hash == prev
            assert row_hash == chain.transition_hash(prev, pid, event, source, target, cause, at_ms)
            prev = row_hash
        prev = chain.GENESIS
        rows = con.execute(
            "SELECT fill_id, position_id, side, is_entry, qty_units, price, fill_ms, prev_hash, row_hash"
            " FROM fill ORDER BY id"
        )
        for fid, pid, side, is_entry, units, price, fill_ms, prev_hash, row_hash in rows:
            assert prev_hash == prev
            assert row_hash == chain.fill_hash(prev, fid, pid, side, bool(is_entry), units, price, fill_ms)
            prev = row_hash
    finally:
        con.close()


def as_event(name: str) -> Event:
    """`Event(name)`, or the bare name when the spec has no such event: a caller that bypasses the type (a typo in
    untyped code, a value read from outside) must still be refused by the registry with IllegalTransition."""
    if name in {e.value for e in Event}:
        return Event(name)
    return cast(Event, name)
