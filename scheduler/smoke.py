"""`python -m scheduler.smoke` (`make smoke`, CI): a bounded paper session with faults, then hard checks.

Faults injected while the real scheduler runs: an HTTP 500 on an order, a stop cancelled silently by the venue,
and an orphan position opened directly on the venue. Afterwards the jobs are stopped, the daemon's own
protect and reconcile run until quiet, and the session passes only if:
  1. the registry audit is clean (violations_total=0);
  2. the last reconciliation has orphaned=0, phantom=0, qty_mismatch=0 and was complete;
  3. every open venue position has a reduce-only stop on the closing side (venue ground truth);
  4. the simulator's order log holds no client order id twice (no duplicate orders);
  5. the session traded at all (at least one entry and one protective order were sent).
Exit 0 when all hold; otherwise 1 with one line per failed check.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from lifecycle.events import EVENT_LOGGER
from scheduler.jobs import protect as protect_job
from scheduler.jobs import reconcile as reconcile_job
from scheduler.logsetup import configure_logging
from scheduler.paper import paper_venue, scaled_intervals
from scheduler.startup import Started, run_jobs, start
from settings.config import Settings, load_settings
from simulator.engine import Simulator

log = logging.getLogger("scheduler.smoke")

DEFAULT_SECONDS = 45.0
MAX_SECONDS = 90.0
SPEED = 60.0
SETTLE_ROUNDS = 4
ORPHAN_USD = Decimal(500)


@dataclass
class SmokeResult:
    failures: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


class EventCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if isinstance(event, str):
            self.counts[event] += 1


def inject_faults(sim: Simulator, stop: threading.Event, done: dict[str, bool]) -> None:
    """Runs beside the scheduler: one 500 on the next order, then a silent stop cancel, then an orphan."""
    sim.faults.add("http_500", "sendorder", count=1)
    done["http_500"] = True
    while not stop.wait(0.2):
        if not done.get("cancel_stop"):
            stops = [o for o in sim.open_orders() if o.reduce_only and o.order_type == "stp"]
            if stops:
                done["cancel_stop"] = sim.cancel_silently(stops[0].order_id)
        if done.get("cancel_stop") and not done.get("orphan"):
            held = {p.symbol for p in sim.positions()}
            free = [s for s in sim.instruments if s not in held]
            if free:
                symbol = free[-1]
                spec = sim.instruments[symbol]
                size = max(spec.size_increment, (ORPHAN_USD / sim.quote(symbol).mark).quantize(spec.size_increment))
                sim.open_position_direct(symbol, "long", size)
                done["orphan"] = True
        if all(done.get(k) for k in ("http_500", "cancel_stop", "orphan")):
            return


def settle(started: Started) -> None:
    """After the scheduler stops: protect and reconcile until findings need no second sighting."""
    ctx = started.ctx
    for _ in range(SETTLE_ROUNDS):
        reconcile_job.run(ctx)
        protect_job.run(ctx)


def check(started: Started, sim: Simulator, counter: EventCounter, done: dict[str, bool]) -> SmokeResult:
    result = SmokeResult()
    audit = started.audit()
    result.facts["violations_total"] = audit.violations_total
    if not audit.ok:
        result.failures.append(f"audit: {audit.summary()}")
    rec = started.ctx.last_reconciliation
    if rec is None or not rec.report.complete:
        result.failures.append("reconciliation: the last one was missing or incomplete")
    else:
        counters = rec.report.counters()
        result.facts.update({k: counters[k] for k in ("orphaned", "phantom", "qty_mismatch")})
        bad = {k: counters[k] for k in ("orphaned", "phantom", "qty_mismatch") if counters[k]}
        if bad:
            result.failures.append(f"reconciliation: last report not clean: {bad}")
    stops = [o for o in sim.open_orders() if o.reduce_only and o.order_type == "stp"]
    unprotected = []
    for pos in sim.positions():
        closing = "sell" if pos.size > 0 else "buy"
        if not any(o.symbol == pos.symbol and o.side == closing for o in stops):
            unprotected.append(pos.symbol)
    result.facts["open_positions"] = len(sim.positions())
    if unprotected:
        result.failures.append(f"protection: venue positions without a reduce-only stop: {unprotected}")
    ids = Counter(o.cli_ord_id for o in sim.order_log if o.cli_ord_id)
    dupes = sorted(cid for cid, n in ids.items() if n > 1)
    result.facts["orders_on_venue"] = sum(ids.values())
    if dupes:
        result.failures.append(f"duplicates: client order ids accepted more than once: {dupes[:5]}")
    submitted = counter.counts.get("ORDER_SUBMITTED", 0)
    placed = counter.counts.get("PROTECTIVE_ORDER_PLACED", 0)
    result.facts.update({"orders_submitted": submitted, "protective_placed": placed})
    if submitted == 0 or placed == 0:
        result.failures.append(f"trading: the session sent {submitted} orders and {placed} protective orders")
    missing = [k for k in ("http_500", "cancel_stop", "orphan") if not done.get(k)]
    if missing:
        result.failures.append(f"faults: not injected (the session ended first): {missing}")
    return result


def run_smoke(seconds: float, seed: int, db_path: Path, settings: Settings) -> SmokeResult:
    counter = EventCounter()
    logging.getLogger(EVENT_LOGGER).addHandler(counter)
    stop = threading.Event()
    done: dict[str, bool] = {}
    try:
        with paper_venue(seed=seed, speed=SPEED, starting_usd=settings.paper.starting_usd) as paper:
            started = start(settings, paper.venue, paper.clock, db_path, recovery_wait_s=0.0)
            injector = threading.Thread(target=inject_faults, args=(paper.sim, stop, done), daemon=True)
            injector.start()
            iv = settings.intervals
            run_jobs(
                started.ctx,
                started.registry.db,
                scaled_intervals(iv.tick, iv.reconcile, iv.protect, iv.health, SPEED),
                started.audit,
                started_fields={"mode": "smoke", "venue": paper.server.base_url, "db": str(db_path), "symbols": "-"},
                duration_s=seconds,
                install_signals=False,
            )
            stop.set()
            injector.join(timeout=2)
            if paper.pacer is not None:
                paper.pacer.stop()  # freeze prices: the checks compare one consistent venue state
            settle(started)
            return check(started, paper.sim, counter, done)
    finally:
        stop.set()
        logging.getLogger(EVENT_LOGGER).removeHandler(counter)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help=f"session length (<= {MAX_SECONDS})")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-db", type=Path, default=None, help="write the registry here instead of a temp dir")
    args = parser.parse_args(argv)
    seconds = min(args.seconds, MAX_SECONDS)
    settings = load_settings(None, environ={}).model_copy(update={"timeframe": "1m"})
    configure_logging(settings.log.format, "INFO", secrets=())
    started_at = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        db_path = args.keep_db or Path(tmp) / "registry.db"
        result = run_smoke(seconds, args.seed, db_path, settings)
    facts = " ".join(f"{k}={v}" for k, v in result.facts.items())
    elapsed = time.monotonic() - started_at
    if result.ok:
        print(f"SMOKE PASS seed={args.seed} seconds={elapsed:.1f} {facts}")
        return 0
    for failure in result.failures:
        print(f"SMOKE FAIL {failure}", file=sys.stderr)
    print(f"SMOKE FAIL seed={args.seed} seconds={elapsed:.1f} {facts}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
