from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock, to_ms
from specs.lifecycle import Event
from store.registry import Registry
from tests.tools_runbook.conftest import Env, registry_dump, run_tool
from tools.monitor_trade_execution import slippage_bps


def test_slippage_sign_is_adverse_positive() -> None:
    assert slippage_bps("buy", Decimal(100), Decimal(101)) == Decimal(100)
    assert slippage_bps("sell", Decimal(100), Decimal(101)) == Decimal(-100)
    assert slippage_bps("sell", Decimal(200), Decimal(199)) == Decimal(50)


def test_monitor_reports_hand_computed_metrics(env: Env) -> None:
    clock = FakeClock(env.clock.now() - timedelta(minutes=10))
    reg = Registry.open(env.db, clock)
    pos = reg.open_intent(
        symbol="PF_XBTUSD", side="long", target_qty=Decimal(2), stop_price=None, take_profit_price=None, cause="t"
    )
    entry = reg.record_order_intent(pos.uid, purpose="entry", side="buy", order_type="limit", qty=Decimal(2),
                                    limit_price=Decimal(100))  # fmt: skip
    reg.mark_order(entry.client_order_id, status="open", venue_order_id="v-1")
    reg.apply(pos.uid, Event.ENTRY_ACKNOWLEDGED, cause="t")
    clock.advance(4)
    for fid, qty, price in (("f1", Decimal(1), Decimal(101)), ("f2", Decimal(1), Decimal(103))):
        reg.record_fill(fill_id=fid, client_order_id=entry.client_order_id, side="buy", qty=qty, price=price,
                        fill_time=clock.now(), venue_order_id="v-1")  # fmt: skip
    rejected = reg.record_order_intent(pos.uid, purpose="stop", side="sell", order_type="stop", qty=Decimal(2),
                                       trigger_price=Decimal(90))  # fmt: skip
    reg.mark_order(rejected.client_order_id, status="rejected", reason="insufficientAvailableFunds")
    reg.close()
    before = registry_dump(env.db)

    run = run_tool("monitor_trade_execution", *env.args("--json"))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["orders_sent"] == 2 and doc["orders_with_fills"] == 1
    assert Decimal(doc["fill_ratio"]) == Decimal("0.5") and Decimal(doc["qty_fill_ratio"]) == Decimal("0.5")
    assert Decimal(doc["slippage_bps"]["mean"]) == Decimal(200)  # vwap 102 vs limit 100 on a buy
    assert Decimal(doc["time_to_fill_s"]["max"]) == Decimal(4)
    assert doc["rejections"] == {"insufficientAvailableFunds": 1}
    assert registry_dump(env.db) == before


def _rows(path: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return list(con.execute("SELECT symbol, timeframe, open_ms, open, close FROM candle ORDER BY 1, 2, 3"))
    finally:
        con.close()


def test_backfill_lists_fills_and_is_idempotent(env: Env) -> None:
    store = env.tmp / "candles.db"
    args = env.args("--candles", str(store), "--hours", "1", "--symbol", "PF_XBTUSD")
    dry = run_tool("backfill_historical_data", *args)
    assert dry.code == 1 and "60 expected, 60 missing" in dry.out
    assert not store.exists()  # a dry-run never creates the store

    done = run_tool("backfill_historical_data", *args, "--execute", "--json")
    assert done.code == 0, done.err
    assert done.json()["series"][0]["written"] == 60
    full = _rows(store)
    assert len(full) == 60 and {r[0] for r in full} == {"PF_XBTUSD"}

    con = sqlite3.connect(store)
    con.execute("DELETE FROM candle WHERE open_ms IN (?, ?, ?)", (full[10][2], full[11][2], full[40][2]))
    con.commit()
    con.close()
    gaps = run_tool("backfill_historical_data", *args, "--json")
    series = gaps.json()["series"][0]
    assert gaps.code == 1 and series["missing"] == 3 and [g["count"] for g in series["gaps"]] == [2, 1]

    refill = run_tool("backfill_historical_data", *args, "--execute", "--json")
    assert refill.code == 0 and refill.json()["series"][0]["written"] == 3
    assert _rows(store) == full  # the same candles back, nothing else touched
    again = run_tool("backfill_historical_data", *args, "--execute", "--json")
    assert again.code == 0 and again.json()["series"][0]["written"] == 0 and _rows(store) == full


def test_monitor_measures_a_market_entry_against_the_strategys_decision_price(env: Env) -> None:
    """A market entry has no limit price; its slippage is measured from the price the strategy decided at (issue 5:
    `monitor_trade_execution` measures entry slippage against the decision price)."""
    clock = FakeClock(env.clock.now() - timedelta(minutes=10))
    reg = Registry.open(env.db, clock)
    pos = reg.open_intent(symbol="PF_XBTUSD", side="short", target_qty=Decimal(1), stop_price=Decimal(210),
                          take_profit_price=None, cause="t", decision_price=Decimal(200))  # fmt: skip
    entry = reg.record_order_intent(pos.uid, purpose="entry", side="sell", order_type="market", qty=Decimal(1))
    reg.mark_order(entry.client_order_id, status="open", venue_order_id="v-9")
    reg.record_fill(fill_id="f9", client_order_id=entry.client_order_id, side="sell", qty=Decimal(1),
                    price=Decimal(199), fill_time=clock.now(), venue_order_id="v-9")  # fmt: skip
    legacy = reg.open_intent(symbol="PF_ETHUSD", side="long", target_qty=Decimal(1), stop_price=Decimal(90),
                             take_profit_price=None, cause="t")  # fmt: skip
    other = reg.record_order_intent(legacy.uid, purpose="entry", side="buy", order_type="market", qty=Decimal(1))
    reg.mark_order(other.client_order_id, status="open", venue_order_id="v-10")
    reg.record_fill(fill_id="f10", client_order_id=other.client_order_id, side="buy", qty=Decimal(1),
                    price=Decimal(101), fill_time=clock.now(), venue_order_id="v-10")  # fmt: skip
    reg.close()

    run = run_tool("monitor_trade_execution", *env.args("--json"))
    assert run.code == 0, run.err
    doc = run.json()
    by_coid = {o["client_order_id"]: o for o in doc["filled_orders"]}
    # sold at 199 after deciding at 200: 50 bps worse for a short
    assert Decimal(by_coid[entry.client_order_id]["slippage_bps"]) == Decimal(50)
    assert Decimal(by_coid[entry.client_order_id]["intended"]) == Decimal(200)
    assert by_coid[other.client_order_id]["slippage_bps"] is None  # no decision recorded: nothing invented
    assert Decimal(doc["slippage_bps"]["count"]) == 1


def _market_entry(env: Env, age: timedelta, symbol: str, fills: list[tuple[str, str]], vid: str) -> str:
    """A long's market entry made `age` ago, decided 1 below its first fill's price, filled by `fills` (id, price) of
    1 contract each two seconds later: its client order id."""
    clock = FakeClock(env.clock.now() - age)
    reg = Registry.open(env.db, clock)
    pos = reg.open_intent(symbol=symbol, side="long", target_qty=Decimal(len(fills)), stop_price=None,
                          take_profit_price=None, cause="t", decision_price=Decimal(fills[0][1]) - 1)  # fmt: skip
    entry = reg.record_order_intent(pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal(len(fills)))
    reg.mark_order(entry.client_order_id, status="open", venue_order_id=vid)
    clock.advance(2)
    for fill_id, price in fills:
        reg.record_fill(fill_id=fill_id, client_order_id=entry.client_order_id, side="buy", qty=Decimal(1),
                        price=Decimal(price), fill_time=clock.now(), venue_order_id=vid)  # fmt: skip
    reg.close()
    return entry.client_order_id


def test_monitor_since_hours_reads_only_the_windows_orders_fills(env: Env) -> None:
    """`--since-hours H` reads the fills of the window's orders only: before, every fill the ledger ever held was
    loaded (a year's ledger is millions of rows) and then discarded, so the daily report of a long-lived registry
    got slower and bigger every day."""
    _market_entry(env, timedelta(hours=5), "PF_XBTUSD", [("f-old", "101")], "v-old")
    recent = _market_entry(env, timedelta(minutes=10), "PF_ETHUSD", [("f-new-1", "201"), ("f-new-2", "203")], "v-new")

    from store.db import connect
    from tools.monitor_trade_execution import load_rows

    db = connect(env.db, readonly=True)
    try:
        orders, fills = load_rows(db, to_ms(env.clock.now() - timedelta(hours=1)))
    finally:
        db.close()
    assert [o.client_order_id for o in orders] == [recent]
    assert sorted(f.fill_id for f in fills) == ["f-new-1", "f-new-2"]

    run = run_tool("monitor_trade_execution", *env.args("--json", "--since-hours", "1"))
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["orders_sent"] == 1 and doc["orders_with_fills"] == 1
    assert Decimal(doc["slippage_bps"]["mean"]) == Decimal(100)  # vwap 202 against the decision at 200
