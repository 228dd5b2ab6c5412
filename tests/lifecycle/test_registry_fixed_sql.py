"""The registry's fixed write statements (`Registry._save`, `Registry._insert`) write exactly what the ORM's
`save()` and `create()` would: the same columns, the same bound values, the key assigned. They replaced the ORM's
per-call query building on every order and position write (bench_registry, bench_backtest); a column added to a
model must reach them without a second edit."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import peewee as pw

from lifecycle.clock import FakeClock
from store.models import EntryDecision, Order, Position
from store.registry import Registry


def _id(row: pw.Model) -> int:
    return int(row.__data__["id"])


def _row(reg: Registry, table: str, row_id: int) -> tuple[object, ...]:
    return tuple(reg.db.execute_sql(f'SELECT * FROM "{table}" WHERE id = ?', (row_id,)).fetchone())  # type: ignore[no-untyped-call]


def test_save_and_insert_write_what_the_orm_writes(tmp_path: Path) -> None:
    reg = Registry.open(tmp_path / "r.db", FakeClock())
    pos = reg.open_intent(
        symbol="PF_XBTUSD",
        side="long",
        target_qty=Decimal(1),
        stop_price=Decimal(90),
        cause="t",
        decision_price=Decimal(100),
    )
    ours = reg._row(pos.uid)
    theirs = Position.get(Position.uid == pos.uid)
    assert ours.__data__ == theirs.__data__
    for row in (ours, theirs):
        row.stop_price, row.sl_order_id, row.remaining_qty_units = "91.5", "sl-1", 7
    theirs.save()
    saved_by_orm = _row(reg, "position", _id(theirs))
    reg._save(ours)
    assert _row(reg, "position", _id(ours)) == saved_by_orm

    order = reg.record_order_intent(pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal(1))
    stored = Order.get(Order.client_order_id == order.client_order_id)
    values = {f.name: stored.__data__[f.name] for f in Order._meta.sorted_fields if f.name != "id"}
    values["client_order_id"] = "other-1"
    by_orm = Order.create(**values)
    by_us = reg._insert(Order, **{**values, "client_order_id": "other-2"})
    assert _id(by_us) == _id(by_orm) + 1
    mine, orms = _row(reg, "order", _id(by_us)), _row(reg, "order", _id(by_orm))
    coid = [f.name for f in Order._meta.sorted_fields].index("client_order_id")
    assert mine[coid] == "other-2" and orms[coid] == "other-1"
    assert mine[1:coid] + mine[coid + 1 :] == orms[1:coid] + orms[coid + 1 :]  # the rest, past the id
    [decision] = EntryDecision.select().where(EntryDecision.position == _id(ours))
    assert Decimal(str(decision.decision_price)) == 100
    reg.close()
