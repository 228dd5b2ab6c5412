"""Atomicity, the hash chains, orders and the fill ledger, on real SQLite files."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lifecycle.clock import FakeClock
from lifecycle.errors import MalformedSymbol, OverfillError
from specs.lifecycle import Event
from store.registry import DuplicateActivePosition, FillOnTerminalPosition, Registry, RegistryUsageError
from tests.lifecycle.helpers import drive_to, entry_fill, exit_fill, open_registry, snapshot, verify_chains


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _abort_inserts_into(path: Path, table: str) -> None:
    """A real failure inside the transaction: SQLite itself refuses the insert (a full disk behaves alike)."""
    with _raw(path) as c:
        c.execute(f"CREATE TRIGGER boom BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END")


def test_failed_log_write_leaves_neither_state_nor_row(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "PENDING_ENTRY")
    _abort_inserts_into(path, "transition")
    before = snapshot(path)
    with pytest.raises(Exception, match="injected failure"):
        reg.apply(pos.uid, Event.ENTRY_ACKNOWLEDGED, cause="ack")
    assert snapshot(path) == before
    assert reg.get(pos.uid).state == "PENDING_ENTRY"
    reg.close()


def test_failed_fill_write_leaves_quantity_alone(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "OPEN")
    _abort_inserts_into(path, "fill")
    before = snapshot(path)
    with pytest.raises(Exception, match="injected failure"):
        exit_fill(reg, pos.uid)
    # the exit order intent was its own committed step; the fill and the quantity change are not there
    assert reg.get(pos.uid).remaining_qty == Decimal("0.5")
    assert [r for r in snapshot(path) if "fill" in r.split("(")[0]] == [r for r in before if "fill" in r.split("(")[0]]
    reg.close()


def test_every_change_is_one_log_row_and_chains_verify(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    a = drive_to(reg, "CLOSED", symbol="PF_XBTUSD")
    b = drive_to(reg, "PROTECTED", symbol="PF_ETHUSD")
    c = drive_to(reg, "REJECTED", symbol="PF_SOLUSD")
    with _raw(path) as con:
        counts = dict(
            con.execute(
                "SELECT p.uid, count(*) FROM transition t JOIN position p ON p.id = t.position_id GROUP BY p.uid"
            ).fetchall()
        )
    # import+exit_requested+position_closed; import+protection_confirmed; open_intent+entry_rejected
    assert counts == {a.uid: 3, b.uid: 2, c.uid: 2}
    verify_chains(path)
    reg.close()


def test_chain_detects_an_edited_row(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    drive_to(reg, "CLOSED")
    reg.close()
    with _raw(path) as c:
        c.execute("DROP TRIGGER transition_append_only_update")
        c.execute("UPDATE transition SET cause = 'forged' WHERE id = 2")
    with pytest.raises(AssertionError):
        verify_chains(path)


def test_client_order_ids_are_deterministic_and_safe(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    pos = drive_to(reg, "OPEN")
    ids = [
        reg.record_order_intent(pos.uid, purpose=p, side="sell", order_type=t, qty=Decimal("0.5")).client_order_id
        for p, t in [("stop", "stop"), ("take_profit", "take_profit"), ("stop", "stop"), ("exit", "market")]
    ]
    assert ids == [f"{pos.uid}-stop-1", f"{pos.uid}-takeprofit-1", f"{pos.uid}-stop-2", f"{pos.uid}-exit-1"]
    assert all(re.fullmatch(r"[A-Za-z0-9-]{1,100}", i) for i in ids)
    assert {o.client_order_id for o in reg.unresolved_orders()} == set(ids)
    reg.mark_order(ids[0], status="open", venue_order_id="v-1")
    reg.mark_order(ids[2], status="rejected", reason="invalidPrice")
    reg.mark_order(ids[3], status="filled")
    o = reg.order_by_client_id(ids[2])
    assert o is not None and o.status == "rejected" and o.reason == "invalidPrice" and o.position_uid == pos.uid
    assert [x.client_order_id for x in reg.unresolved_orders()] == [ids[0], ids[1]]
    assert reg.order_by_client_id("missing") is None
    with pytest.raises(RegistryUsageError, match="order status"):
        reg.mark_order(ids[0], status="done")
    with pytest.raises(RegistryUsageError, match="purpose"):
        reg.record_order_intent(pos.uid, purpose="hedge", side="sell", order_type="stop", qty=Decimal(1))
    reg.close()


def test_fill_idempotent_and_average_entry(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "ENTRY_OPEN")
    coid = reg.record_order_intent(
        pos.uid, purpose="entry", side="buy", order_type="limit", qty=Decimal("0.5"), limit_price=Decimal("100")
    ).client_order_id
    now = reg.clock.now()
    args: dict[str, Any] = {"client_order_id": coid, "side": "buy", "fill_time": now}
    assert reg.record_fill(fill_id="a", qty=Decimal("0.2"), price=Decimal("100"), **args)
    before = snapshot(path)
    assert not reg.record_fill(fill_id="a", qty=Decimal("0.2"), price=Decimal("100"), **args)
    assert not reg.record_fill(fill_id="a", qty=Decimal("9"), price=Decimal("1"), **args)  # same id, other data
    assert snapshot(path) == before
    assert reg.record_fill(fill_id="b", qty=Decimal("0.3"), price=Decimal("110"), **args)
    p = reg.get(pos.uid)
    assert p.remaining_qty == Decimal("0.5") and p.entry_price == Decimal("106")
    assert reg.known_fill_ids() == {"a", "b"}
    assert reg.last_fill_time() == now
    assert reg.known_fill_ids(since_ms=int((now + timedelta(seconds=1)).timestamp() * 1000)) == set()
    verify_chains(path)
    reg.close()


def test_overfill_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "OPEN")
    coid = reg.record_order_intent(
        pos.uid, purpose="exit", side="sell", order_type="market", qty=Decimal("0.6")
    ).client_order_id
    before = snapshot(path)
    with pytest.raises(OverfillError, match=r"exceeds position .* remaining 0.5"):
        reg.record_fill(
            fill_id="x",
            client_order_id=coid,
            side="sell",
            qty=Decimal("0.6"),
            price=Decimal(1),
            fill_time=reg.clock.now(),
        )
    assert snapshot(path) == before
    reg.close()


def test_entry_fill_on_terminal_position_is_refused(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    pos = drive_to(reg, "PENDING_ENTRY")
    coid = reg.record_order_intent(pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal("0.5"))
    reg.apply(pos.uid, Event.ENTRY_CANCELLED, cause="gone")
    with pytest.raises(FillOnTerminalPosition, match="run reconciliation"):
        reg.record_fill(
            fill_id="late",
            client_order_id=coid.client_order_id,
            side="buy",
            qty=Decimal("0.5"),
            price=Decimal(1),
            fill_time=reg.clock.now(),
        )
    assert reg.known_fill_ids() == set()
    reg.close()


def test_one_active_position_per_symbol_key(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "OPEN", symbol="BTC/USD:USD")
    before = snapshot(path)
    with pytest.raises(DuplicateActivePosition, match=pos.uid):
        reg.open_intent(symbol="xbtusd", side="long", target_qty=Decimal(1), stop_price=None, cause="dup")
    assert snapshot(path) == before
    # the inverse contract is another instrument
    other = reg.open_intent(symbol="PI_XBTUSD", side="short", target_qty=Decimal(1), stop_price=None, cause="ok")
    assert other.symbol_key == "PI_XBTUSD"
    assert [p.uid for p in reg.active_by_symbol("btc/usd:usd")] == [pos.uid]
    with pytest.raises(MalformedSymbol):
        reg.open_intent(symbol="BTC/EUR:EUR", side="long", target_qty=Decimal(1), stop_price=None, cause="bad")
    reg.close()


def test_import_close_external_and_views(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "reg.db"
    reg = Registry.open(path, clock)
    imp = reg.import_position(
        symbol="ETH/USD:USD", side="short", qty=Decimal("2"), entry_price=Decimal("3000.5"), cause="orphan",
        fill_id="import:kraken:PF_ETHUSD:1",
    )  # fmt: skip
    assert (imp.state, imp.origin, imp.remaining_qty, imp.entry_price) == (
        "OPEN",
        "imported",
        Decimal(2),
        Decimal("3000.5"),
    )
    assert reg.known_fill_ids() == {"import:kraken:PF_ETHUSD:1"}
    clock.advance(60)
    closed = reg.close_external(imp.uid, cause="phantom")
    assert closed.state == "CLOSED" and closed.remaining_qty == 0 and closed.closed == clock.now()
    assert [p.uid for p in reg.positions(["CLOSED"])] == [imp.uid]
    assert reg.active_positions() == []
    verify_chains(path)
    reg.close()


def test_protection_and_prices(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    pos = drive_to(reg, "OPEN")
    reg.set_protection(pos.uid, sl_order_id="sl-9", tp_order_id="tp-9")
    reg.update_prices(pos.uid, stop_price=Decimal("95.5"), take_profit_price=Decimal("120"))
    p = reg.get(pos.uid)
    assert (p.sl_order_id, p.tp_order_id, p.stop_price, p.take_profit_price) == (
        "sl-9",
        "tp-9",
        Decimal("95.5"),
        Decimal("120"),
    )
    reg.set_protection(pos.uid, clear=True)
    assert reg.get(pos.uid).sl_order_id is None
    reg.close()


def test_reopen_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "PROTECTED")
    fid = entry_fill(reg, pos.uid, qty=Decimal("0.25"))
    reg.close()
    again = open_registry(path)
    p = again.get(pos.uid)
    assert p.state == "PROTECTED" and p.remaining_qty == Decimal("0.75") and fid in again.known_fill_ids()
    again.close()


@pytest.mark.parametrize("bad", [Decimal(0), Decimal(-5), Decimal("NaN"), Decimal("Infinity")])
def test_a_decision_price_that_is_not_a_price_creates_nothing(tmp_path: Path, bad: Decimal) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    before = snapshot(path)
    with pytest.raises(RegistryUsageError, match="decision price"):
        reg.open_intent(symbol="PF_XBTUSD", side="long", target_qty=Decimal(1), stop_price=Decimal(90),
                        cause="t", decision_price=bad)  # fmt: skip
    assert snapshot(path) == before
    reg.close()


def test_orders_of_many_positions_is_each_positions_orders_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    first = drive_to(reg, "PENDING_ENTRY")
    second = reg.open_intent(symbol="PF_ETHUSD", side="short", target_qty=Decimal(1), stop_price=Decimal(2), cause="t")
    quiet = reg.open_intent(symbol="PF_SOLUSD", side="long", target_qty=Decimal(1), stop_price=Decimal(1), cause="t")
    for pos, purposes in ((first, ("entry", "stop", "stop")), (second, ("entry", "exit"))):
        for purpose in purposes:
            side = "buy" if (purpose == "entry") == (pos.side == "long") else "sell"
            reg.record_order_intent(pos.uid, purpose=purpose, side=side, order_type="market", qty=Decimal(1))
    got = reg.orders_of([first.uid, second.uid, quiet.uid, "no-such-uid"])
    assert set(got) == {first.uid, second.uid, quiet.uid}  # an unknown uid is left out, not an error
    assert got[quiet.uid] == []
    for uid in (first.uid, second.uid):
        assert got[uid] == reg.orders(uid)  # the same views, in the same order, as one position at a time
    assert [o.purpose for o in got[first.uid]] == ["entry", "stop", "stop"]
    assert all(reg.order_by_client_id(o.client_order_id) == o for o in got[second.uid])  # the by-id path agrees
    assert reg.orders_of([]) == {}
    reg.close()
