"""Parity: the same candles through the paper path (the simulator served over HTTP on 127.0.0.1, traded through
the real ccxt adapter built by operations.wiring, as `make run` does) and through the backtest's in-process venue
give the same decisions and the same trades: same bars, same prices, same sizes.

The jobs are driven at each bar close on the virtual clock in both runs; the paper daemon's pacer (wall-clock
acceleration) is left out because it makes the instants at which jobs run nondeterministic.
"""

from __future__ import annotations

import base64
import logging
from contextlib import ExitStack
from decimal import Decimal

from pydantic import SecretStr

from backtest.params import Params
from backtest.run import Result, Spec, VenueFactory, run
from exchange.venue import Venue
from lifecycle.events import EVENT_LOGGER
from operations.context import DaemonContext
from operations.wiring import ccxt_venue
from settings.config import VenueSettings, load_settings
from simulator.engine import Simulator
from simulator.replay import BarReplay
from simulator.server import SimulatorServer
from tests.backtest.series import walk

KEY = "parity-key-0123456789abcdef"
SECRET = base64.b64encode(b"parity-secret-" * 5).decode()


def http_venue(stack: ExitStack) -> VenueFactory:
    def make(sim: Simulator, replays: dict[str, BarReplay], timeframe: str) -> Venue:
        server = stack.enter_context(SimulatorServer(sim, api_key=KEY, api_secret=SECRET))
        settings = VenueSettings(
            base_url=server.base_url, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET), enable_rate_limit=False
        )
        return ccxt_venue(settings, sim.clock)

    return make


class _Decisions(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "DECISION_TRACE":
            f = getattr(record, "event_fields", {})
            self.lines.append((str(f["symbol"]), str(f["verdict"]), str(f["inputs"])))


def _run(spec: Spec, venue: VenueFactory | None) -> tuple[Result, list[tuple[str, str, str]], int]:
    handler = _Decisions()
    logger = logging.getLogger(EVENT_LOGGER)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    calls = {"bars": 0}

    def observe(ctx: DaemonContext) -> None:
        calls["bars"] += 1

    try:
        result = run(spec, observe) if venue is None else run(spec, observe, venue)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    return result, handler.lines, calls["bars"]


def _trades(result: Result) -> list[tuple[object, ...]]:
    return [
        (t.symbol, t.side, t.stop_price, tuple((f.time, f.side, f.qty, f.price, f.is_entry) for f in t.fills))
        for t in result.trades
    ]


def test_paper_path_and_backtest_trade_the_same() -> None:
    settings = load_settings(None)
    bars = {"PF_XBTUSD": tuple(walk(160, seed=61)), "PF_ETHUSD": tuple(walk(160, seed=62, start=Decimal(3000)))}
    params = Params.from_settings(settings).with_values({"channel_bars": "10", "take_profit_r": "2"})
    spec = Spec(bars, "1h", params, settings)
    backtest, backtest_decisions, n = _run(spec, None)
    with ExitStack() as stack:
        paper, paper_decisions, m = _run(spec, http_venue(stack))
    assert backtest.problems == [] and paper.problems == []
    assert n == m == 160
    assert len(backtest.trades) >= 3, "too few trades for the comparison to mean much"
    assert paper_decisions == backtest_decisions
    assert _trades(paper) == _trades(backtest)
    assert [p.equity for p in paper.equity] == [p.equity for p in backtest.equity]
