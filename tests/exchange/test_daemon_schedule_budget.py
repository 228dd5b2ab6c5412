"""The daemon's own jobs at their default intervals for half a simulated hour, through the real ccxt client against
the simulator enforcing Kraken's budgets: the venue never answers `apiLimitExceeded` and the client never has to
defer a call. (Daemon harness: tests/daemon/harness.py.)"""

from __future__ import annotations

from pathlib import Path

from simulator.ratelimit import Bucket
from tests.daemon.harness import world


def test_a_normal_half_hour_stays_inside_both_budgets(tmp_path: Path) -> None:
    with world(tmp_path, symbols=("PF_XBTUSD", "PF_ETHUSD")) as w:  # half an hour: enough to trade and stay
        w.strategy.entries["PF_XBTUSD"] = "long"
        w.strategy.entries["PF_ETHUSD"] = "short"
        for step in range(60):  # 30 s apart: protect every step, tick/exits/reconcile every minute, health every 5
            w.advance(30)
            w.protect()
            if step % 2 == 0:
                w.tick()
                w.exits()
                w.reconcile()
            if step % 10 == 0:
                w.health()
        assert w.registry.active_positions()  # the hour did trade
        assert w.sim.budget.refused == {Bucket.DERIVATIVES: 0, Bucket.HISTORY: 0}
        assert sum(w.venue.budget.deferred.values()) == 0
        charged = [r for r in w.sim.request_log if "cost" in r.extra]
        assert charged and not any("lastFillTime" in r.query for r in charged)  # fills: one cheap page a cycle
