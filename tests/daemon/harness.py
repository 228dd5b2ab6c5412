"""A whole daemon against the simulator's HTTP server through the real ccxt adapter, driven by hand.

Jobs are called directly (no scheduler thread) and simulated time moves only when a test says so, so every
scenario is deterministic. The strategy is scripted: these tests are about what the daemon does with a
decision, not about which decision the default strategy would take.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from exchange.breaker import CircuitBreaker
from exchange.ccxt_venue import CcxtVenue
from lifecycle.clock import FakeClock
from lifecycle.escalation import Escalator
from lifecycle.events import EVENT_LOGGER
from lifecycle.killswitch import KillSwitch
from lifecycle.reconcile import Reconciliation
from lifecycle.values import Candle, Instrument, PositionSide
from operations import crash, exits
from operations.context import DaemonContext, Limits
from operations.safety import Safety
from scheduler.jobs import health, protect, reconcile, tick
from scheduler.startup import registry_audit
from simulator.engine import SimConfig, Simulator
from simulator.models import SimOrder
from simulator.server import SimulatorServer
from store.audit import run_audit
from store.registry import Registry
from strategy.base import Decision, Verdict

API_KEY = "test-key-0123456789abcdef"
FULL_AUDIT_S = 3600.0
API_SECRET = base64.b64encode(b"test-secret-" * 6).decode()


class Killed(BaseException):
    """The process dying at a named crash point (kill -9, power loss): nothing after it runs, and no
    `except Exception` on the way out catches it."""


@contextmanager
def killed_at(point: str) -> Iterator[None]:
    """The daemon's code raises Killed the first time it passes crash point `point` (operations.crash) inside the
    block: the in-process form of `DAEMON_CRASH_AT`."""
    armed = [True]

    def hook(name: str) -> None:
        if armed[0] and name == point:
            armed[0] = False
            raise Killed(point)

    previous = crash.set_handler(hook)
    try:
        yield
    finally:
        crash.set_handler(previous)


@dataclass
class ScriptedStrategy:
    """Enters the scripted symbols (long unless told otherwise) at mark, with a stop `stop_pct` away."""

    entries: dict[str, str] = field(default_factory=dict)  # symbol -> long | short
    size: dict[str, Decimal] = field(default_factory=dict)
    stop_pct: Decimal = Decimal("0.02")
    tp_pct: Decimal | None = None
    name: str = "scripted"

    exits: dict[str, str] = field(default_factory=dict)  # symbol -> reason: the held position there is exited

    def exit_reason(self, symbol: str, side: PositionSide, candles: Sequence[Candle]) -> str | None:
        return self.exits.get(symbol)

    def analyse(self, symbol: str, candles: Sequence[Candle], instrument: Instrument, equity: Decimal) -> Decision:
        side = self.entries.get(symbol)
        if side is None or not candles:
            return Decision(symbol, Verdict.HOLD, "not scripted", {"candles": len(candles)})
        price = candles[-1].close
        stop = price * (1 - self.stop_pct) if side == "long" else price * (1 + self.stop_pct)
        stop = (stop / instrument.tick_size).quantize(Decimal(1)) * instrument.tick_size
        tp = None
        if self.tp_pct is not None:
            tp = price * (1 + self.tp_pct) if side == "long" else price * (1 - self.tp_pct)
            tp = (tp / instrument.tick_size).quantize(Decimal(1)) * instrument.tick_size
        verdict = Verdict.ENTER_LONG if side == "long" else Verdict.ENTER_SHORT
        size = self.size.get(symbol, instrument.size_increment * 10)
        return Decision(symbol, verdict, "scripted", {"close": price}, price, stop, tp, size, strength=Decimal(1))


@dataclass
class World:
    sim: Simulator
    server: SimulatorServer
    venue: CcxtVenue
    clock: FakeClock
    registry: Registry
    ctx: DaemonContext
    strategy: ScriptedStrategy

    def advance(self, seconds: float) -> None:
        self.sim.advance(seconds)

    def tick(self) -> tick.TickResult:
        return tick.run(self.ctx)

    def protected_entry(self, symbol: str, side: str = "long") -> str:
        """The scripted strategy enters `symbol` on the next bar and protect runs: the uid of the one active position,
        PROTECTED."""
        self.strategy.entries[symbol] = side
        self.advance(60)
        self.tick()
        self.strategy.entries.clear()
        [pos] = self.registry.active_positions()
        self.protect()
        assert self.registry.get(pos.uid).state == "PROTECTED"
        return pos.uid

    def reconcile(self) -> Reconciliation:
        return reconcile.run(self.ctx)

    def protect(self) -> None:
        protect.run(self.ctx)

    def exits(self) -> None:
        exits.run(self.ctx)

    def health(self) -> None:
        """The health job with the daemon's own audit policy (anchored; full once FULL_AUDIT_S has passed)."""
        health.run(self.ctx, registry_audit(self.registry, self.clock, FULL_AUDIT_S))

    def audit_ok(self) -> bool:
        return run_audit(self.registry.db).ok

    def venue_stops(self, symbol: str | None = None) -> list[SimOrder]:
        return [
            o
            for o in self.sim.open_orders()
            if o.order_type == "stp" and o.reduce_only and (symbol is None or o.symbol == symbol)
        ]


@contextmanager
def world(
    tmp_path: Path,
    *,
    seed: int = 1,
    symbols: tuple[str, ...] = ("PF_XBTUSD", "PF_ETHUSD"),
    config: SimConfig | None = None,
    take_profit: bool = False,
    take_profit_r: Decimal | None = None,
    breaker_threshold: int = 3,
) -> Iterator[World]:
    clock = FakeClock()
    sim = Simulator(config or SimConfig(seed=seed, history_minutes=120), clock=clock)
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET) as server:
        venue = CcxtVenue(
            api_key=API_KEY,
            api_secret=API_SECRET,
            base_url=server.base_url,
            timeout_seconds=2.0,
            enable_rate_limit=False,
            breaker=CircuitBreaker(clock, failure_threshold=breaker_threshold, open_seconds=60),
            clock=clock,
        )
        registry = Registry.open(tmp_path / "registry.db", clock)
        strategy = ScriptedStrategy()
        ctx = DaemonContext(
            registry=registry,
            venue=venue,
            clock=clock,
            limits=Limits(symbols=symbols, timeframe="1m", take_profit=take_profit, take_profit_r=take_profit_r),
            instruments=venue.instruments(),
            strategy=strategy,
            safety=Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator()),
        )
        yield World(sim, server, venue, clock, registry, ctx, strategy)


class Events(logging.Handler):
    """Captures the `events` logger: (event name, fields) in order."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, dict[str, object]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        name = getattr(record, "event", None)
        if isinstance(name, str):
            self.lines.append((name, dict(getattr(record, "event_fields", {}))))

    def named(self, name: str) -> list[dict[str, object]]:
        return [f for n, f in self.lines if n == name]

    def clear(self) -> None:
        self.lines.clear()


@contextmanager
def captured_events() -> Iterator[Events]:
    handler = Events()
    logger = logging.getLogger(EVENT_LOGGER)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
