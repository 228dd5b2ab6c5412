"""The smoke run's checks fail when they should: each is fed a venue state that breaks exactly one of them."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from scheduler.smoke import EventCounter, check
from scheduler.startup import Started
from store.audit import run_audit
from tests.daemon.harness import World, world

ALL_FAULTS = {"http_500": True, "cancel_stop": True, "orphan": True}


def _started(w: World) -> Started:
    return Started(w.ctx, w.registry, lambda: run_audit(w.registry.db))


def _traded() -> EventCounter:
    counter = EventCounter()
    counter.counts.update({"ORDER_SUBMITTED": 2, "PROTECTIVE_ORDER_PLACED": 1})
    return counter


def test_a_clean_protected_session_passes(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.strategy.entries["PF_XBTUSD"] = "long"
        w.advance(60)
        w.tick()
        w.reconcile()
        result = check(_started(w), w.sim, _traded(), ALL_FAULTS)
        assert result.failures == []


def test_an_unprotected_venue_position_fails(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.sim.open_position_direct("PF_ETHUSD", "long", Decimal("0.5"))
        w.reconcile()
        result = check(_started(w), w.sim, _traded(), ALL_FAULTS)
        assert [f.split(":")[0] for f in result.failures] == ["protection"]


def test_a_client_order_id_accepted_twice_fails(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.strategy.entries["PF_XBTUSD"] = "long"
        w.advance(60)
        w.tick()
        w.reconcile()
        # The ground truth as it would look had the venue accepted a re-sent entry (the bug the check exists for).
        w.sim.order_log.append(replace(w.sim.order_log[0], order_id="second"))
        result = check(_started(w), w.sim, _traded(), ALL_FAULTS)
        assert [f.split(":")[0] for f in result.failures] == ["duplicates"]
        assert str(w.sim.order_log[0].cli_ord_id) in result.failures[0]


def test_no_trading_and_missing_faults_fail(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        w.reconcile()
        result = check(_started(w), w.sim, EventCounter(), {"http_500": True})
        assert [f.split(":")[0] for f in result.failures] == ["trading", "faults"]
