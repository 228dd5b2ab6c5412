"""The registry remembers a read until the database changes (`Registry._memo`): every write, its own or another
connection's, committed or rolled back, makes the next read go to SQLite again; callers get their own lists."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from specs.lifecycle import Event
from tests.lifecycle.helpers import drive_to, open_registry


def test_own_writes_are_seen_by_the_next_read(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    assert reg.active_positions() == []
    pos = drive_to(reg, "OPEN")
    assert [p.uid for p in reg.active_positions()] == [pos.uid]
    reg.set_protection(pos.uid, sl_order_id="sl-1")
    reg.apply(pos.uid, Event.PROTECTION_CONFIRMED, cause="test")
    assert reg.get(pos.uid).state == "PROTECTED"
    assert [p.state for p in reg.active_positions()] == ["PROTECTED"]
    order = reg.record_order_intent(pos.uid, purpose="exit", side="sell", order_type="market", qty=Decimal("0.5"))
    assert [o.status for o in reg.orders(pos.uid)] == ["intent"]
    reg.mark_order(order.client_order_id, status="open", venue_order_id="v-1")
    assert [o.status for o in reg.orders(pos.uid)] == ["open"]
    assert [o.status for o in reg.orders_of([pos.uid])[pos.uid]] == ["open"]
    assert [o.client_order_id for o in reg.unresolved_orders()] == [order.client_order_id]
    reg.close()


def test_another_connections_commit_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    reg = open_registry(path)
    pos = drive_to(reg, "OPEN")
    assert reg.position_states([pos.uid]) == {pos.uid: "OPEN"}
    assert len(reg.active_positions()) == 1
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("UPDATE position SET state = 'CLOSED' WHERE uid = ?", (pos.uid,))
    finally:
        other.close()
    assert reg.active_positions() == []
    assert reg.position_states([pos.uid]) == {pos.uid: "CLOSED"}
    assert reg.get(pos.uid).state == "CLOSED"
    reg.close()


def test_a_rolled_back_write_is_not_served_and_nothing_stale_is_either(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    pos = drive_to(reg, "OPEN")
    assert reg.get(pos.uid).state == "OPEN"
    with pytest.raises(RuntimeError), reg.db.atomic():
        reg.db.execute_sql("UPDATE position SET state = 'CLOSED' WHERE uid = ?", (pos.uid,))  # type: ignore[no-untyped-call]
        assert reg.get(pos.uid).state == "CLOSED"  # inside the transaction: its own write
        raise RuntimeError("roll back")
    assert reg.get(pos.uid).state == "OPEN"
    assert [p.uid for p in reg.active_positions()] == [pos.uid]
    reg.close()


def test_callers_get_their_own_containers(tmp_path: Path) -> None:
    reg = open_registry(tmp_path / "reg.db")
    pos = drive_to(reg, "OPEN")
    reg.record_order_intent(pos.uid, purpose="exit", side="sell", order_type="market", qty=Decimal("0.5"))
    reg.active_positions().clear()
    reg.orders(pos.uid).clear()
    reg.orders_of([pos.uid])[pos.uid].clear()
    reg.position_states([pos.uid]).clear()
    reg.order_ids_claimed(["sl-1"], exclude_uid="other").clear()
    assert len(reg.active_positions()) == 1
    assert len(reg.orders(pos.uid)) == 1
    assert len(reg.orders_of([pos.uid])[pos.uid]) == 1
    assert reg.position_states([pos.uid]) == {pos.uid: "OPEN"}
    assert reg.order_ids_claimed(["sl-1"], exclude_uid="other") == set()
    reg.set_protection(pos.uid, sl_order_id="sl-1")
    assert reg.order_ids_claimed(["sl-1"], exclude_uid="other") == {"sl-1"}
    reg.close()
