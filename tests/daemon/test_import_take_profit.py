"""An imported position gets a take-profit like a strategy entry when `risk.take_profit_r` is set: the daemon's
jobs against the simulator over HTTP through real ccxt, then `tools.check_tp_coverage` on the same registry.

Before, an import (an adopted orphan, `sync_positions --execute`) never carried a TP price, so with
`take_profit_r` set the coverage tool reported a gap for it for ever and nothing could close that gap.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from strategy.sizing import take_profit_at
from tests.daemon.harness import World, captured_events, world
from tests.tools_runbook.conftest import run_tool

XBT = "PF_XBTUSD"
R = Decimal(2)


def adopt(w: World, side: str, size: Decimal = Decimal("0.01")) -> str:
    w.sim.open_position_direct(XBT, side, size)
    w.reconcile()
    w.advance(5)
    w.reconcile()
    [pos] = w.registry.active_positions()
    return pos.uid


def take_profits(w: World) -> list[tuple[str, Decimal | None, Decimal, bool]]:
    return [
        (o.side, o.stop_price, o.size, o.reduce_only)
        for o in w.sim.open_orders()
        if o.symbol == XBT and o.order_type == "take_profit"
    ]


def coverage(tmp_path: Path, db: Path) -> dict[str, object]:
    config = tmp_path / "coverage.toml"
    config.write_text(f'mode = "paper"\ndb_path = "{db}"\nsymbols = ["{XBT}"]\n[risk]\ntake_profit_r = {R}\n')
    run = run_tool("check_tp_coverage", "--config", str(config), "--offline", "--json")
    report: dict[str, object] = run.json()
    report["exit"] = run.code
    return report


def test_an_adopted_orphan_gets_a_take_profit_at_r_times_its_stop_distance(tmp_path: Path) -> None:
    with world(tmp_path, take_profit=True, take_profit_r=R) as w, captured_events() as ev:
        before = coverage(tmp_path, tmp_path / "registry.db")
        uid = adopt(w, "long")
        assert coverage(tmp_path, tmp_path / "registry.db")["gaps"] == 1  # imported: no stop, no TP yet
        w.protect()
        pos = w.registry.get(uid)
        assert pos.state == "PROTECTED" and pos.entry_price is not None and pos.stop_price is not None
        tick = w.ctx.instruments[XBT].tick_size
        expected = take_profit_at(pos.entry_price, pos.stop_price, R, tick, long=True)
        assert expected is not None and pos.take_profit_price == expected
        assert take_profits(w) == [("sell", expected, Decimal("0.01"), True)]
        [placed] = [e for e in ev.named("PROTECTIVE_ORDER_PLACED") if e["kind"] == "take_profit"]
        assert placed["trigger_price"] == expected
        w.protect()  # idempotent: the stored target is reused, nothing new is sent
        assert len(take_profits(w)) == 1
        report = coverage(tmp_path, tmp_path / "registry.db")
        assert (report["exit"], report["gaps"]) == (0, 0), report
        assert before["gaps"] == 0
        assert w.audit_ok()


def test_a_short_import_gets_its_target_below_the_entry(tmp_path: Path) -> None:
    with world(tmp_path, take_profit=True, take_profit_r=R) as w:
        uid = adopt(w, "short")
        w.protect()
        pos = w.registry.get(uid)
        assert pos.entry_price is not None and pos.stop_price is not None and pos.take_profit_price is not None
        assert pos.stop_price > pos.entry_price > pos.take_profit_price
        assert take_profits(w) == [("buy", pos.take_profit_price, Decimal("0.01"), True)]


def test_no_target_is_placed_where_the_market_already_is_beyond_it(tmp_path: Path) -> None:
    """A take-profit there would trigger at once and close the imported position: that is the operator's call."""
    with world(tmp_path, take_profit=True, take_profit_r=R) as w:
        uid = adopt(w, "long")
        entry = w.registry.get(uid).entry_price
        assert entry is not None
        w.sim.set_mark(XBT, entry * Decimal("1.10"))  # past entry + 2 R (the adopted stop is 2 % below the entry)
        w.protect()
        pos = w.registry.get(uid)
        assert pos.state == "PROTECTED"  # the stop is what protection means; it is placed
        assert pos.take_profit_price is None and take_profits(w) == []
        w.sim.set_mark(XBT, entry)  # back below the target: the next protect run places it
        w.protect()
        assert w.registry.get(uid).take_profit_price is not None and len(take_profits(w)) == 1


def test_without_take_profit_r_an_import_gets_no_target(tmp_path: Path) -> None:
    with world(tmp_path, take_profit=True, take_profit_r=None) as w:
        uid = adopt(w, "long")
        w.protect()
        assert w.registry.get(uid).take_profit_price is None and take_profits(w) == []
