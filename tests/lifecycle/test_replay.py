"""Replay: the same venue fills, duplicated and shuffled, give the same ledger, positions and quantities."""

from __future__ import annotations

import random
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lifecycle.clock import FakeClock
from lifecycle.errors import OverfillError
from lifecycle.units import units_to_qty
from store.audit import run_audit
from store.registry import Registry
from tests.lifecycle.helpers import verify_chains


@dataclass(frozen=True)
class VenueFill:
    fill_id: str
    symbol: str
    purpose: str  # entry | exit
    units: int
    price: Decimal
    offset_s: int


SYMBOLS = ["PF_XBTUSD", "PF_ETHUSD", "PI_XBTUSD"]


@st.composite
def histories(draw: st.DrawFn) -> list[VenueFill]:
    """Per symbol: some entry fills, then exit fills that never exceed what was entered."""
    fills: list[VenueFill] = []
    n = 0
    for symbol in draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=3, unique=True)):
        entries = draw(st.lists(st.integers(1, 10**6), min_size=1, max_size=4))
        held = sum(entries)
        exits: list[int] = []
        while held and draw(st.booleans()):
            u = draw(st.integers(1, held))
            exits.append(u)
            held -= u
        for purpose, parts in (("entry", entries), ("exit", exits)):
            for u in parts:
                n += 1
                price = Decimal(draw(st.integers(1, 10**7))) / 100
                fills.append(VenueFill(f"F{n}", symbol, purpose, u, price, draw(st.integers(-86400, 86400))))
    return fills


def _replay(path: Path, fills: list[VenueFill]) -> Registry:
    reg = Registry.open(path, FakeClock())
    uids: dict[str, str] = {}
    coids: dict[tuple[str, str], str] = {}
    for symbol in sorted({f.symbol for f in fills}):
        uid = reg.open_intent(symbol=symbol, side="long", target_qty=Decimal(1), stop_price=None, cause="r").uid
        uids[symbol] = uid
        for purpose, side in (("entry", "buy"), ("exit", "sell")):
            o = reg.record_order_intent(uid, purpose=purpose, side=side, order_type="market", qty=Decimal(1))
            coids[(symbol, purpose)] = o.client_order_id
    queue = list(fills)
    # An exit seen before the entries it reduces is refused (OverfillError) and seen again on the next pass,
    # as a reconciliation cycle would.
    while queue:
        retry: list[VenueFill] = []
        for f in queue:
            try:
                reg.record_fill(
                    fill_id=f.fill_id,
                    client_order_id=coids[(f.symbol, f.purpose)],
                    side="buy" if f.purpose == "entry" else "sell",
                    qty=units_to_qty(f.units),
                    price=f.price,
                    fill_time=reg.clock.now() + timedelta(seconds=f.offset_s),
                )
            except OverfillError:
                retry.append(f)
        assert len(retry) < len(queue), "replay made no progress"
        queue = retry
    return reg


def _ledger(path: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute(
            "SELECT f.fill_id, p.symbol_key, f.client_order_id, f.side, f.is_entry, f.qty_units, f.price, f.fill_ms"
            " FROM fill f JOIN position p ON p.id = f.position_id"
        ).fetchall()
        # position uids are random per run: compare the client order id without its uid prefix
        return sorted((r[0], r[1], str(r[2]).split("-", 1)[1], *r[3:]) for r in rows)
    finally:
        con.close()


def _positions(reg: Registry) -> list[tuple[object, ...]]:
    return sorted((p.symbol_key, p.state, p.remaining_qty, p.entry_price) for p in reg.positions())


@given(histories(), st.randoms(use_true_random=False), st.integers(0, 3))
def test_duplicated_shuffled_replay_gives_same_ledger(fills: list[VenueFill], rnd: random.Random, dupes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="replay-") as d:
        _check_replay(Path(d), fills, rnd, dupes)


def _settle(reg: Registry, path: Path) -> list[tuple[object, ...]]:
    """The positions of a finished replay, its chains and audit checked, and the registry closed. Read before the
    next replay opens: `Registry.open` binds the models process-wide, so a registry opened earlier would read
    the later file's rows (comparing the noisy replay with itself)."""
    positions = _positions(reg)
    verify_chains(path)
    assert run_audit(reg.db).violations_total == 0
    reg.close()
    return positions


def _check_replay(base: Path, fills: list[VenueFill], rnd: random.Random, dupes: int) -> None:
    ordered = _settle(_replay(base / "ordered.db", fills), base / "ordered.db")
    noisy = list(fills) + [rnd.choice(fills) for _ in range(dupes * len(fills))]
    rnd.shuffle(noisy)
    replayed = _replay(base / "noisy.db", noisy)
    for symbol in {f.symbol for f in fills}:
        expected = sum(f.units if f.purpose == "entry" else -f.units for f in fills if f.symbol == symbol)
        (pos,) = [p for p in replayed.positions() if p.symbol_key == symbol]
        assert pos.remaining_qty == units_to_qty(expected)
    assert _settle(replayed, base / "noisy.db") == ordered
    assert _ledger(base / "ordered.db") == _ledger(base / "noisy.db")
