"""`exchange.stream.OrderStream` with a recording handler, against the simulator's feeds over 127.0.0.1."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal

from exchange.stream import OrderStream
from lifecycle.values import OrderStatus, OrderType, Side, VenueFill
from simulator.server import SimulatorServer
from tests.daemon.harness import captured_events
from tests.stream.conftest import API_KEY, API_SECRET, XBT, Recorder, market, wait_until


@contextmanager
def listening(
    srv: SimulatorServer,
    handler: Recorder,
    *,
    secret: str = API_SECRET,
    wait: bool = True,
    max_silence_s: float = 5.0,
    degraded_after_s: float = 60.0,
    backoff_max_s: float = 0.3,
) -> Iterator[OrderStream]:
    stream = OrderStream(
        api_key=API_KEY,
        api_secret=secret,
        base_url=srv.base_url,
        handler=handler,
        clock=srv.sim.clock,
        backoff_initial_s=0.05,
        backoff_max_s=backoff_max_s,
        timeout_s=5.0,
        max_silence_s=max_silence_s,
        degraded_after_s=degraded_after_s,
    )
    with stream:
        if wait:
            wait_until(lambda: stream.stats.state == "connected", what="the stream to connect")
            wait_until(lambda: any("open_orders" in c.feeds for c in list(srv.ws.connections)), what="orders feed")
        yield stream


def test_fills_become_venue_fills_with_their_client_order_ids(server: SimulatorServer) -> None:
    rec = Recorder()
    with listening(server, rec) as stream:
        fid = market(server.sim, "sell", "0.02", "coid-7")
        wait_until(lambda: fid in rec.fill_ids(), what="the fill")
    [fill] = [f for f in rec.fills if f.fill_id == fid]
    venue = next(f for f in server.sim.all_fills() if f.fill_id == fid)
    assert fill == VenueFill(fid, venue.order_id, "coid-7", XBT, Side.SELL, Decimal("0.02"), venue.price, venue.time)
    assert stream.stats.fills_received == 1 and stream.stats.last_lag_ms == 0  # FakeClock: no time passed


def test_order_updates_become_venue_orders_and_a_venue_cancel_is_counted(server: SimulatorServer) -> None:
    rec = Recorder()
    sim = server.sim
    with listening(server, rec):
        market(sim)
        placed = sim.place_order(
            symbol=XBT, side="sell", order_type="stp", size=Decimal("0.01"), stop_price=Decimal(1000), reduce_only=True
        )
        assert placed.order is not None
        oid = placed.order.order_id
        wait_until(lambda: any(o.order_id == oid for o in rec.orders), what="the stop's update")
        [stop] = [o for o in rec.orders if o.order_id == oid]
        assert (stop.order_type, stop.trigger_price, stop.reduce_only, stop.status) == (
            OrderType.STOP,
            Decimal(1000),
            True,
            OrderStatus.OPEN,
        )
        assert rec.venue_cancels == 0
        sim.faults.add("cancel_stop")  # the venue cancels the stop by itself (cancelled_by_admin)
        sim.advance(1)
        wait_until(lambda: rec.venue_cancels == 1, what="the venue's cancel")


def test_a_fill_arriving_while_the_previous_one_is_being_delivered_is_not_held_back(server: SimulatorServer) -> None:
    """The first delivery blocks (the job lock is busy); the second fill must still arrive without a third."""
    gate = threading.Event()

    class Busy(Recorder):
        def on_fills(self, fills: Sequence[VenueFill]) -> bool:
            ok = super().on_fills(fills)
            gate.wait(5)
            return ok

    rec = Busy()
    try:
        with listening(server, rec):
            first = market(server.sim)
            wait_until(lambda: first in rec.fill_ids(), what="the first fill")
            second = market(server.sim)
            threading.Timer(0.3, gate.set).start()
            wait_until(lambda: second in rec.fill_ids(), timeout_s=5, what="the second fill, with no third")
    finally:
        gate.set()


def test_duplicate_and_reordered_messages_reach_the_handler_as_they_come(server: SimulatorServer) -> None:
    rec = Recorder()
    with listening(server, rec):
        server.ws.faults.add("duplicate", "fills")
        dup = market(server.sim)
        wait_until(lambda: rec.fill_ids().count(dup) >= 1, what="the duplicated fill")
        market(server.sim)  # one more in order: a duplicate is not a gap
        wait_until(lambda: len(set(rec.fill_ids())) == 2, what="the next fill")
        assert rec.gaps == []
        server.ws.faults.add("reorder", "fills", delay=0.3)
        late = market(server.sim)
        early = market(server.sim)
        wait_until(lambda: late in rec.fill_ids() and early in rec.fill_ids(), what="both fills")
    ids = rec.fill_ids()
    assert ids.index(early) < ids.index(late)  # delivered out of order; fill ids make that harmless downstream
    assert rec.gaps == ["missed_sequence"]  # the overtaking fill's seq skipped one: reconcile from REST now


def test_a_dropped_connection_reconnects_reports_a_gap_and_the_snapshot_brings_the_lost_fill(
    server: SimulatorServer,
) -> None:
    rec = Recorder()
    with captured_events() as ev, listening(server, rec) as stream:
        server.ws.faults.add("drop", "fills")
        lost = market(server.sim)  # its delta is never sent: the connection is cut instead
        wait_until(lambda: stream.stats.connects == 2, what="the reconnect")
        wait_until(lambda: lost in rec.fill_ids(), what="the lost fill, from the new snapshot")
        assert rec.gaps and stream.stats.disconnects == 1
    [down] = ev.named("STREAM_DISCONNECTED")
    assert set(down) == {"reason", "last_message_age_s", "retry_in_s"} and 0 < float(str(down["retry_in_s"])) <= 0.3
    assert len(ev.named("STREAM_CONNECTED")) == 2


def test_silence_past_max_silence_is_a_gap_and_a_reconnect(server: SimulatorServer) -> None:
    rec = Recorder()
    with captured_events() as ev, listening(server, rec, max_silence_s=0.4) as stream:
        server.ws.faults.add("stall", None, delay=1.5)
        market(server.sim)
        wait_until(lambda: stream.stats.connects >= 2, what="the reconnect after the silence")
    lag = ev.named("STREAM_LAG")
    assert lag and lag[0]["state"] == "silent" and float(str(lag[0]["last_message_age_s"])) > 0.4
    assert "silent" in rec.gaps


def test_a_refused_key_backs_off_at_the_cap_and_a_long_outage_is_reported_degraded(server: SimulatorServer) -> None:
    rec = Recorder()
    other = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ="
    with captured_events() as ev, listening(server, rec, secret=other, wait=False, degraded_after_s=0.5) as stream:
        wait_until(lambda: bool(ev.named("STREAM_LAG")), what="the degraded report")
        assert stream.degraded and stream.stats.state != "connected"
    downs = ev.named("STREAM_DISCONNECTED")
    assert downs and {d["reason"] for d in downs} == {"auth_refused"}
    assert all(0.15 <= float(str(d["retry_in_s"])) <= 0.3 for d in downs)  # the cap (0.3 s) with jitter, not 0.05
    [degraded] = ev.named("STREAM_LAG")
    assert degraded["state"] == "degraded"
    assert server.ws.auth_refused >= 1 and rec.fills == []


def test_backoff_is_exponential_capped_and_jittered() -> None:
    stream = OrderStream(
        api_key=API_KEY,
        api_secret=API_SECRET,
        base_url="http://127.0.0.1:9",
        handler=Recorder(),
        backoff_initial_s=0.5,
        backoff_max_s=8.0,
        rng=random.Random(1),
    )
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [stream._backoff(attempt, auth=False) for _ in range(200)]
        assert ceiling / 2 <= min(draws) and max(draws) <= ceiling
        assert max(draws) - min(draws) > ceiling / 4  # jitter: not one value
    assert 4.0 <= stream._backoff(0, auth=True) <= 8.0
