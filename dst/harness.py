"""Deterministic simulation testing: the whole daemon — every job, the operations layer, the registry on a real
SQLite file in a temp dir — in process against the simulator engine, on a virtual clock, driven by a seeded
schedule of venue events, venue faults, clock steps, crashes and restarts.

One seed is one schedule. The world is deterministic given the seed (the simulator's prices, the schedule and every
fault decision come from it), so a failing seed replays exactly: `make dst SEED=<n> STEPS=<k>` (or `python -m dst
--seed <n> --steps <k>`). Each step draws its event and the event's parameters from its own generator, seeded by
(seed, step), so a schedule can be replayed with some of its events left out (`KEEP=`, the other steps quiet
slices: time passes and the jobs run): that is how `dst.shrink` cuts a failing schedule down. After every step
the harness checks:
- the registry audit is clean;
- every joint invariant (lifecycle.joint) past its grace is zero after a reconciliation;
- exactly one order was accepted by the venue per client order id, and at most one entry order per position (no
  duplicate order for one intent, whatever the replies said), and at most one send per client order id left the
  process (a 429, which places nothing, excepted);
- no fill of ours is lost: after the fill poll and reconciliation every venue fill of our orders is in the ledger;
- an exposed position the venue holds is left without its stop for at most one protect cycle;
- no entry order is sent while entries are halted (the kill switch, the escalator, the operator's pause);
- the money view: the registry's fees and funding are the venue's account log's, each on the position that owns it
  (dst/money.py).

Half the seeds run the daemon's order stream beside REST polling (`World.deliver_stream`: the venue's new fills
through the daemon's own stream handler, before and after each job).

Venue faults (dst/faults.py) are served through the `Venue` interface as the real adapter surfaces them. A fault
legitimately delays convergence (no stop can be placed during a 5xx storm), so the graces of the last four checks
count only *clean* slices: slices in which the venue answered every call (no fault served, no crash, the daemon up).
The joint invariants are failed when the daemon counts a finding past its grace *and* the harness's own streak of
clean slices with that finding is past the same grace (docs/dst.md, "Graces under faults").
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dst.faults import Fault, FaultyVenue, SkewedClock, Window
from dst.money import money_finding
from exchange.errors import VenueError
from lifecycle.clock import FakeClock, VenueClock, to_ms
from lifecycle.escalation import Escalator
from lifecycle.events import EVENT_LOGGER, Ev, emit
from lifecycle.joint import GRACE
from lifecycle.killswitch import KillSwitch
from lifecycle.values import VenueFill
from operations import account_log, crash, exits, protection
from operations.context import DaemonContext, Limits
from operations.recovery import recover_in_flight
from operations.safety import Safety
from operations.stats import RunStats
from scheduler.app import JobRunner
from scheduler.jobs import health, reconcile, tick
from scheduler.stream_hook import DaemonStreamHandler
from simulator.engine import SimConfig, Simulator
from simulator.instruments import DEFAULT_INSTRUMENTS, InstrumentSpec
from simulator.margin import initial_margin
from simulator.venue import SimVenue
from specs.lifecycle import ORDER_UNRESOLVED_STATUSES, PROTECTABLE_STATES, TERMINAL_STATES, State
from specs.reconciliation import JOINT_FIELDS
from store.anchors import audit_and_anchor
from store.audit import run_audit
from store.db import scratch_dir
from store.registry import Registry
from tests.daemon.harness import ScriptedStrategy

SYMBOLS = ("PF_XBTUSD", "PF_ETHUSD")
UNTRADED_SYMBOL = "PF_SOLUSD"
STEP_SECONDS = 30  # one scheduled daemon step is 30 simulated seconds: every job runs at least once a minute
# Joint invariants the harness provokes on purpose and that an operator must resolve: reported, not failures of the
# daemon. None since fills no position can own are recorded as unowned and reported once (a hand-made flip, a
# stray): J3 `unbooked_fills` past its grace is now a fill the daemon never accounted for, a failure like the rest.
OPERATOR_FINDINGS: frozenset[str] = frozenset()
CRASH_ARMED_SLICES = 3  # an armed crash point not passed within this many slices is disarmed
STREAM_SHARE = 0.5  # the share of seeds whose daemon runs the order stream beside REST polling
LIQUIDATION_LEVERAGE = 20  # the hand-opened position that gets the account liquidated, in multiples of its equity
# Warning-level events a seed counts (they show which paths the schedule exercised).
COUNTED_EVENTS = frozenset(
    {
        Ev.CREATED_IN_FUTURE.value,
        Ev.STOP_CHURN_LIMIT.value,
        Ev.ORDER_OUTCOME_UNKNOWN.value,
        Ev.POSITION_UNPROTECTABLE.value,
        Ev.KILL_SWITCH_ACTIVATED.value,  # the health job's margin_critical halt (a hand's leveraged position)
        Ev.KILL_SWITCH_RELEASED.value,
    }
)


class SimulatedCrash(BaseException):
    """The daemon process dying at a named crash point (operations.crash): a BaseException, so no `except
    Exception` in the daemon's code can swallow it, as none can swallow a kill -9."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


class DstFailure(AssertionError):
    def __init__(
        self, seed: int, step: int, schedule: list[str], detail: str, keep: frozenset[int] | None = None
    ) -> None:
        self.seed, self.step, self.schedule, self.detail, self.keep = seed, step, schedule, detail, keep
        super().__init__(
            f"DST seed {seed} failed at step {step}: {detail}\n"
            f"replay: {self.replay}\n"
            f"schedule up to the failure: {', '.join(schedule[: step + 1])}"
        )

    @property
    def replay(self) -> str:
        """The one command that replays this failure: the seed, the steps up to the failure, and which steps keep
        their event when some were left out."""
        line = f"make dst SEED={self.seed} STEPS={self.step + 1}"
        if self.keep is None:
            return line
        return f"{line} KEEP={keep_arg(frozenset(k for k in self.keep if k <= self.step))}"


def keep_arg(keep: frozenset[int]) -> str:
    """The steps that keep their event, as `--keep` and `KEEP=` take them ("-" for none: every step quiet)."""
    return ",".join(str(k) for k in sorted(keep)) or "-"


def parse_keep(text: str) -> frozenset[int]:
    """`--keep 3,7,12` (or "-"): which steps keep their event; ValueError on anything else."""
    if text.strip() == "-":
        return frozenset()
    steps = frozenset(int(part) for part in text.split(","))
    if any(step < 0 for step in steps):
        raise ValueError("steps are counted from 0")
    return steps


class _EventCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event in COUNTED_EVENTS:
            self.counts[str(event)] += 1


def dst_sim_config(seed: int) -> SimConfig:
    """The venue of a seed: two hours of history and the symbols the daemon trades, plus one it does not (a venue
    lists contracts the daemon ignores). Only these: each listed contract's prices are stepped every simulated
    second, and the five others of the default list were most of a slice's cost while nothing traded them."""
    listed = {*SYMBOLS, UNTRADED_SYMBOL}
    return SimConfig(
        seed=seed, history_minutes=120, instruments=tuple(i for i in DEFAULT_INSTRUMENTS if i.symbol in listed)
    )


@dataclass
class World:
    seed: int
    tmp: Path
    config: SimConfig | None = None
    clock: FakeClock = field(init=False)
    daemon_clock: SkewedClock = field(init=False)  # the host's clock: the schedule's clock steps move it
    process_clock: VenueClock = field(init=False)  # the daemon process's clock: the venue's time (a new one a start)
    sim: Simulator = field(init=False)
    venue: SimVenue = field(init=False)  # the truth: the harness's checks read the venue here, never through faults
    faults: FaultyVenue = field(init=False)  # what the daemon talks to
    strategy: ScriptedStrategy = field(init=False)
    registry: Registry = field(init=False)
    ctx: DaemonContext = field(init=False)
    down: bool = field(init=False, default=False)  # the process exited (a failed startup); restarted next slice
    crash_at: str | None = field(init=False, default=None)
    crash_slices: int = field(init=False, default=0)
    stats: Counter[str] = field(init=False, default_factory=Counter)
    dropping: dict[str, int] = field(init=False, default_factory=dict)  # symbol -> slices the venue drops stops
    thin: dict[str, int] = field(init=False, default_factory=dict)  # symbol -> slices its book stays thin
    # The order stream (scheduler.stream_hook): on for half the seeds; while `stream_gap` counts slices down, the
    # fills it would deliver are lost to it (REST polling must book them).
    stream: bool = field(init=False, default=False)
    stream_gap: int = field(init=False, default=0)
    streamed: set[str] = field(init=False, default_factory=set)  # fill ids the stream has seen (delivered or lost)
    streamed_until: datetime | None = field(init=False, default=None)
    slices: int = field(init=False, default=0)  # daemon slices run so far (which jobs are due: JOBS)
    log_through: int = field(init=False, default=0)  # the venue's last account-log entry when the log was last read
    squeeze: int = field(init=False, default=0)  # slices a hand's margin squeeze still holds (`_margin_squeeze`)
    ran: set[str] = field(init=False, default_factory=set)  # the jobs that ran to their end in this slice

    def __post_init__(self) -> None:
        self.stream = self.stream_enabled(self.seed)
        self.clock = FakeClock()
        self.daemon_clock = SkewedClock(self.clock)
        self.sim = Simulator(self.config or dst_sim_config(self.seed), clock=self.clock)
        self.venue = SimVenue(self.sim)
        self.faults = FaultyVenue(self.venue, random.Random(f"{self.seed}:faults"))
        self.strategy = ScriptedStrategy()
        self.start()

    def start(self) -> None:
        """A (re)start: a new process's context over the same registry file, then recovery of in-flight orders and
        the startup reconciliation, as `scheduler.startup.recover_and_reconcile` runs them (its snapshot anchors the
        new process's clock to the venue's time before any job runs). A venue error during startup (instruments,
        the recovery's lookups) or a crash point firing in it ends the process: `down` until the next slice starts
        it again, as systemd would."""
        # A new process: its clock is the host's until its first snapshot anchors it to the venue's time, then
        # follows the host's monotonic clock (scheduler.startup.run_live builds the same).
        self.process_clock = VenueClock(self.daemon_clock, self.daemon_clock.monotonic)
        self.registry = Registry.open(self.tmp / "registry.db", self.process_clock)
        self.down = True
        self.stats["starts"] += 1
        try:
            instruments = self.faults.instruments()
            self.ctx = DaemonContext(
                registry=self.registry,
                venue=self.faults,
                clock=self.process_clock,
                limits=Limits(symbols=SYMBOLS, timeframe="1m", take_profit=True, take_profit_r=Decimal(2)),
                instruments=instruments,
                strategy=self.strategy,
                safety=Safety(KillSwitch(Decimal(80), Decimal(5), 2), Escalator()),
            )
            recover_in_flight(self.ctx, checks=1, wait_s=0, sleep=lambda _s: None)
            reconcile.run(self.ctx)
        except VenueError as exc:
            self.stats["failed_starts"] += 1
            emit(Ev.JOB_FAILED, job="startup", error=f"{type(exc).__name__}: {exc}")
            return
        except SimulatedCrash:
            self.stats["crashes"] += 1
            self.stats["failed_starts"] += 1
            return
        self.down = False

    def entries_halted(self) -> bool:
        """The running process holds new entries (the kill switch, the escalator or the operator's pause)."""
        return not self.down and not self.ctx.safety.allows_new_entries

    def restart(self) -> None:
        self.registry.db.close()
        self.start()

    def close(self) -> None:
        self.registry.db.close()

    def job(self, name: str, func: Callable[[DaemonContext], object]) -> str:
        """One job as the scheduler runs it: a venue error is a JOB_FAILED line and the next run goes on; any other
        exception is a defect and fails the seed. A crash point that fires ends the process here and starts a new
        one (recovery included); the returned note says so ("" otherwise)."""
        try:
            func(self.ctx)
        except VenueError as exc:
            self.stats["job_failures"] += 1
            emit(Ev.JOB_FAILED, job=name, error=f"{type(exc).__name__}: {exc}")
        except SimulatedCrash as crashed:
            self.stats["crashes"] += 1
            self.restart()
            return f" [crashed at {crashed.point} in {name}; restarted{': down' if self.down else ''}]"
        return ""

    @staticmethod
    def stream_enabled(seed: int) -> bool:
        """Whether seed `seed`'s daemon runs the order stream (STREAM_SHARE of the seeds)."""
        return random.Random(f"{seed}:stream").random() < STREAM_SHARE

    def deliver_stream(self) -> str:
        """The order stream delivering the fills the venue made since its last delivery, through the daemon's own
        handler (`DaemonStreamHandler.on_fills`: the one fills door, source "stream", under the job runner), before
        or after REST polling books the same fills. Only while the process is up; during a gap the fills are lost
        to the stream. Returns a note for the schedule ("" when nothing special happened)."""
        if not self.stream or self.down:
            return ""
        since = None if self.streamed_until is None else self.streamed_until - timedelta(seconds=1)
        new = [f for f in self.venue.fills_since(since) if f.fill_id not in self.streamed]
        if not new:
            return ""
        self.streamed.update(f.fill_id for f in new)
        self.streamed_until = max(f.time for f in new)
        if self.stream_gap > 0:
            self.stats["stream_fills_lost"] += len(new)
            return ""
        self.stats["stream_fills_delivered"] += len(new)
        runner = _StreamRunner(self)
        DaemonStreamHandler(self.ctx, runner, lambda _reason: None).on_fills(new)
        return runner.note

    def end_slice(self) -> None:
        self.stream_gap = max(self.stream_gap - 1, 0)
        if self.squeeze:
            self.squeeze -= 1
            if not self.squeeze:
                self.sim.close_position_direct(UNTRADED_SYMBOL)  # the hand lets go (nothing, if liquidated)
        self.faults.end_slice()
        self.dropping = {s: n - 1 for s, n in self.dropping.items() if n > 1}
        for symbol, slices in list(self.thin.items()):
            if slices > 1:
                self.thin[symbol] = slices - 1
            else:
                del self.thin[symbol]
                self.sim.set_depth(symbol, None)
        if self.crash_at is not None:
            self.crash_slices -= 1
            if self.crash_slices <= 0:
                self.crash_at = None

    def crash_hook(self, point: str) -> None:
        if self.crash_at == point:
            self.crash_at = None
            raise SimulatedCrash(point)


class _StreamRunner(JobRunner):
    """The daemon's job runner as DST runs jobs (`World.job`): a venue error is a JOB_FAILED line, a crash point
    restarts the process, any other exception fails the seed (the real runner would log it and go on)."""

    def __init__(self, world: World) -> None:
        super().__init__(None, RunStats())
        self.world = world
        self.note = ""

    def run(self, name: str, func: Callable[[], object]) -> bool:
        self.note = self.world.job(name, lambda _ctx: func())
        return not self.note


Event = Callable[[World, random.Random], str]


def _enter(w: World, rng: random.Random) -> str:
    symbol, side = rng.choice(SYMBOLS), rng.choice(("long", "short"))
    if w.down:
        return f"enter {side} {symbol} (daemon down)"
    w.strategy.entries = {symbol: side}
    note = w.job("tick", tick.run) or w.deliver_stream()
    w.strategy.entries = {}
    return f"enter {side} {symbol}{note}"


def _strategy_exit(w: World, rng: random.Random) -> str:
    """The strategy's exit signal on one symbol (the opposite channel break): the tick sends a reduce-only exit for
    the position held there, EXITING until its fills close it (the most common way a trade ends)."""
    symbol = rng.choice(SYMBOLS)
    if w.down:
        return f"strategy exit {symbol} (daemon down)"
    held = any(p.symbol_key == symbol for p in w.registry.active_positions())
    w.strategy.exits = {symbol: "scheduled exit"}
    note = w.job("tick", tick.run) or w.deliver_stream()
    w.strategy.exits = {}
    return f"strategy exit {symbol}{'' if held else ' (nothing held)'}{note}"


def _manual_close(w: World, rng: random.Random) -> str:
    symbol = rng.choice(SYMBOLS)
    w.sim.close_position_direct(symbol)
    return f"manual close {symbol}"


def _manual_add(w: World, rng: random.Random) -> str:
    symbol = rng.choice(SYMBOLS)
    held = [p for p in w.sim.positions() if p.symbol == symbol]
    if not held:
        return f"manual add {symbol} (nothing held)"
    side = "long" if held[0].size > 0 else "short"
    size = (abs(held[0].size) / 2).quantize(w.sim.instruments[symbol].size_increment)
    if size > 0:
        w.sim.open_position_direct(symbol, side, size)
    return f"manual add {side} {size} {symbol}"


def _orphan(w: World, rng: random.Random) -> str:
    symbol = rng.choice(SYMBOLS)
    if any(p.symbol == symbol for p in w.sim.positions()):
        return f"orphan {symbol} (already held)"
    size = w.sim.instruments[symbol].size_increment * rng.choice((10, 20))
    w.sim.open_position_direct(symbol, rng.choice(("long", "short")), size)
    return f"orphan {size} {symbol}"


def _silent_cancel(w: World, rng: random.Random) -> str:
    orders = sorted(o.order_id for o in w.sim.open_orders())
    if not orders:
        return "silent cancel (nothing open)"
    victim = rng.choice(orders)
    w.sim.cancel_silently(victim)
    return f"silent cancel {victim[:8]}"


def _thin_book(w: World, rng: random.Random) -> str:
    """The book on one symbol thins out for 1-3 slices (a level or three of a few contracts within the market
    protection band): our market entries and exits, and stops that trigger, fill partly and the venue cancels the
    rest. The daemon must book the part, size the stop to what it holds, and protect or exit the remainder."""
    symbol = rng.choice(SYMBOLS)
    slices = rng.randint(1, 3)
    increment = w.sim.instruments[symbol].size_increment
    size, levels = increment * rng.choice((1, 2, 5)), rng.choice((1, 3))
    w.sim.set_depth(symbol, size, levels)
    w.thin[symbol] = slices
    return f"thin book on {symbol} ({levels} x {size}) for {slices} slices"


def _stream_gap(w: World, rng: random.Random) -> str:
    """The order stream loses its messages for 1-3 slices (a dropped connection before the reconnect): the fills of
    that time reach the daemon by REST polling only."""
    if not w.stream:
        return "stream gap (no stream in this seed)"
    w.stream_gap = rng.randint(1, 3)
    return f"stream gap for {w.stream_gap} slices"


def _stops_dropped(w: World, rng: random.Random) -> str:
    """The venue keeps cancelling the stops on one symbol (Kraken's `cancelled_by_admin`), slice after slice: the
    replacements run into the stop churn bound (protect.max_replacements_per_hour)."""
    symbol = rng.choice(SYMBOLS)
    slices = rng.randint(3, 9)
    w.dropping[symbol] = slices
    return f"venue drops every stop on {symbol} for {slices} slices"


def _price_gap(w: World, rng: random.Random) -> str:
    symbol = rng.choice(SYMBOLS)
    move = Decimal(rng.choice(("-0.2", "-0.05", "0.05", "0.2")))
    mark = w.sim.quote(symbol).mark
    w.sim.set_mark(symbol, mark * (1 + move))
    return f"price gap {move:+} {symbol}"


def _size_for_margin(spec: InstrumentSpec, mark: Decimal, margin: Decimal) -> Decimal:
    """The largest size whose initial margin under the instrument's tiers (simulator.margin) stays within
    `margin`, by bisection over the size steps."""
    lo, hi = 0, 1
    while initial_margin(spec, hi * spec.size_increment * mark * spec.contract_size, None) <= margin:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if initial_margin(spec, mid * spec.size_increment * mark * spec.contract_size, None) <= margin:
            lo = mid
        else:
            hi = mid
    return lo * spec.size_increment


def _margin_squeeze(w: World, rng: random.Random) -> str:
    """A hand holds a position on the contract the daemon does not trade whose initial margin is 86-95 % of the
    equity, for 10-30 slices, then closes it: the health job's margin read trips the margin_critical kill switch
    (new entries halted, protection and exits go on) and releases it after the hand's close. A move against so
    leveraged a position can also get the account liquidated, as on the venue."""
    if w.squeeze:
        return "margin squeeze (one already held)"
    spec = w.sim.instruments[UNTRADED_SYMBOL]
    equity = w.sim.account().margin_equity
    share = Decimal(rng.choice(("0.86", "0.90", "0.95")))
    size = _size_for_margin(spec, w.sim.quote(UNTRADED_SYMBOL).mark, equity * share)
    if equity <= 0 or size <= 0:
        return "margin squeeze (no equity)"
    w.sim.open_position_direct(UNTRADED_SYMBOL, rng.choice(("long", "short")), size)
    w.squeeze = rng.randint(10, 30)
    return f"margin squeeze {share} of equity on {UNTRADED_SYMBOL} for {w.squeeze} slices"


def _liquidation(w: World, rng: random.Random) -> str:
    """The venue's own liquidation engine (simulator.engine `_check_liquidation`, account-wide: every position is
    closed at mark once margin equity falls below the maintenance margin). The harness's entries are far too small to
    reach it (0.001 XBT on a 10k account), so a hand-opened position of LIQUIDATION_LEVERAGE x the equity (added to
    ours when we hold the symbol) meets a 4.5 % gap against it: the loss (0.9 x equity) leaves less than the
    maintenance margin (1 % of ~19 x equity) and the engine liquidates the whole account, our positions included.
    The operator then tops the account up to its starting balance so the schedule can go on trading."""
    symbol = rng.choice(SYMBOLS)
    held = [p for p in w.sim.positions() if p.symbol == symbol]
    side = ("long" if held[0].size > 0 else "short") if held else rng.choice(("long", "short"))
    equity = w.sim.account().margin_equity
    mark = w.sim.quote(symbol).mark
    spec = w.sim.instruments[symbol]
    size = (equity * LIQUIDATION_LEVERAGE / mark).quantize(spec.size_increment, rounding="ROUND_DOWN")
    if equity <= 0 or size <= 0:
        return f"liquidation {symbol} (no equity)"
    w.sim.open_position_direct(symbol, side, size)
    w.sim.set_mark(symbol, mark * (Decimal("0.955") if side == "long" else Decimal("1.045")))
    liquidated = not w.sim.positions()
    w.stats["liquidations"] += int(liquidated)
    shortfall = w.sim.config.starting_usd - w.sim.balance
    if shortfall > 0:
        w.sim.deposit(shortfall)
    return f"hand {side} {size} {symbol} gapped 4.5 % against: {'liquidated' if liquidated else 'NOT liquidated'}"


def _restart(w: World, rng: random.Random) -> str:
    w.restart()
    return "restart" + (" (startup failed: down)" if w.down else "")


def _storm(w: World, rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        slices = rng.randint(1, 3)
        w.faults.switch_on(Window(Fault.STORM, slices=slices, orders_only=True))
        return f"5xx on the order endpoints for {slices} slices"
    if kind < 0.65:
        calls = rng.randint(2, 15)
        w.faults.switch_on(Window(Fault.STORM, slices=3, calls=calls))
        return f"5xx storm for {calls} calls"
    slices = rng.randint(1, 2)
    w.faults.switch_on(Window(Fault.STORM, slices=slices))
    return f"5xx storm for {slices} slices"


def _rate_limited(w: World, rng: random.Random) -> str:
    calls = rng.randint(1, 6)
    orders_only = rng.random() < 0.5
    w.faults.switch_on(Window(Fault.RATE_LIMIT, slices=2, calls=calls, orders_only=orders_only))
    return f"429s for {calls} {'order ' if orders_only else ''}calls"


def _lost_replies(w: World, rng: random.Random) -> str:
    slices = rng.randint(1, 3)
    w.faults.switch_on(Window(Fault.LOST_REPLIES, slices=slices, rate=0.6))
    return f"lost replies (60 % of orders, cancels, edits) for {slices} slices"


def _failing_reads(w: World, rng: random.Random) -> str:
    slices = rng.randint(1, 3)
    w.faults.switch_on(Window(Fault.FAILING_READS, slices=slices, rate=0.3))
    return f"failing reads (30 %) for {slices} slices"


def _crash(w: World, rng: random.Random) -> str:
    w.crash_at, w.crash_slices = rng.choice(crash.POINTS), CRASH_ARMED_SLICES
    return f"crash at {w.crash_at}"


SKEW_STEPS_S = (-3600, -600, -60, -5, 5, 60, 600, 3600)
MAX_SKEW = timedelta(hours=2)


def _clock_step(w: World, rng: random.Random) -> str:
    """The daemon's host clock steps (the venue's does not): seconds to an hour, either way, or back to true."""
    clock = w.daemon_clock
    if clock.offset and rng.random() < 0.25:
        clock.offset = timedelta(0)
        return "daemon clock corrected (offset 0)"
    clock.offset += timedelta(seconds=rng.choice(SKEW_STEPS_S))
    if abs(clock.offset) > MAX_SKEW:
        clock.offset = timedelta(0)
    return f"daemon clock offset {int(clock.offset.total_seconds()):+}s"


EVENTS: tuple[tuple[Event, int], ...] = (
    (_enter, 6),
    (_strategy_exit, 2),
    (_manual_close, 2),
    (_manual_add, 1),
    (_orphan, 1),
    (_silent_cancel, 2),
    (_thin_book, 2),
    (_stream_gap, 1),
    (_stops_dropped, 1),
    (_price_gap, 2),
    (_liquidation, 1),
    (_margin_squeeze, 1),
    (_restart, 1),
    (_storm, 1),
    (_rate_limited, 1),
    (_lost_replies, 2),
    (_failing_reads, 1),
    (_crash, 2),
    (_clock_step, 1),
)


def daemon_step(w: World) -> str:
    """One scheduled slice: time passes, then the jobs due in this slice in the daemon's order. A daemon that is
    down is started first (systemd's restart); a crash ends the slice there and restarts the process. Returns a note
    for the schedule ("" when nothing special happened)."""
    w.slices += 1
    w.ran = set()
    w.sim.advance(STEP_SECONDS)
    note = ""
    for symbol in sorted(w.dropping):
        for order in w.sim.open_orders():
            if order.symbol == symbol and order.order_type == "stp":
                w.sim.cancel_silently(order.order_id)
    if w.down:
        w.restart()
        note = " [restarted]" if not w.down else " [still down]"
    if not w.down:
        note += w.deliver_stream()  # what the venue did since the last slice: triggered stops, take-profits
        for name, func, every in JOBS:
            if w.slices % every:
                continue
            crashed = w.job(name, func) or w.deliver_stream()  # fills our own orders caused, as they happen
            if crashed:
                note += crashed
                break
            w.ran.add(name)
            if name == "account_log":  # what the read could see: the hand's moves at the slice's end come after it
                w.log_through = w.sim.account_log.entries[-1].id if w.sim.account_log.entries else 0
    w.end_slice()
    return note


def _health(ctx: DaemonContext) -> object:
    """The daemon's health job: margin (the margin_critical kill switch), quick_check and the tail audit that moves
    the chain anchors (`scheduler.startup` passes the same audit)."""
    health.run(ctx, lambda: audit_and_anchor(ctx.registry.db, to_ms(ctx.clock.now())))
    return None


def _account_log(ctx: DaemonContext) -> object:
    return account_log.ingest(ctx.registry, ctx.venue, ctx.clock)


HEALTH_EVERY = 10  # slices: the daemon's health interval (300 s) and its account-log job's (the health schedule)

JOBS: tuple[tuple[str, Callable[[DaemonContext], object], int], ...] = (
    # (name, job, every how many slices): the daemon's order (scheduler.startup.build_jobs); the tick runs with
    # the schedule's entry and exit events. Exits, protect and reconcile run every slice (the daemon: 30 s, 30 s,
    # 60 s), health and the money view's fees and funding every HEALTH_EVERY slices.
    ("exits", exits.run, 1),
    ("protect", protection.run, 1),
    ("reconcile", reconcile.run, 1),
    ("health", _health, HEALTH_EVERY),
    ("account_log", _account_log, HEALTH_EVERY),
)


@dataclass
class SeedResult:
    seed: int
    steps: int
    simulated_s: int
    orders: int
    operator_findings: Counter[str]
    stats: Counter[str] = field(default_factory=Counter)  # crashes, job failures, liquidations, faults, events


@dataclass
class _Checks:
    findings: Counter[str] = field(default_factory=Counter)
    unprotected: dict[str, int] = field(default_factory=dict)  # uid -> clean slices seen without its stop
    exiting: dict[str, int] = field(default_factory=dict)  # uid -> clean slices seen EXITING with no exit order live
    streaks: dict[tuple[str, str], int] = field(default_factory=dict)  # joint finding -> clean slices it lasted
    strays: set[str] = field(default_factory=set)  # fill ids of reported strays (see `_reported_strays`)


QUIET = "quiet"
"""A step whose event was left out (`keep`): only time passes and the jobs run."""


def step_rng(seed: int, step: int) -> random.Random:
    """The generator of one step's event and its parameters: a function of (seed, step) alone, so leaving other
    steps' events out does not change this one's draw."""
    return random.Random(f"{seed}:step:{step}")


def run_seed(seed: int, steps: int = 40, keep: frozenset[int] | None = None) -> SeedResult:
    """Run seed `seed` for `steps` steps, checking after each; raises DstFailure. `keep`: only these steps draw
    their event (the others are quiet slices); None: every step does."""
    schedule: list[str] = []
    checks = _Checks()
    events, weights = zip(*EVENTS, strict=True)
    counter = _EventCounter()
    events_log = logging.getLogger(EVENT_LOGGER)
    events_log.addHandler(counter)
    with tempfile.TemporaryDirectory(prefix=f"dst-{seed}-", dir=scratch_dir()) as tmp:
        w = World(seed, Path(tmp))
        previous = crash.set_handler(w.crash_hook)
        step = 0
        try:
            for step in range(steps):
                injected, crashes = w.faults.injected, w.stats["crashes"]
                if keep is None or step in keep:
                    rng = step_rng(seed, step)
                    event = rng.choices(events, weights)[0]
                    halted, sent, starts = w.entries_halted(), len(w.sim.order_log), w.stats["starts"]
                    schedule.append(event(w, rng))
                    if halted and w.stats["starts"] == starts:
                        _no_entry_sent(w, seed, step, schedule, sent, keep)
                else:
                    schedule.append(QUIET)
                schedule[-1] += daemon_step(w)
                clean = w.faults.injected == injected and w.stats["crashes"] == crashes and not w.down
                w.stats["clean_slices"] += int(clean)
                _check(w, seed, step, schedule, checks, clean, keep)
            w.stats.update({f"fault {k}": n for k, n in w.faults.served.items()})
            w.stats["partly_filled_orders"] += _partly_filled(w)
            w.stats.update(counter.counts)
            return SeedResult(seed, steps, steps * STEP_SECONDS, len(w.sim.order_log), checks.findings, w.stats)
        except DstFailure:
            raise
        except Exception as exc:
            schedule.append("(raised)")
            raise DstFailure(seed, step, schedule, f"the daemon raised {type(exc).__name__}: {exc}", keep) from exc
        finally:
            crash.set_handler(previous)
            events_log.removeHandler(counter)
            w.close()


def _no_entry_sent(w: World, seed: int, step: int, schedule: list[str], sent: int, keep: frozenset[int] | None) -> None:
    """Entries were halted (kill switch, escalation or pause) when the step began, in the same process: the venue
    accepted no entry order during its event. Read from the venue's own order log, not from the daemon's view."""
    entries = [o.cli_ord_id for o in w.sim.order_log[sent:] if o.cli_ord_id and "-entry-" in o.cli_ord_id]
    if entries:
        raise DstFailure(seed, step, schedule, f"entry orders {entries} sent while entries were halted", keep)


def _partly_filled(w: World) -> int:
    """Orders the venue closed with only part of them filled (a thin book's IOC remainder, a reduce-only cut)."""
    closed = (w.sim.order(a.order_id) for a in w.sim.order_log)
    return sum(1 for o in closed if o is not None and not o.is_open and 0 < o.filled < o.size)


def _check(
    w: World,
    seed: int,
    step: int,
    schedule: list[str],
    checks: _Checks,
    clean: bool,
    keep: frozenset[int] | None = None,
) -> None:
    def fail(detail: str) -> None:
        raise DstFailure(seed, step, schedule, detail, keep)

    report = run_audit(w.registry.db)
    if report.violations_total:
        fail(report.summary())
    resent = sorted(cid for cid, n in w.faults.sends.items() if n > 1)
    if resent:
        fail(f"more than one send of client order ids {resent} (a 429 excepted)")
    per_client_id = Counter(o.cli_ord_id for o in w.sim.order_log if o.cli_ord_id)
    duplicated = [c for c, n in per_client_id.items() if n > 1]
    if duplicated:
        fail(f"more than one venue order for client order ids {duplicated}")
    entries = Counter(c.rsplit("-entry-", 1)[0] for c in per_client_id if "-entry-" in c)
    doubled = sorted(uid for uid, n in entries.items() if n > 1)
    if doubled:
        fail(f"more than one entry order accepted by the venue for positions {doubled}")
    if w.down:
        return  # no process: nothing of the daemon's to judge until it is up again
    announced = w.ctx.announced_unprotectable

    def excused(uid: str) -> bool:  # POSITION_UNPROTECTABLE or STOP_CHURN_LIMIT was reported for it
        return uid in announced or f"churn:{uid}" in announced

    joint = w.ctx.last_joint
    if joint is not None:
        seen = {(f.field, f.key) for f in (*joint.findings, *joint.pending)}
        checks.streaks = {k: checks.streaks.get(k, 0) + int(clean) for k in seen}
        for name in JOINT_FIELDS:
            counted = [f for f in joint.findings if f.field == name]
            if not counted:
                continue
            if name in OPERATOR_FINDINGS:
                checks.findings[name] += len(counted)
                continue
            if name == "unprotected_exposure":
                announced_ones = [f for f in counted if excused(f.key)]
                checks.findings["unprotected_exposure (announced)"] += len(announced_ones)
                counted = [f for f in counted if not excused(f.key)]
            late = [f for f in counted if checks.streaks[(f.field, f.key)] > GRACE[name]]
            if late:
                fail(f"joint invariant {name}={len(late)}: {[f'{f.key}: {f.detail}' for f in late]}")
    if not clean:
        return  # the venue did not answer every call: the fill and protection graces wait for a clean slice
    ours = {o.client_order_id for p in w.registry.positions() for o in w.registry.orders(p.uid)}
    fills = [f for f in w.venue.fills_since(None) if f.client_order_id in ours]
    known = w.registry.fill_ids_known([f.fill_id for f in fills])
    checks.strays |= _reported_strays(w, [f for f in fills if f.fill_id not in known])
    lost = [f.fill_id for f in fills if f.fill_id not in known and f.fill_id not in checks.strays]
    if lost:
        fail(f"fills of our orders not in the ledger after a clean slice: {lost}")
    if "account_log" in w.ran:  # the slice read the account log with every call answered
        money = money_finding([e for e in w.sim.account_log.entries if e.id <= w.log_through], w.registry.db)
        if money:
            fail(f"money view: {money}")
    held = {p.symbol for p in w.sim.positions() if p.size != 0}
    live = {o.order_id for o in w.sim.open_orders()}
    for pos in w.registry.active_positions():
        exposed = pos.state in PROTECTABLE_STATES and pos.symbol_key in held and pos.remaining_qty > 0
        if exposed and pos.sl_order_id not in live and not excused(pos.uid):
            waited = checks.unprotected[pos.uid] = checks.unprotected.get(pos.uid, -1) + 1
            if waited >= 2:  # a clean slice is one protect cycle; one full clean cycle of grace
                fail(f"position {pos.uid} unprotected for {waited} clean protect cycles")
        else:
            checks.unprotected.pop(pos.uid, None)
        # EXITING waits on its exit order; once none is unresolved, the fill poll's settle_exits moves the position
        # on (exit_failed) within a cycle. One left EXITING with nothing to wait on is held by no one for good.
        if pos.state == State.EXITING and pos.remaining_qty > 0 and not _waits_on_an_exit(w, pos.uid):
            waited = checks.exiting[pos.uid] = checks.exiting.get(pos.uid, -1) + 1
            if waited >= 2:
                fail(f"position {pos.uid} EXITING with no exit order to wait on for {waited} clean cycles")
        else:
            checks.exiting.pop(pos.uid, None)


def _waits_on_an_exit(w: World, uid: str) -> bool:
    return any(o.purpose == "exit" and o.status in ORDER_UNRESOLVED_STATUSES for o in w.registry.orders(uid))


def _reported_strays(w: World, unbooked: list[VenueFill]) -> set[str]:
    """Of our orders' fills the ledger lacks, those of a stray (an order of a position that is closed: the close
    could not cancel it before it filled) that the daemon recorded as unowned and reported (UNOWNED_FILL). Fills rule
    3 judges such a fill against whoever holds the symbol now (docs/operations.md); when nobody does, booking it on
    the closed position would overfill it, so it stays out of the ledger by design, and it is not lost as long as it
    is recorded and an operator told (DST seed 2016)."""
    if not unbooked:
        return set()
    recorded = w.registry.unowned_known([f.fill_id for f in unbooked])
    strays: set[str] = set()
    for fill in unbooked:
        order = w.registry.order_by_client_id(fill.client_order_id) if fill.client_order_id else None
        if (
            order is not None
            and fill.fill_id in recorded
            and w.registry.get(order.position_uid).state in TERMINAL_STATES
        ):
            strays.add(fill.fill_id)
    return strays
