"""The stream inside the daemon: a stop fill on the simulator reaches `operations.fills.ingest` through the real
ccxt.pro client, under the job lock; the close cancels the take-profit on the venue; no REST job runs meanwhile.
Each fault ends with the registry matching the venue and the next REST reconciliation finding nothing to do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.stream import OrderStream
from operations.stats import RunStats
from scheduler.app import Daemon, JobRunner, JobSpec
from scheduler.stream_hook import DaemonStreamHandler, reconcile_now
from simulator.ws import sign_challenge
from tests.daemon.harness import API_KEY, API_SECRET, World, captured_events, world
from tests.stream.conftest import wait_until

XBT = "PF_XBTUSD"


def protected_long(w: World) -> tuple[str, str, str]:
    """A long with its stop and take-profit live on the venue: (uid, stop order id, take-profit order id)."""
    w.strategy.entries[XBT] = "long"
    w.strategy.tp_pct = Decimal("0.05")
    w.advance(60)
    w.tick()
    w.strategy.entries.clear()
    [pos] = w.registry.active_positions()
    assert pos.state == "PROTECTED" and pos.sl_order_id and pos.tp_order_id
    return pos.uid, str(pos.sl_order_id), str(pos.tp_order_id)


@contextmanager
def streaming(w: World, gaps: list[str], max_silence_s: float = 5.0) -> Iterator[OrderStream]:
    w.server.ws.heartbeat_s = 0.1  # well inside max_silence_s: only an injected stall makes the stream silent
    runner = JobRunner(w.registry.db, w.ctx.stats)
    handler = DaemonStreamHandler(w.ctx, runner, gaps.append)
    stream = OrderStream(
        api_key=API_KEY,
        api_secret=API_SECRET,
        base_url=w.server.base_url,
        handler=handler,
        clock=w.clock,
        max_silence_s=max_silence_s,
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        timeout_s=5.0,
    )
    with stream:
        wait_until(lambda: stream.stats.state == "connected", what="the stream to connect")
        wait_until(lambda: any("open_orders" in c.feeds for c in list(w.server.ws.connections)), what="orders feed")
        yield stream


def assert_registry_matches_venue(w: World, tp_id: str) -> None:
    assert w.registry.active_positions() == []
    assert w.sim.positions() == []
    assert w.sim.order(tp_id) is not None and w.sim.order(tp_id).state.value == "cancelled"  # type: ignore[union-attr]
    assert w.sim.open_orders() == []
    venue_fills = {f.fill_id for f in w.sim.all_fills()}
    assert w.registry.fill_ids_known(sorted(venue_fills)) == venue_fills  # every fill once in the ledger
    rec = w.reconcile()  # the REST truth afterwards: nothing left to do
    assert rec.actions == ()
    assert rec.report.complete and sum(rec.report.counters().values()) == 0
    assert w.audit_ok()


FAULTS = [
    pytest.param(None, 0.0, id="clean"),
    pytest.param("drop", 0.0, id="drop"),
    pytest.param("stall", 1.5, id="stall"),
    pytest.param("duplicate", 0.0, id="duplicate"),
    pytest.param("reorder", 0.3, id="reorder"),
    pytest.param("delay", 0.5, id="delay"),
]


@pytest.mark.parametrize(("fault", "delay"), FAULTS)
def test_a_stop_fill_on_the_stream_closes_the_position_and_cancels_its_take_profit(
    tmp_path: Path, fault: str | None, delay: float
) -> None:
    gaps: list[str] = []
    with world(tmp_path, take_profit=True) as w, captured_events() as ev:
        uid, sl_id, tp_id = protected_long(w)
        with streaming(w, gaps, max_silence_s=0.5 if fault == "stall" else 5.0) as stream:
            if fault is not None:
                w.server.ws.faults.add(fault, "fills", delay=delay)
            stop = Decimal(str(w.registry.get(uid).stop_price))
            w.sim.set_mark(XBT, stop * Decimal("0.99"))  # the stop fires; the venue fills it; no REST job runs
            assert w.sim.positions() == []
            wait_until(lambda: w.registry.active_positions() == [], what="the stream to close the position")
            wait_until(lambda: w.sim.open_orders() == [], what="the take-profit to be cancelled")
            if fault in ("drop", "stall"):
                assert gaps, "a lost connection or a silence must ask for a reconciliation"
                assert stream.stats.disconnects >= 1
        assert fault is None or (fault, "fills") in [(k.value, f) for k, f in w.server.ws.faults.fired]
        assert_registry_matches_venue(w, tp_id)
        assert w.registry.get(uid).state == "CLOSED"
        connects = len(ev.named("STREAM_CONNECTED"))
        if fault in ("drop", "stall"):
            assert connects >= 2 and ev.named("STREAM_DISCONNECTED")  # it came back by itself
        else:
            assert connects == 1 and not ev.named("STREAM_DISCONNECTED")
        if fault == "stall":
            assert "silent" in [f["state"] for f in ev.named("STREAM_LAG")]
        assert sl_id not in {o.order_id for o in w.sim.open_orders()}


def test_secrets_and_signed_challenges_never_reach_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, ccxt's and asyncio's included
    gaps: list[str] = []
    with world(tmp_path, take_profit=True) as w:
        uid, _, _ = protected_long(w)
        with streaming(w, gaps):
            w.server.ws.drop_all()  # a reconnect: a second challenge, a second signature
            wait_until(lambda: w.server.ws.accepted >= 2 and len(w.server.ws.challenges_issued) >= 2, what="reconnect")
            stop = Decimal(str(w.registry.get(uid).stop_price))
            w.sim.set_mark(XBT, stop * Decimal("0.99"))
            wait_until(lambda: w.registry.active_positions() == [], what="the close")
        signed = [sign_challenge(c, API_SECRET) for c in w.server.ws.challenges_issued]
    out, err = capfd.readouterr()
    text = caplog.text + out + err
    assert "STREAM_CONNECTED" in caplog.text  # the capture did see the stream's lines
    assert API_SECRET not in text
    for s in signed:
        assert s not in text


def test_a_gap_moves_the_reconcile_job_to_now() -> None:
    ran = threading.Event()
    daemon = Daemon([JobSpec("reconcile", ran.set, 3600)], JobRunner(None, RunStats()))
    daemon.start()
    try:
        wait_until(ran.is_set, what="the first scheduled run")
        ran.clear()
        request = reconcile_now(daemon)
        request("reconnect")
        wait_until(ran.is_set, timeout_s=5.0, what="the reconcile job to run again at once, not in an hour")
    finally:
        daemon.shutdown()


def test_a_fill_nothing_explains_asks_for_a_reconciliation_now(tmp_path: Path) -> None:
    gaps: list[str] = []
    with world(tmp_path) as w, streaming(w, gaps):
        w.sim.open_position_direct("PF_ETHUSD", "long", Decimal("0.1"))  # opened by hand: an orphan's fill
        wait_until(lambda: "unowned_fill" in gaps, what="the reconciliation request")
        assert w.registry.active_positions() == []  # the stream records nothing it cannot attribute
        w.reconcile()  # reconciliation, the judge of unexplained fills: a suspect at the first sighting,
        assert w.reconcile().report.orphaned == 1  # an orphan at the second
