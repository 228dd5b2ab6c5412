"""Order stream latency: from a stop's trigger in the simulator to the cancel request of its take-profit.

Both paths run in the same process, against the same simulator server on 127.0.0.1, through the real ccxt clients:
- stream: the fill arrives on the websocket (ccxt.pro), `operations.fills.ingest` closes the position under the
  job lock, the close cancels the take-profit (REST);
- REST only: the exits job polls `/fills` the instant the stop fires (its best case), then does the same. A daemon
  polling every `intervals.protect` seconds waits half an interval on average before that poll; the expected
  REST figure adds it.
The figure is the ratio of medians over RUNS triggers each (the daemon's own context, scripted entries).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from exchange.stream import OrderStream
from lifecycle.events import EVENT_LOGGER
from operations import exits
from scheduler.app import JobRunner
from scheduler.stream_hook import DaemonStreamHandler
from settings.config import IntervalSettings
from tests.daemon.harness import API_KEY, API_SECRET, World, world

RUNS = 100
XBT = "PF_XBTUSD"


class CancelClock:
    """Wraps the server's request handler: the perf_counter time of the first cancel naming `target`."""

    def __init__(self, w: World) -> None:
        self.target: str | None = None
        self.seen = threading.Event()
        self.at = 0.0
        original = w.server.handle

        def handle(method: str, raw_path: str, body: str, headers: Any) -> Any:
            target = self.target
            cancel = raw_path.split("?")[0].endswith("/cancelorder")
            if target is not None and cancel and target in raw_path + body and not self.seen.is_set():
                self.at = time.perf_counter()
                self.seen.set()
            return original(method, raw_path, body, headers)

        w.server.handle = handle  # type: ignore[method-assign]


def one_trigger(w: World, runner: JobRunner, clock: CancelClock, after_trigger: Callable[[], None]) -> float:
    w.strategy.entries[XBT] = "long"
    w.advance(60)
    runner.run("tick", w.tick)  # under the job lock, as in the daemon: the stream ingests the entry fill too
    w.strategy.entries.clear()
    [view] = w.registry.active_positions()
    for _ in range(5):
        if w.registry.get(view.uid).state == "PROTECTED":
            break
        runner.run("protect", w.protect)
    pos = w.registry.get(view.uid)
    assert pos.tp_order_id is not None and pos.stop_price is not None, pos
    mark = w.sim.quote(XBT).mark
    clock.target, clock.at = str(pos.tp_order_id), 0.0
    clock.seen.clear()
    started = time.perf_counter()
    w.sim.set_mark(XBT, Decimal(str(pos.stop_price)) * Decimal("0.99"))
    after_trigger()
    if not clock.seen.wait(10):
        raise RuntimeError("no cancel of the take-profit within 10 s")
    elapsed = clock.at - started
    deadline = time.monotonic() + 10
    while w.registry.active_positions() and time.monotonic() < deadline:
        time.sleep(0.005)
    w.sim.set_mark(XBT, mark)  # back where it was, for the next entry
    return elapsed


def measure(runs: int = RUNS) -> tuple[list[float], list[float]]:
    events = logging.getLogger(EVENT_LOGGER)
    level = events.level
    events.setLevel(logging.ERROR)  # the scripted entries' event lines are not the figure
    try:
        return _measure(runs)
    finally:
        events.setLevel(level)


def _measure(runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), take_profit=True) as w:
        w.strategy.tp_pct = Decimal("0.05")
        clock = CancelClock(w)
        runner = JobRunner(w.registry.db, w.ctx.stats)
        handler = DaemonStreamHandler(w.ctx, runner, lambda _reason: None)
        stream = OrderStream(
            api_key=API_KEY, api_secret=API_SECRET, base_url=w.server.base_url, handler=handler, clock=w.clock
        )
        with stream:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any("open_orders" in c.feeds for c in w.server.ws.connections):
                time.sleep(0.01)
            streamed = [one_trigger(w, runner, clock, lambda: None) for _ in range(runs)]

        def poll_now() -> None:
            runner.run("exits", lambda: exits.run(w.ctx))

        polled = [one_trigger(w, runner, clock, poll_now) for _ in range(runs)]
    return streamed, polled


def run() -> None:
    streamed, polled = measure()
    interval = IntervalSettings().protect
    s, p = statistics.median(streamed), statistics.median(polled)
    expected = p + interval / 2
    print(f"   stop trigger -> take-profit cancel request, median of {len(streamed)} (same process, same simulator):")
    print(f"   stream (websocket -> ingest -> cancel):          {s * 1000:8.1f} ms")
    print(f"   REST, exits job polling the instant it fires:     {p * 1000:8.1f} ms   ({p / s:.2f}x the stream)")
    print(
        f"   REST, expected with intervals.protect={interval:g} s:   {expected * 1000:8.1f} ms   "
        f"({expected / s:.0f}x the stream: half an interval's wait before the poll)"
    )
