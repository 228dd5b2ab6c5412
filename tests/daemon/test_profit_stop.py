"""An operator trails a position's stop far into profit by hand, on the venue: a gain locked beyond
`risk.max_stop_distance_pct` of the entry. The daemon's jobs against the simulator over HTTP through real ccxt. The
stop protects more than any stop the daemon would place (a loss of nothing): the daemon adopts it, never moves it,
and its own audit accepts it. Before, the adopted level was `invalid_stop_prices` (the distance bound applied on
both sides of the entry): the next health cycle halted the daemon for good and the next start refused (exit 3)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from lifecycle.stops import stop_problem
from tests.daemon.harness import captured_events, world

XBT = "PF_XBTUSD"
LIMIT = Decimal(25)  # risk.max_stop_distance_pct's default, which the harness's context uses


def test_a_stop_trailed_by_hand_far_into_profit_is_adopted_kept_and_clean(tmp_path: Path) -> None:
    with world(tmp_path) as w, captured_events() as ev:
        uid = w.protected_entry(XBT, "long")
        pos = w.registry.get(uid)
        assert pos.entry_price is not None and pos.sl_order_id is not None
        w.sim.set_mark(XBT, pos.entry_price * Decimal("1.5"))  # a 50 % rally
        w.advance(5)
        tick = w.ctx.instruments[XBT].tick_size
        trail = (pos.entry_price * Decimal("1.3") / tick).to_integral_value() * tick  # 30 % above the entry
        status, _, _ = w.sim.edit_order(pos.sl_order_id, stop_price=trail)  # by hand, on the venue
        assert status == "edited"
        w.protect()
        after = w.registry.get(uid)
        assert after.stop_price == trail and after.state == "PROTECTED"
        [adopted] = ev.named("STOP_PRICE_ADOPTED")
        assert adopted["venue_stop"] == trail
        assert [o.stop_price for o in w.venue_stops(XBT)] == [trail]  # never loosened back to the limit
        w.health()
        assert not ev.named("INVARIANT_VIOLATION") and not w.ctx.safety.invariant_halted
        assert w.audit_ok()
        w.protect()
        assert [o.stop_price for o in w.venue_stops(XBT)] == [trail] and not ev.named("STOP_PRICE_TIGHTENED")


def test_the_distance_bound_still_holds_on_the_loss_side() -> None:
    assert stop_problem("long", Decimal(100), Decimal(74), None, LIMIT) is not None
    assert stop_problem("short", Decimal(100), Decimal(126), None, LIMIT) is not None
    assert stop_problem("long", Decimal(100), Decimal(130), None, LIMIT) is None
    assert stop_problem("short", Decimal(100), Decimal(70), None, LIMIT) is None
