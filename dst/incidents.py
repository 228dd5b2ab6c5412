"""The peer incident corpus (issue #6 §4): failure classes that users of other bots reported publicly, replayed as
named scenarios on the DST world. Each ends with the registry matching the venue, every joint invariant clean and
nothing lost (`check_converged`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from dst.harness import World, daemon_step, dst_sim_config
from lifecycle.values import OrderRequest, OrderStatus, PlaceResult
from specs.lifecycle import TERMINAL_STATES
from specs.reconciliation import JOINT_FIELDS
from store.audit import run_audit

XBT = "PF_XBTUSD"


def check_converged(w: World) -> None:
    """Registry = venue, joint invariants clean, every fill of ours booked, audit clean."""
    for _ in range(3):
        daemon_step(w)
    venue = {p.symbol: abs(p.size) for p in w.sim.positions() if p.size}
    registry = {p.symbol_key: p.remaining_qty for p in w.registry.active_positions() if p.remaining_qty > 0}
    assert venue == registry, (venue, registry)
    joint = w.ctx.last_joint
    assert joint is not None and joint.counters() == dict.fromkeys(JOINT_FIELDS, 0), joint
    ours = {o.client_order_id for p in w.registry.positions() for o in w.registry.orders(p.uid)}
    fills = [f for f in w.venue.fills_since(None) if f.client_order_id in ours]
    assert not set(f.fill_id for f in fills) - w.registry.fill_ids_known([f.fill_id for f in fills])
    live = {o.order_id for o in w.sim.open_orders()}
    for pos in w.registry.positions(TERMINAL_STATES):
        assert not {o.venue_order_id for o in w.registry.orders(pos.uid)} & live
    assert run_audit(w.registry.db).violations_total == 0


def enter(w: World, side: str = "long", symbol: str = XBT) -> str:
    w.strategy.entries = {symbol: side}
    daemon_step(w)
    from scheduler.jobs import tick

    tick.run(w.ctx)
    w.strategy.entries = {}
    return next(p.uid for p in w.registry.active_positions() if p.symbol_key == symbol)


def canceled_with_zero_filled_that_filled(tmp: Path) -> World:
    """ccxt issue 28210 / Freqtrade PR 13037: the venue's answer about an order says `canceled` with `filled=0`
    (for a few seconds, or for good) although it filled. The fills are the stronger evidence."""
    w = World(3, tmp)
    real = w.venue.place_order

    def lying(request: OrderRequest) -> PlaceResult:
        result = real(request)
        if request.client_order_id.endswith("-entry-1") and result.order is not None:
            order = dataclasses.replace(result.order, status=OrderStatus.CANCELLED, filled=Decimal(0))
            return dataclasses.replace(result, order=order, fills=())
        return result

    w.venue.place_order = lying  # type: ignore[method-assign]
    uid = enter(w)
    daemon_step(w)  # the fill poll brings the fill the answer denied
    [entry] = [o for o in w.registry.orders(uid) if o.purpose == "entry"]
    assert entry.status == "filled", entry  # the row follows the fills, not the wrong answer
    return w


def stop_fill_of_the_previous_trade(tmp: Path) -> World:
    """Freqtrade issue 13399: a stop fill of the previous trade attributed to a new trade in the opposite direction
    on the same symbol. Here the long's stop fills, a short is entered before the fill poll ran, and the stop's fill
    must close the long, not shrink the short."""
    w = World(4, tmp)
    uid = enter(w, "long")
    stop = w.registry.get(uid).stop_price
    assert stop is not None
    w.sim.set_mark(XBT, stop * Decimal("0.98"))  # gaps through the stop: the venue fills it
    w.sim.advance(1)
    from scheduler.jobs import tick

    w.strategy.entries = {XBT: "short"}
    tick.run(w.ctx)  # the long is still active in the registry: no second entry on a held symbol
    w.strategy.entries = {}
    return w


def liquidated_before_its_stop(tmp: Path) -> World:
    """Freqtrade issue 11570: a position liquidated before its stop was placed. The venue closes it with a fill that
    is not ours; the fills door books it as an external close and the close winds the position down."""
    w = World(5, tmp)
    w.strategy.entries = {XBT: "long"}
    w.sim.advance(30)
    from operations.entry import enter as tick_enter
    from operations.fills import ingest
    from scheduler.jobs import decide

    plans = [p for p in decide.plan_entries(w.ctx, set()) if p.symbol == XBT]
    w.strategy.entries = {}
    # The entry fills, and before protect runs the venue takes the position (its liquidation engine, by hand here).
    real_protect = w.venue.place_order
    calls: list[str] = []

    def no_stop(request: OrderRequest) -> PlaceResult:
        if request.reduce_only:
            calls.append(request.client_order_id)
            w.sim.close_position_direct(request.symbol)  # liquidated just before the stop arrives
        return real_protect(request)

    w.venue.place_order = no_stop  # type: ignore[method-assign]
    tick_enter(w.ctx, plans[0])
    w.venue.place_order = real_protect  # type: ignore[method-assign]
    ingest(w.ctx, w.venue.fills_since(None), source="test")
    assert calls, "the scenario did not reach the stop placement"
    return w


def partly_filled_entry_then_ended(tmp: Path) -> World:
    """Freqtrade issue 9128: an entry replaced (ended) while partly filled, leaving a ghost position. A thin book
    fills a market entry only partly; the position must carry exactly the filled part, protected."""
    w = World(6, tmp, dataclasses.replace(dst_sim_config(6), level_notional_usd=Decimal(20)))
    w.strategy.size[XBT] = Decimal(1)
    enter(w, "long")
    return w


def closed_by_hand(tmp: Path) -> World:
    """Freqtrade PR 8560: a position closed by hand on the exchange."""
    w = World(7, tmp)
    enter(w, "long")
    w.sim.close_position_direct(XBT)
    return w


SCENARIOS: dict[str, Callable[[Path], World]] = {
    "canceled_with_zero_filled_that_filled": canceled_with_zero_filled_that_filled,
    "stop_fill_of_the_previous_trade": stop_fill_of_the_previous_trade,
    "liquidated_before_its_stop": liquidated_before_its_stop,
    "partly_filled_entry_then_ended": partly_filled_entry_then_ended,
    "closed_by_hand": closed_by_hand,
}
