"""`SimConfig.history_keep_s` (long paper runs): the embedded simulator keeps only the last window of fills,
account-history events and order-log lines, so a paper daemon's memory does not grow with every trade (before, a
week of trading stayed in memory and every /fills answer sorted all of it). What a reader of the window sees is
unchanged: /fills pages the newest fills, history sequence numbers keep counting and never repeat, and the order
stream's cursor (by sequence number) still finds the events after it. And `/fills` pages are cut by bisection,
equal to the definition's filter-and-sort."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.models import SimFill

XBT = "PF_XBTUSD"
HOUR = 3600


def trade_for(sim: Simulator, minutes: int) -> None:
    for i in range(minutes):
        sim.place_order(symbol=XBT, side="buy" if i % 2 else "sell", order_type="mkt", size=Decimal("0.001"))
        sim.advance(60)


def test_a_bounded_simulator_keeps_the_window_and_counts_on() -> None:
    bounded = Simulator(SimConfig(seed=5, history_minutes=10, history_keep_s=HOUR), clock=FakeClock())
    unbounded = Simulator(SimConfig(seed=5, history_minutes=10), clock=FakeClock())
    for sim in (bounded, unbounded):
        trade_for(sim, 6 * 60)  # six hours, a trade a minute
    everything = unbounded.all_fills()
    kept = bounded.all_fills()
    assert len(everything) == 360 and len(kept) < 200  # about the last hour, dropped in batches
    assert kept == everything[-len(kept) :]  # the same newest fills, in the same order
    assert all(bounded.now() - f.time <= timedelta(seconds=HOUR + 64 * 60) for f in kept)
    assert bounded.fills() == unbounded.fills()  # /fills' newest page is the same
    with bounded.lock, unbounded.lock:
        assert bounded.history_end() == unbounded.history_end()  # sequence numbers count every event ever
        seqs = [e.seq for e in bounded.history()]
        assert seqs == list(range(bounded.history_end() - len(seqs) + 1, bounded.history_end() + 1))
        assert bounded.history_from(0) == bounded.history()  # a reader far behind gets what is left
        cursor = bounded.history_end() - 3
        assert [e.seq for e in bounded.history_from(cursor)] == [e.seq for e in unbounded.history_from(cursor)]
    assert len(bounded.order_log) < 200 and bounded.order_log == unbounded.order_log[-len(bounded.order_log) :]
    kept_log, full_log = bounded.account_log.entries, unbounded.account_log.entries
    assert len(kept_log) < len(full_log) / 2 and [e.id for e in kept_log] == [e.id for e in full_log[-len(kept_log) :]]
    recent, old = unbounded.order_log[-1].order_id, unbounded.order_log[0].order_id
    assert bounded.order(recent) is not None and bounded.order(old) is None  # closed orders before the window


def test_without_a_window_nothing_is_dropped() -> None:
    sim = Simulator(SimConfig(seed=5, history_minutes=10), clock=FakeClock())
    trade_for(sim, 3 * 60)
    assert len(sim.all_fills()) == 180 and len(sim.order_log) == 180
    assert sim.history()[0].seq == 1


def reference_page(sim: Simulator, cursor: datetime | None) -> list[SimFill]:
    """What /fills answers by its definition: the newest `fills_page` fills at or before the cursor, newest first."""
    chosen = [f for f in sim.all_fills() if cursor is None or f.time <= cursor]
    return sorted(chosen, key=lambda f: (f.time, f.seq), reverse=True)[: sim.config.fills_page]


def test_fills_pages_by_bisection_exactly_as_by_definition() -> None:
    """`Simulator.fills` cuts a page from the engine's fills (kept in (time, seq) order) by bisection instead of
    filtering and sorting every fill of the run per page (a backtest's year read them twice a bar); every page,
    at every cursor including ones between and on fill stamps, is the definition's. Several fills share a stamp."""
    sim = Simulator(SimConfig(seed=7, history_minutes=10, fills_page=4), clock=FakeClock())
    for i in range(40):
        for _ in range(1 + i % 3):  # one to three fills with one stamp
            sim.place_order(symbol=XBT, side="buy" if i % 2 else "sell", order_type="mkt", size=Decimal("0.001"))
        sim.advance(60)
    stamps = sorted({f.time for f in sim.all_fills()})
    cursors = [None, *stamps, *(t + timedelta(seconds=1) for t in stamps), stamps[0] - timedelta(seconds=1)]
    for cursor in cursors:
        assert sim.fills(cursor) == reference_page(sim, cursor)


def test_account_log_pages_by_index_equal_the_definitions_filter() -> None:
    """`AccountLog.after` (an index from the dense ids: a year's backtest reads the log every simulated day) answers
    what the definition says, the first `limit` entries with an id above the cursor, with entries dropped from the
    front of a bounded log too."""
    bounded = Simulator(SimConfig(seed=5, history_minutes=10, history_keep_s=HOUR), clock=FakeClock())
    trade_for(bounded, 3 * 60)
    log = bounded.account_log
    assert log.dropped > 0
    last = log.entries[-1].id
    for after in (None, 0, 1, log.dropped - 1, log.dropped, log.dropped + 1, last - 7, last - 1, last, last + 5):
        for limit in (1, 3, 500):
            expected = [e for e in log.entries if after is None or e.id > after][:limit]
            assert log.after(after, limit) == expected, (after, limit)
