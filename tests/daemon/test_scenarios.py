"""End to end: the daemon's jobs against the simulator over HTTP through real ccxt, one scenario per test.

Each asserts the exact report counters and the event lines an operator would grep for.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from simulator.engine import SimConfig
from specs.lifecycle import Event
from tests.daemon.harness import captured_events, world

XBT = "PF_XBTUSD"
ETH = "PF_ETHUSD"


def _states(w: object) -> dict[str, str]:
    from tests.daemon.harness import World

    assert isinstance(w, World)
    return {p.symbol_key: p.state for p in w.registry.active_positions()}


def test_clean_entry_gets_a_stop_and_the_stop_closes_it(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        result = w.tick()
        assert result.entries == 1
        [pos] = w.registry.active_positions()
        assert pos.state == "PROTECTED"
        assert pos.sl_order_id is not None
        assert [o.order_id for o in w.venue_stops(XBT)] == [pos.sl_order_id]
        traces = ev.named("DECISION_TRACE")
        assert [t["symbol"] for t in traces] == [XBT, ETH]
        assert traces[0]["verdict"] == "enter_long"
        submitted = ev.named("ORDER_SUBMITTED")
        assert [(s["purpose"], s["outcome"]) for s in submitted] == [("entry", "accepted"), ("stop", "accepted")]
        [placed] = ev.named("PROTECTIVE_ORDER_PLACED")
        assert placed["kind"] == "stop_loss" and placed["order_id"] == pos.sl_order_id
        summary = ev.named("CYCLE_SUMMARY")[-1]
        assert summary["positions"] == 1 and summary["state"] == "trading" and summary["orders_placed"] == 2

        # The market falls through the stop; the venue fills it; the exits job closes the position.
        w.strategy.entries.clear()
        stop = Decimal(str(pos.stop_price))
        w.sim.set_mark(XBT, stop * Decimal("0.98"))
        w.advance(2)
        assert w.sim.positions() == []
        w.exits()
        assert w.registry.active_positions() == []
        closed = [t for t in ev.named("POSITION_TRANSITION") if t["event"] == "position_closed"]
        assert len(closed) == 1 and closed[0]["source"] == "PROTECTED"
        rec = w.reconcile()
        assert rec.report.counters() == dict.fromkeys(rec.report.counters(), 0)
        assert w.audit_ok()


def test_orphan_on_the_venue_is_imported_and_protected(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.sim.open_position_direct(ETH, "long", Decimal("0.5"))
        first = w.reconcile()
        assert first.report.orphaned == 0  # first sighting is only a suspect
        w.advance(5)
        second = w.reconcile()
        assert second.report.orphaned == 1
        report = ev.named("RECONCILIATION_REPORT")[-1]
        assert report["orphaned"] == 1 and report["phantom"] == 0 and report["complete"] is True
        issues = ev.named("RECONCILIATION_ISSUE")
        assert [(i["issue"], i["symbol"]) for i in issues] == [("orphaned", ETH)]
        [pos] = w.registry.active_positions()
        assert pos.symbol_key == ETH and pos.remaining_qty == Decimal("0.5")
        w.protect()
        assert len(w.venue_stops(ETH)) == 1
        assert w.registry.get(pos.uid).state == "PROTECTED"
        w.advance(5)
        third = w.reconcile()
        assert (third.report.orphaned, third.report.phantom, third.report.qty_mismatch) == (0, 0, 0)
        assert w.audit_ok()


def test_position_closed_on_the_venue_while_down_is_closed_by_the_venues_own_fill(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        # While the daemon is "down": the position is closed by hand and its stop cancelled.
        manual = w.sim.close_position_direct(XBT)
        assert manual is not None
        w.sim.cancel_silently(str(pos.sl_order_id))
        w.advance(60)
        first = w.reconcile()
        # The venue's fill (no cliOrdId of ours, on a symbol we hold) explains it: booked, not guessed as a phantom.
        assert (first.report.phantom, first.report.qty_synced, first.report.qty_mismatch) == (0, 1, 0)
        assert w.registry.active_positions() == []
        assert [f["fill_id"] for f in w.registry.fills(pos.uid) if not f["is_entry"]] == [manual.fill_id]
        assert [i["issue"] for i in ev.named("RECONCILIATION_ISSUE")] == []
        w.advance(5)
        assert w.reconcile().report.counters() == dict.fromkeys(first.report.counters(), 0)
        assert w.audit_ok()


def test_partial_fill_is_protected_for_the_filled_quantity(tmp_path: Path) -> None:
    # Thin book: a market order walks at most 1 % from the touch, so a large entry fills only partly.
    config = SimConfig(seed=3, history_minutes=120, level_notional_usd=Decimal(20))
    with world(tmp_path, config=config) as w:
        w.strategy.entries[ETH] = "long"
        w.strategy.size[ETH] = Decimal(1)
        w.advance(60)
        w.tick()
        [pos] = w.registry.active_positions()
        [vpos] = w.sim.positions()
        assert Decimal(0) < vpos.size < Decimal(1)
        assert pos.remaining_qty == vpos.size
        [stop] = w.venue_stops(ETH)
        assert stop.size == vpos.size
        w.advance(5)
        rec = w.reconcile()
        assert (rec.report.qty_mismatch, rec.report.orphaned, rec.report.phantom) == (0, 0, 0)
        assert w.audit_ok()


def test_rejected_entry_logs_the_venue_reason(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.sim.faults.add("reject", "sendorder", status="insufficientAvailableFunds")
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        w.tick()
        [rejected] = ev.named("ORDER_REJECTED_BY_VENUE")
        assert rejected["reason"] == "insufficientAvailableFunds"
        assert rejected["purpose"] == "entry" and rejected["symbol"] == XBT
        assert w.registry.active_positions() == []
        assert w.sim.positions() == []
        assert w.audit_ok()


def test_silently_cancelled_stop_is_replaced_within_one_cycle(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        first_stop = str(pos.sl_order_id)
        assert w.sim.cancel_silently(first_stop)
        w.protect()
        after = w.registry.get(pos.uid)
        assert after.state == "PROTECTED"
        assert after.sl_order_id not in (None, first_stop)
        assert [o.order_id for o in w.venue_stops(XBT)] == [after.sl_order_id]
        events = [t["event"] for t in ev.named("POSITION_TRANSITION") if t["position"] == pos.uid]
        assert events[-2:] == ["protection_lost", "protection_confirmed"]
        coids = [o.cli_ord_id for o in w.sim.order_log if o.cli_ord_id]
        assert len(coids) == len(set(coids)) == 3  # entry, first stop, replacement stop
        stops = {o.venue_order_id: o.status for o in w.registry.orders(pos.uid) if o.purpose == "stop"}
        assert stops == {first_stop: "cancelled", after.sl_order_id: "open"}  # the lost one is not left "open"


def test_outage_opens_the_breaker_and_reports_incomplete(tmp_path: Path) -> None:
    with world(tmp_path, breaker_threshold=3) as w, captured_events() as ev:
        w.sim.faults.add("http_503", None, count=None)
        for _ in range(4):
            w.reconcile()
        [opened] = ev.named("API circuit breaker OPENED")
        assert opened["failures"] == 3
        reports = ev.named("RECONCILIATION_REPORT")
        assert len(reports) == 4 and all(r["complete"] is False and r["orphaned"] == 0 for r in reports)
        w.sim.faults.clear()
        w.clock.advance(61)
        assert w.reconcile().report.complete
        assert ev.named("API circuit breaker CLOSED")


def test_margin_spike_trips_and_releases_the_kill_switch(tmp_path: Path) -> None:
    config = SimConfig(seed=5, history_minutes=120, starting_usd=Decimal(1000))
    with world(tmp_path, config=config) as w, captured_events() as ev:
        w.sim.open_position_direct(XBT, "long", Decimal("0.9"))  # initial margin far above 80 % of equity
        w.health()
        [activated] = ev.named("KILL_SWITCH_ACTIVATED")
        assert activated["reason"] == "margin_critical"
        w.strategy.entries[ETH] = "long"
        w.advance(60)
        assert w.tick().entries == 0
        assert ev.named("CYCLE_SUMMARY")[-1]["state"] == "halted_margin_critical"
        w.sim.close_position_direct(XBT)
        w.health()
        assert not ev.named("KILL_SWITCH_RELEASED")  # hysteresis: two calm observations
        w.health()
        [released] = ev.named("KILL_SWITCH_RELEASED")
        assert released["reason"] == "margin_critical"
        assert w.tick().entries == 1


def test_a_daemon_started_at_critical_margin_sends_no_entry_before_its_kill_switch_has_seen_the_margin(
    tmp_path: Path,
) -> None:
    """The runbook's manual way out of margin_critical is a restart, and the kill switch is not carried across one:
    the first cycle runs the tick before the health job's first margin read. No entry goes out meanwhile, because
    the tick's auction reads the margin itself and admits nothing past `auction_max_margin_util`, which the config
    keeps at or below the kill switch's threshold."""
    config = SimConfig(seed=5, history_minutes=120, starting_usd=Decimal(1000))
    with world(tmp_path, config=config) as w, captured_events() as ev:  # a fresh process: no margin observed yet
        # a hand's position whose initial margin (2 %) is 90 % of the equity: critical, yet room for one more entry
        size = (Decimal(45) * w.sim.account().margin_equity / w.sim.quote(XBT).mark).quantize(Decimal("0.0001"))
        w.sim.open_position_direct(XBT, "long", size)
        w.strategy.entries[ETH] = "long"
        w.advance(60)
        orders = len(w.sim.order_log)
        assert w.tick().entries == 0
        assert len(w.sim.order_log) == orders
        assert ev.named("KILL_SWITCH_ACTIVATED") == []  # the health job has not run: the auction held it back
        assert w.ctx.last_margin is not None and w.ctx.last_margin.utilization_pct > 80


def test_take_profit_fill_closes_the_position_and_cancels_its_stop(tmp_path: Path) -> None:
    with world(tmp_path, take_profit=True) as w, captured_events() as ev:
        w.strategy.entries[XBT] = "long"
        w.strategy.tp_pct = Decimal("0.01")
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        assert pos.state == "PROTECTED" and pos.tp_order_id is not None
        kinds = [p["kind"] for p in ev.named("PROTECTIVE_ORDER_PLACED")]
        assert kinds == ["stop_loss", "take_profit"]
        w.sim.set_mark(XBT, Decimal(str(pos.take_profit_price)) * Decimal("1.02"))
        w.advance(2)
        assert w.sim.positions() == []
        orders_before = len(w.sim.order_log)
        w.protect()  # runs before the fills are ingested: must see the TP filled, not re-place it
        assert len(w.sim.order_log) == orders_before
        assert not ev.named("ORDER_REJECTED_BY_VENUE")
        w.exits()
        assert w.registry.active_positions() == []
        assert w.venue_stops(XBT) == []  # the sibling stop was cancelled after the TP closed the position
        assert w.sim.open_orders() == []
        assert w.audit_ok()


def test_repeated_orphans_escalate_and_pause_new_entries(tmp_path: Path) -> None:
    with world(tmp_path, symbols=(XBT, ETH, "PF_SOLUSD", "PF_LTCUSD")) as w, captured_events() as ev:
        for symbol in (ETH, "PF_SOLUSD", "PF_LTCUSD"):
            w.sim.open_position_direct(symbol, "long", w.ctx.instruments[symbol].size_increment * 100)
        w.reconcile()
        w.advance(5)
        rec = w.reconcile()
        assert rec.report.orphaned == 3
        [escalation] = ev.named("ESCALATION")
        assert escalation["field"] == "orphaned" and escalation["action"] == "pause_new_entries"
        assert ev.named("RECONCILIATION_REPORT")[-1]["level"] == "critical"
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        assert w.tick().entries == 0
        assert ev.named("CYCLE_SUMMARY")[-1]["state"] == "paused_escalation"
        w.protect()  # protection is never paused
        assert {o.symbol for o in w.venue_stops()} == {ETH, "PF_SOLUSD", "PF_LTCUSD"}


def test_runtime_audit_breach_halts_entries_for_good_but_protect_runs(tmp_path: Path) -> None:
    import sqlite3

    with world(tmp_path) as w, captured_events() as ev:
        w.sim.open_position_direct(ETH, "long", Decimal("0.5"))
        w.reconcile()
        w.advance(5)
        w.reconcile()
        [pos] = w.registry.active_positions()
        with sqlite3.connect(tmp_path / "registry.db") as conn:
            conn.execute("UPDATE position SET remaining_qty_units = remaining_qty_units + 1 WHERE uid = ?", (pos.uid,))
        w.health()
        [violation] = ev.named("INVARIANT_VIOLATION")
        assert violation["invariant"] == "registry_audit"
        assert "remaining_qty_violations=1" in str(violation["detail"])
        [activated] = ev.named("KILL_SWITCH_ACTIVATED")
        assert activated["reason"] == "invariant_violation"
        w.health()
        assert len(ev.named("KILL_SWITCH_ACTIVATED")) == 1  # sticky, announced once
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        assert w.tick().entries == 0
        assert ev.named("CYCLE_SUMMARY")[-1]["state"] == "halted_invariant_violation"
        w.protect()
        assert len(w.venue_stops(ETH)) == 1


def test_venue_fill_missing_from_the_ledger_is_synced(tmp_path: Path) -> None:
    from lifecycle.values import OrderRequest, OrderType, Side

    with world(tmp_path) as w, captured_events() as ev:
        w.strategy.entries[ETH] = "long"
        w.strategy.size[ETH] = Decimal("0.4")
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        [pos] = w.registry.active_positions()
        # A partial exit was sent and filled, then the process died before recording the fill.
        order = w.registry.record_order_intent(
            pos.uid, purpose="exit", side="sell", order_type="market", qty=Decimal("0.1")
        )
        w.venue.place_order(
            OrderRequest(ETH, Side.SELL, OrderType.MARKET, Decimal("0.1"), order.client_order_id, reduce_only=True)
        )
        w.advance(5)
        rec = w.reconcile()
        assert (rec.report.qty_synced, rec.report.qty_mismatch) == (1, 0)
        [synced] = ev.named("QTY_SYNCED")
        assert (synced["registry_qty"], synced["venue_qty"]) == (Decimal("0.4"), Decimal("0.3"))
        assert w.registry.get(pos.uid).remaining_qty == Decimal("0.3")
        w.protect()
        [stop] = w.venue_stops(ETH)
        assert stop.size - stop.filled == Decimal("0.3")  # the stop follows the position down
        w.advance(5)
        again = w.reconcile()
        assert (again.report.qty_synced, again.report.qty_mismatch) == (0, 0)
        assert w.audit_ok()


def test_adopted_orphan_in_loss_gets_a_stop_below_the_market(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.sim.open_position_direct(ETH, "long", Decimal("0.5"))
        mark = w.sim.quote(ETH).mark
        w.sim.set_mark(ETH, mark * Decimal("0.95"))  # 5 % under water, past the default 2 % stop distance
        w.advance(1)
        w.reconcile()
        w.advance(5)
        w.reconcile()
        w.protect()
        [stop] = w.venue_stops(ETH)
        assert stop.stop_price is not None and stop.stop_price < w.sim.quote(ETH).mark
        assert len(w.sim.positions()) == 1  # protected, not closed by a stop that triggered on placement


def test_a_job_hitting_an_illegal_transition_halts_entries(tmp_path: Path) -> None:
    from scheduler.app import JobRunner
    from scheduler.startup import halt_on_breach

    with world(tmp_path) as w, captured_events() as ev:
        pos = w.registry.open_intent(symbol=ETH, side="long", target_qty=Decimal(1), stop_price=None, cause="test")
        runner = JobRunner(None, w.ctx.stats, lambda job, exc: halt_on_breach(w.ctx, job, exc))

        def venue_timeout() -> None:
            raise TimeoutError("slow venue")

        # An ordinary failure is not a breach: the job fails and the next run goes on.
        assert runner.run("tick", venue_timeout) is False
        assert not ev.named("INVARIANT_VIOLATION") and w.ctx.entries_allowed
        ok = runner.run("reconcile", lambda: w.registry.apply(pos.uid, Event.PROTECTION_CONFIRMED, cause="bug"))
        assert ok is False
        failed = ev.named("JOB_FAILED")
        assert [f["job"] for f in failed] == ["tick", "reconcile"] and "IllegalTransition" in str(failed[1]["error"])
        [violation] = ev.named("INVARIANT_VIOLATION")
        assert violation["invariant"] == "IllegalTransition"
        [activated] = ev.named("KILL_SWITCH_ACTIVATED")
        assert activated["reason"] == "invariant_violation"
        assert not w.ctx.entries_allowed


def test_entry_with_unknown_outcome_is_never_resent_and_settled_by_evidence(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        w.sim.faults.add("http_500", "sendorder", count=1)  # the venue answers 500 and did not execute
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        w.tick()
        w.strategy.entries.clear()
        # Exactly one line per unknown outcome, from where the verdict is final, with what an operator needs.
        [unknown] = ev.named("ORDER_OUTCOME_UNKNOWN")
        [intent] = w.registry.unresolved_orders()
        assert unknown["client_order_id"] == intent.client_order_id
        assert (unknown["symbol"], unknown["purpose"]) == (XBT, "entry")
        assert "no evidence in open orders, order and trigger history" in str(unknown["detail"])
        assert not ev.named("ORDER_REJECTED_BY_VENUE")
        [pos] = w.registry.active_positions()
        assert pos.state == "PENDING_ENTRY"
        w.advance(40)  # past the young-position grace
        assert w.reconcile().report.phantom == 0  # first sighting
        w.advance(5)
        assert w.reconcile().report.phantom == 1
        assert w.registry.get(pos.uid).state == "CANCELLED"
        assert w.registry.unresolved_orders() == []  # settled: the next restart has nothing to look up
        assert w.sim.order_log == []  # never re-sent
        assert w.audit_ok()


def test_damage_before_the_anchors_is_caught_by_the_next_full_audit_and_halts_entries(tmp_path: Path) -> None:
    """Health cycles re-hash only rows after the anchors; once FULL_AUDIT_S has passed, one re-hashes all."""
    import sqlite3

    from tests.daemon.harness import FULL_AUDIT_S

    with world(tmp_path) as w, captured_events() as ev:
        w.sim.open_position_direct(ETH, "long", Decimal("0.5"))
        w.reconcile()
        w.advance(5)
        w.reconcile()
        w.health()
        w.health()
        scopes = [r["scope"] for r in ev.named("REGISTRY_AUDIT_REPORT")]
        assert scopes == ["full", "tail"]
        with sqlite3.connect(tmp_path / "registry.db") as conn:
            conn.execute("DROP TRIGGER transition_append_only_update")
            conn.execute("UPDATE transition SET cause = cause || '!' WHERE id = (SELECT min(id) FROM transition)")
        w.advance(60)
        w.health()  # the old row is before the anchor: this cycle does not re-hash it
        assert ev.named("REGISTRY_AUDIT_REPORT")[-1]["scope"] == "tail"
        assert ev.named("INVARIANT_VIOLATION") == []
        w.advance(FULL_AUDIT_S)
        w.health()
        last = ev.named("REGISTRY_AUDIT_REPORT")[-1]
        assert (last["scope"], last["transition_chain_breaks"]) == ("full", 1)
        [violation] = ev.named("INVARIANT_VIOLATION")
        assert violation["invariant"] == "registry_audit" and "transition#1" in str(violation["detail"])
        w.strategy.entries[XBT] = "long"
        w.advance(60)
        assert w.tick().entries == 0
