"""`python -m tools.backfill_historical_data [--config FILE] [--candles PATH] [--hours H] [--execute] [--json]`.

Keeps an OHLCV candle store (its own SQLite file, default `candles.db`; not the registry) complete. For each
configured symbol and timeframe (`--symbol`/`--timeframe` override) it lists the closed candles missing over
the last `--hours` (default 168); `--execute` fetches each gap from the venue and writes only the missing
candles (a unique key makes a re-run a no-op). Slots the venue has no candle for (no trades) are reported as
unfillable rather than retried forever. Exit 0 when nothing is missing (or all was filled), 1 otherwise.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import peewee as pw

from exchange.ccxt_venue import TIMEFRAME_SECONDS
from exchange.venue import Venue
from lifecycle.clock import SystemClock, from_ms, to_ms
from lifecycle.symbols import canonical_key
from store.candles import CandleStoreDamaged, CandleStoreError, StoredCandle, open_db
from tools._cli import (
    ProblemsFound,
    UsageError,
    bounded_float,
    dry_run_prefix,
    make_parser,
    run_tool,
    write_json,
    write_text,
)
from tools._dbfile import describe_sqlite_error
from tools._venue import add_common, build_venue, prepare, venue_call

DEFAULT_CANDLES_PATH = Path("candles.db")
PAGE = 500  # candles per venue request
MAX_HOURS = 24 * 365 * 10
MAX_SLOTS = 1_000_000  # candles per symbol and timeframe in one run: the slots are held in memory


@contextmanager
def candle_store(path: Path, *, write: bool) -> Iterator[bool]:
    """Yields whether the store exists (store.candles.open_db refuses any other file). A dry run never creates the
    file: a missing one, or SQLite's empty database, has nothing to read."""
    fix = "pass another --candles PATH"
    if not write and (not path.exists() or (path.is_file() and path.stat().st_size == 0)):
        yield False
        return
    try:
        db = open_db(path, write=write, fix=fix)
    except CandleStoreDamaged as exc:
        raise ProblemsFound(
            describe_sqlite_error(path, exc.cause, f"move the file away (backfill rebuilds it) or {fix}")
        ) from None
    except CandleStoreError as exc:
        raise UsageError(str(exc)) from None
    try:
        with db.bind_ctx([StoredCandle]):
            yield write or StoredCandle._meta.table_name in set(db.get_tables())
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:
        raise ProblemsFound(
            describe_sqlite_error(path, exc, f"move the file away (backfill rebuilds it) or {fix}")
        ) from None
    finally:
        db.close()


@dataclass
class Series:
    symbol: str
    timeframe: str
    expected: int
    missing: list[int] = field(default_factory=list)  # open times in ms
    written: int = 0
    unfillable: list[int] = field(default_factory=list)

    def gaps(self, slots: Sequence[int]) -> list[tuple[int, int, int]]:
        """Contiguous runs as (first open ms, last open ms, count)."""
        step = TIMEFRAME_SECONDS[self.timeframe] * 1000
        runs: list[tuple[int, int, int]] = []
        for t in sorted(slots):
            if runs and t == runs[-1][1] + step:
                runs[-1] = (runs[-1][0], t, runs[-1][2] + 1)
            else:
                runs.append((t, t, 1))
        return runs


def expected_slots(timeframe: str, now: datetime, hours: float) -> list[int]:
    step = TIMEFRAME_SECONDS[timeframe] * 1000
    end = to_ms(now) // step * step  # the open time of the still-forming candle: excluded
    start = (to_ms(now) - int(hours * 3_600_000)) // step * step
    return list(range(start, end, step))


def stored_slots(symbol: str, timeframe: str, first: int) -> set[int]:
    query = StoredCandle.select(StoredCandle.open_ms).where(
        (StoredCandle.symbol == symbol) & (StoredCandle.timeframe == timeframe) & (StoredCandle.open_ms >= first)
    )
    return {int(r.open_ms) for r in query}


Advance = Callable[[int], None]


def fill_gap(venue: Venue, series: Series, first: int, last: int, advance: Advance | None = None) -> set[int]:
    """Fetch [first, last] page by page (by time: each request starts where the previous page ended) and insert
    the missing candles; returns the slots written. `advance(n)` is told how many slots each page covered."""
    step = TIMEFRAME_SECONDS[series.timeframe] * 1000
    wanted = {t for t in series.missing if first <= t <= last}
    written: set[int] = set()
    cursor = first
    while cursor <= last:
        page = min(PAGE, (last - cursor) // step + 1)
        candles = venue_call(
            f"candles {series.symbol} {series.timeframe}",
            partial(venue.candles, series.symbol, series.timeframe, since=from_ms(cursor), limit=page),
        )
        rows = [
            {"symbol": series.symbol, "timeframe": series.timeframe, "open_ms": to_ms(c.time), "open": str(c.open),
             "high": str(c.high), "low": str(c.low), "close": str(c.close), "volume": str(c.volume)}
            for c in candles
            if to_ms(c.time) in wanted and to_ms(c.time) not in written
        ]  # fmt: skip
        if rows:
            StoredCandle.insert_many(rows).on_conflict_ignore().as_rowcount().execute()
            written |= {int(str(r["open_ms"])) for r in rows}
        if advance is not None:
            advance(sum(1 for t in wanted if cursor <= t < cursor + page * step))
        cursor += page * step
    return written


@contextmanager
def progress(enabled: bool, total: int) -> Iterator[Advance | None]:
    """A rich progress bar on stderr while candles are fetched, only on a terminal (never in --json or a pipe)."""
    if not enabled or total == 0:
        yield None
        return
    from rich.console import Console  # only on a terminal: a piped or --json run never loads rich
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("candles", total=total)
        yield lambda n: bar.advance(task, n)


def main(argv: Sequence[str]) -> int:
    parser = add_common(
        make_parser("python -m tools.backfill_historical_data", "Backfill OHLCV gaps", modifies_state=True)
    )
    parser.add_argument("--candles", type=Path, default=DEFAULT_CANDLES_PATH, help="candle store (default candles.db)")
    parser.add_argument(
        "--hours",
        type=bounded_float(0, MAX_HOURS, lo_open=True),
        default=168.0,
        metavar="H",
        help="look back this many hours (default 168)",
    )
    parser.add_argument("--symbol", action="append", default=None, help="symbol (repeatable; default: the config's)")
    parser.add_argument("--timeframe", action="append", default=None, choices=sorted(TIMEFRAME_SECONDS))
    args = parser.parse_args(argv)
    env = prepare(args, execute=args.execute)
    try:
        symbols = [canonical_key(s) for s in args.symbol] if args.symbol else list(env.settings.symbols)
    except ValueError as exc:
        raise UsageError(f"--symbol: {exc}") from None
    timeframes = args.timeframe or [env.settings.timeframe]
    for tf in timeframes:
        count = int(args.hours * 3600) // TIMEFRAME_SECONDS[tf]
        if count > MAX_SLOTS:
            raise UsageError(
                f"--hours {args.hours:g} at timeframe {tf} is {count} candles per symbol, more than the {MAX_SLOTS}"
                " one run handles: lower --hours and run again for the older part"
            )
    clock = SystemClock()
    venue = build_venue(env.settings, clock)
    # Candles are the venue's: which one is still forming is decided by its serverTime, not this host's clock.
    now = venue_call("reading the venue's time", venue.margin).time
    report: list[Series] = []
    with candle_store(args.candles, write=args.execute) as exists:
        for symbol in symbols:
            for tf in timeframes:
                slots = expected_slots(tf, now, args.hours)
                have = stored_slots(symbol, tf, slots[0]) if exists and slots else set()
                report.append(Series(symbol, tf, len(slots), [t for t in slots if t not in have]))
        if args.execute:
            on_terminal = sys.stderr.isatty() and not args.json
            with progress(on_terminal, sum(len(s.missing) for s in report)) as advance:
                for series in report:
                    for first, last, _ in series.gaps(series.missing):
                        series.written += len(fill_gap(venue, series, first, last, advance))
                    slots = expected_slots(series.timeframe, now, args.hours)
                    series.unfillable = sorted(
                        set(series.missing) - stored_slots(series.symbol, series.timeframe, slots[0])
                    )
    remaining = sum(len(s.unfillable) if args.execute else len(s.missing) for s in report)
    if args.json:
        doc: dict[str, Any] = {
            "candles": str(args.candles),
            "execute": args.execute,
            "series": [
                {
                    "symbol": s.symbol,
                    "timeframe": s.timeframe,
                    "expected": s.expected,
                    "missing": len(s.missing),
                    "gaps": [{"from": from_ms(a), "to": from_ms(b), "count": n} for a, b, n in s.gaps(s.missing)],
                    "written": s.written,
                    "unfillable": len(s.unfillable),
                }
                for s in report
            ],
            "remaining": remaining,
        }
        write_json(doc)
    else:
        lines = []
        for s in report:
            lines.append(f"{s.symbol} {s.timeframe}: {s.expected} expected, {len(s.missing)} missing")
            lines += [
                f"  {dry_run_prefix(args.execute)}fill {from_ms(a):%Y-%m-%d %H:%M} .. {from_ms(b):%Y-%m-%d %H:%M} ({n})"
                for a, b, n in s.gaps(s.missing)
            ]
            if args.execute:
                lines.append(f"  wrote {s.written}; unfillable (no candle on the venue): {len(s.unfillable)}")
        lines.append("complete" if not remaining else f"{remaining} candle(s) still missing")
        write_text(lines)
    if remaining:
        sys.stderr.write(f"error: {remaining} candle(s) missing from {args.candles}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
