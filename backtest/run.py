"""One backtest: stored bars replayed through the simulator engine in process, on a virtual clock, with the
daemon's own jobs (exits, protect, reconcile, tick, health: the order of `scheduler.startup.build_jobs`) run
once at every bar close, and its account-log job (fees and funding) once a simulated day and at the end. Nothing
here decides a trade or books money; the strategy, the lifecycle, the registry, protection, reconciliation and the
money view are the daemon's.

At the end the registry audit runs in full, the last reconciliation must be clean and the account log must be
read to its end; a run that breaks any of them is returned with `problems` filled (the CLI exits non-zero): that is
a bug found in the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from backtest.bars import width_seconds
from backtest.params import Params
from exchange.venue import Venue
from lifecycle.accounting import PositionBook
from lifecycle.clock import FakeClock, to_ms
from operations import account_log, exits
from operations.context import DaemonContext, Limits
from operations.trades import load_books
from operations.wiring import limits_from, safety_from
from scheduler.jobs import health, protect, reconcile, tick
from settings.config import Settings
from simulator.engine import SimConfig, Simulator
from simulator.instruments import DEFAULT_INSTRUMENTS
from simulator.prices import ReplayCandle
from simulator.replay import BarReplay, ReplayVenue, install
from store.anchors import audit_and_anchor
from store.audit import AuditReport
from store.db import MEMORY
from store.registry import Registry

CLEAN_COUNTERS = ("orphaned", "phantom", "qty_mismatch")
# How often the run reads the engine's account log into the registry (the daemon's account-log job, which runs on
# the health schedule at most once a minute of real time). Reading it at every bar cost a third of a bar: each read
# that stores a row is a write, after which the registry's read cache starts again. What is read does not depend on
# when (the cursor), nor does the attribution (ledger facts, store.charges); the run ends by reading it to its end.
ACCOUNT_LOG_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Spec:
    """Everything one run needs; picklable, so a grid can ship it to another process or a Dask worker."""

    bars: Mapping[str, tuple[ReplayCandle, ...]]
    timeframe: str
    params: Params
    settings: Settings
    fee_rate: Decimal = Decimal("0.0005")  # per fill, of notional; the simulator charges it as taker and maker
    starting_usd: Decimal = Decimal(10000)
    spread_bps: Decimal = Decimal(2)
    registry_path: Path | None = None  # keep the run's registry here (a new file); None: in memory


@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    equity: Decimal  # portfolio value: balance (after fees) + unrealised PnL at mark
    exposed: bool
    hold: Decimal  # buy and hold of the same symbols, equal weight, from the first close: what it would be worth


@dataclass(frozen=True)
class Fill:
    fill_id: str
    time: datetime
    side: str
    qty: Decimal
    price: Decimal
    is_entry: bool


@dataclass(frozen=True)
class Trade:
    symbol: str
    side: str
    state: str
    opened: datetime
    closed: datetime | None
    stop_price: Decimal | None
    contract_size: Decimal
    fills: tuple[Fill, ...]


@dataclass
class Result:
    bars: int
    start: datetime
    end: datetime
    starting_usd: Decimal
    fee_rate: Decimal
    equity: list[EquityPoint] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    # The money view of every traded position, as the daemon's reports read it (operations.trades.load_books):
    # its fills, and the fees and funding the account-log job attributed to it.
    books: list[PositionBook] = field(default_factory=list)
    first_close: dict[str, Decimal] = field(default_factory=dict)
    last_close: dict[str, Decimal] = field(default_factory=dict)
    audit: str = ""
    problems: list[str] = field(default_factory=list)


def build_limits(settings: Settings, params: Params, symbols: Sequence[str], timeframe: str) -> Limits:
    limits = limits_from(settings, tuple(symbols))
    # The candle window must cover the strategy's history; the take-profit follows the run's parameters.
    need = params.donchian().history_needed + 1
    return dataclasses.replace(
        limits,
        timeframe=timeframe,
        candle_limit=max(limits.candle_limit, need),
        take_profit=params.take_profit_r is not None,
        take_profit_r=params.take_profit_r,
    )


VenueFactory = Callable[[Simulator, dict[str, BarReplay], str], Venue]


def replay_venue(sim: Simulator, replays: dict[str, BarReplay], timeframe: str) -> Venue:
    """The backtest's venue: the engine in process, its candles straight from the replay (its fill reads page back
    as `SimVenue.fills_since` does, each page cut from the engine's fills by bisection: `Simulator.fills`)."""
    return ReplayVenue(sim, replays, timeframe)


def run(
    spec: Spec, observe: Callable[[DaemonContext], None] | None = None, venue: VenueFactory = replay_venue
) -> Result:
    """Run the backtest; `observe(ctx)` is called after the jobs of every bar (tests record decisions there).
    `venue` builds the jobs' venue over the engine (the parity test passes the HTTP server + ccxt adapter)."""
    # A throwaway registry lives in memory: the same schema, chains, transactions and audit, without a WAL file,
    # an fsync per commit or the daemon state file the reconcile job publishes beside a registry file each cycle
    # (one file write a bar, a tenth of a quiet bar's cost). `--registry FILE` keeps a real file.
    return _run(spec, spec.registry_path or Path(MEMORY), observe, venue)


def _run(
    spec: Spec, registry_path: Path, observe: Callable[[DaemonContext], None] | None, make_venue: VenueFactory
) -> Result:
    width = width_seconds(spec.timeframe)
    symbols = sorted(spec.bars)
    start = min(spec.bars[s][0].time for s in symbols)
    end = max(spec.bars[s][-1].time for s in symbols)
    clock = FakeClock(start)
    config = SimConfig(
        seed=0,
        starting_usd=spec.starting_usd,
        instruments=tuple(i for i in DEFAULT_INSTRUMENTS if i.symbol in spec.bars),
        step_seconds=Decimal(width) / 4,  # four steps a bar: open, one extreme, the other, close
        history_minutes=0,
        taker_fee=spec.fee_rate,
        maker_fee=spec.fee_rate,
        spread_bps=spec.spread_bps,
        last_noise_bps=Decimal(0),  # mark = last = index = the stored price: triggers see the bar itself
        index_noise_bps=Decimal(0),
        request_log_limit=0,
        replay={s: list(spec.bars[s][:1]) for s in symbols},  # the warm-up instant prices at the first open
    )
    sim = Simulator(config, clock=clock)
    venue = make_venue(sim, install(sim, spec.bars, width), spec.timeframe)
    registry = Registry.open(registry_path, clock)
    try:
        ctx = DaemonContext(
            registry=registry,
            venue=venue,
            clock=clock,
            limits=build_limits(spec.settings, spec.params, symbols, spec.timeframe),
            instruments={s: i for s, i in venue.instruments().items() if s in spec.bars},
            strategy=spec.params.strategy(),
            safety=safety_from(spec.settings),
        )
        steps = (to_ms(end) - to_ms(start)) // (width * 1000) + 1
        result = Result(steps, start, end, spec.starting_usd, spec.fee_rate)
        hold = _HoldCurve(spec.bars, width, spec.starting_usd)
        read_log_at = start + ACCOUNT_LOG_EVERY
        for _ in range(steps):
            sim.advance(width)
            # The daemon's jobs in the daemon's order: a position a stop closed must not get a new stop.
            exits.run(ctx)
            protect.run(ctx)
            reconcile.run(ctx)
            tick.run(ctx)
            health.run(ctx, None)
            if clock.now() >= read_log_at:  # fees and funding: the daemon's account-log job, once a simulated day
                account_log.ingest(registry, venue, clock)
                read_log_at = clock.now() + ACCOUNT_LOG_EVERY
            account = sim.account()
            now = clock.now()
            result.equity.append(EquityPoint(now, account.portfolio_value, bool(sim.positions()), hold.at(now)))
            if observe is not None:
                observe(ctx)
        report = _final_audit(ctx)
        result.audit = report.summary()
        if not report.ok:
            result.problems.append(f"registry audit not clean: {report.summary()}")
        result.problems += _reconciliation_problems(ctx)
        result.problems += _account_log_problems(ctx)
        result.trades = _trades(registry, ctx)
        result.books = load_books()
        for s in symbols:
            result.first_close[s] = spec.bars[s][0].close
            result.last_close[s] = spec.bars[s][-1].close
        return result
    finally:
        registry.close()


class _HoldCurve:
    """Buy and hold at each bar close: the starting equity split equally, bought at each symbol's first close."""

    def __init__(self, bars: Mapping[str, tuple[ReplayCandle, ...]], width_s: int, starting_usd: Decimal) -> None:
        self.bars = bars
        self.width_ms = width_s * 1000
        self.share = starting_usd / len(bars)
        self.index = dict.fromkeys(bars, 0)

    def at(self, now: datetime) -> Decimal:
        total = Decimal(0)
        now_ms = to_ms(now)
        for symbol, series in self.bars.items():
            i = self.index[symbol]
            while i + 1 < len(series) and to_ms(series[i + 1].time) + self.width_ms <= now_ms:
                i += 1
            self.index[symbol] = i
            total += self.share * series[i].close / series[0].close
        return total


def _final_audit(ctx: DaemonContext) -> AuditReport:
    reports: list[AuditReport] = []

    def audit() -> AuditReport:
        reports.append(audit_and_anchor(ctx.registry.db, to_ms(ctx.clock.now()), force_full=True))
        return reports[-1]

    health.run(ctx, audit)  # the health job's own audit step: REGISTRY_AUDIT_REPORT, a halt when it fails
    return reports[-1]


def _account_log_problems(ctx: DaemonContext) -> list[str]:
    """Reads the account log to its end (the bars' reads stop at `account_log.MAX_PAGES` pages): a run whose fees
    and funding are not all in the registry has no money view to report."""
    for _ in range(100):
        if account_log.ingest(ctx.registry, ctx.venue, ctx.clock).complete:
            return []
    return ["the account log could not be read to its end: fees and funding incomplete"]


def _reconciliation_problems(ctx: DaemonContext) -> list[str]:
    rec = ctx.last_reconciliation
    if rec is None or not rec.report.complete:
        return ["last reconciliation missing or incomplete"]
    counters = rec.report.counters()
    bad = {k: counters[k] for k in CLEAN_COUNTERS if counters[k]}
    return [f"last reconciliation not clean: {bad}"] if bad else []


def _trades(registry: Registry, ctx: DaemonContext) -> list[Trade]:
    trades = []
    for pos in registry.positions():
        rows = registry.fills(pos.uid)
        if not rows:
            continue
        fills = tuple(
            Fill(
                fill_id=str(r["fill_id"]),
                time=_dt(r["fill_time"]),
                side=str(r["side"]),
                qty=_dec(r["qty"]),
                price=_dec(r["price"]),
                is_entry=bool(r["is_entry"]),
            )
            for r in rows
        )
        trades.append(
            Trade(
                symbol=pos.symbol_key,
                side=pos.side,
                state=pos.state,
                opened=min(f.time for f in fills),
                closed=pos.closed,
                stop_price=pos.stop_price,
                contract_size=ctx.instruments[pos.symbol_key].contract_size,
                fills=fills,
            )
        )
    trades.sort(key=lambda t: (t.opened, t.symbol))
    return trades


def _dec(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal from the ledger, got {type(value).__name__}")
    return value


def _dt(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime from the ledger, got {type(value).__name__}")
    return value
