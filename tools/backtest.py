"""`python -m tools.backtest --candles FILE [--symbols S,..] [--from T] [--to T] [--timeframe TF] [--config FILE]
[--fees RATE] [--json] [--plot FILE.png] [--registry FILE] [--allow-gaps] [--grid key=v1,v2 ...]
[--workers N | --cluster ADDRESS] [--rank METRIC]`.

Replays stored candles through the simulator engine in process, on a virtual clock, and runs the daemon's own
jobs at every bar (docs/backtest.md). Exit 0: the run (every grid row) ended with a clean registry audit and a
clean last reconciliation; 1: it did not (a bug in the engine, named on stderr); 2: bad input, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest import bars, grid, report
from backtest.params import Params, ParamsError
from backtest.run import Spec, run
from lifecycle.events import EVENT_LOGGER
from lifecycle.symbols import canonical_key
from simulator.instruments import DEFAULT_INSTRUMENTS
from tools._cli import ProblemsFound, UsageError, _OneLineParser, bounded_decimal, bounded_int, run_tool, write_json
from tools._venue import load

PROG = "python -m tools.backtest"
MAX_WORKERS = 64


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog=PROG, description="Backtest the daemon's own jobs over stored candles")
    p.add_argument("--candles", type=Path, default=Path("candles.db"), metavar="FILE", help="candle store")
    p.add_argument("--config", type=Path, default=None, metavar="FILE", help="daemon config: [risk], symbols")
    p.add_argument("--symbols", default=None, help="comma-separated (default: the config's symbols)")
    p.add_argument("--from", dest="start", default=None, metavar="TIME", help="first bar, ISO date/time (UTC)")
    p.add_argument("--to", dest="end", default=None, metavar="TIME", help="last bar, ISO date/time (UTC)")
    p.add_argument("--timeframe", default=None, help="bar width (default: the config's timeframe)")
    p.add_argument(
        "--fees",
        type=bounded_decimal(Decimal(0), Decimal("0.01")),
        default=Decimal("0.0005"),
        metavar="RATE",
        help="fee per fill, fraction of notional (default 0.0005, Kraken's taker)",
    )
    p.add_argument(
        "--starting-usd",
        type=bounded_decimal(Decimal(0), Decimal(10**9), lo_open=True),
        default=Decimal(10000),
        metavar="USD",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--events", action="store_true", help="print the daemon's event lines (thousands) on stderr")
    p.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="write the equity curve here")
    p.add_argument("--registry", type=Path, default=None, metavar="FILE", help="keep the run's registry (new file)")
    p.add_argument("--allow-gaps", action="store_true", help="run over missing bars (held at the last close)")
    p.add_argument("--grid", nargs="+", default=None, metavar="KEY=V1,V2", help="parameter sweep")
    p.add_argument("--workers", type=bounded_int(1, MAX_WORKERS), default=1, metavar="N", help="local processes")
    p.add_argument("--cluster", default=None, metavar="ADDRESS", help="Dask scheduler, e.g. tcp://127.0.0.1:8786")
    p.add_argument(
        "--cluster-timeout",
        type=bounded_decimal(Decimal(0), Decimal(600), lo_open=True),
        default=Decimal(10),
        metavar="S",
        help="seconds to wait for the Dask scheduler (default 10)",
    )
    p.add_argument("--rank", default="net_pnl", choices=grid.METRICS, help="grid ordering (default net_pnl)")
    return p


def _time(flag: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not an ISO date or time: use e.g. 2026-01-31 or 2026-01-31T12:00"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _symbols(text: str | None, default: Sequence[str]) -> list[str]:
    raw = [s for s in text.split(",") if s.strip()] if text is not None else list(default)
    known = {i.symbol for i in DEFAULT_INSTRUMENTS}
    out: list[str] = []
    for item in raw:
        try:
            key = canonical_key(item)
        except ValueError:
            raise UsageError(
                f"--symbols: unknown symbol {item.strip()!r}; use one of {', '.join(sorted(known))}"
            ) from None
        if key not in known:
            raise UsageError(f"--symbols: {key} is not a simulated instrument; use one of {', '.join(sorted(known))}")
        if key not in out:
            out.append(key)
    if not out:
        raise UsageError("--symbols is empty: name at least one, e.g. --symbols PF_XBTUSD")
    return out


def _new_file(flag: str, path: Path | None) -> None:
    if path is None:
        return
    if path.exists():
        raise UsageError(f"{flag} {path} exists already: pass a new file (nothing is overwritten)")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {path.parent} does not exist")


def build_spec(args: argparse.Namespace) -> tuple[Spec, list[dict[str, str]]]:
    """Every check on the input, before anything is run or written."""
    settings = load(args.config)
    timeframe = args.timeframe or settings.timeframe
    try:
        bars.width_seconds(timeframe)
    except bars.BarsError as exc:
        raise UsageError(f"--timeframe: {exc}") from None
    start, end = _time("--from", args.start), _time("--to", args.end)
    if start is not None and end is not None and start > end:
        raise UsageError(f"--from {start:%Y-%m-%d %H:%M} is after --to {end:%Y-%m-%d %H:%M}: swap them")
    symbols = _symbols(args.symbols, settings.symbols)
    _new_file("--registry", args.registry)
    _new_file("--plot", args.plot)
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: the picture is a PNG, name it FILE.png")
    if args.cluster is not None and args.workers != 1:
        raise UsageError("--workers and --cluster exclude each other: the cluster has its own workers")
    if args.grid is None and (args.cluster is not None or args.workers != 1):
        raise UsageError("--workers/--cluster run a --grid: add --grid key=v1,v2")
    if args.grid is not None and (args.registry is not None or args.plot is not None):
        raise UsageError("--registry and --plot describe one run: drop them from a --grid sweep")
    try:
        sets = grid.parse(args.grid) if args.grid is not None else []
        params = Params.from_settings(settings)
    except ParamsError as exc:
        raise UsageError(f"--grid: {exc}") from None
    series: dict[str, tuple[Any, ...]] = {}
    for symbol in symbols:
        try:
            loaded = bars.load(args.candles, symbol, timeframe, start, end)
        except bars.BarsError as exc:
            raise UsageError(str(exc)) from None
        if not loaded.bars:
            span = f"{args.start or 'the start'} .. {args.end or 'the end'}"
            raise UsageError(
                f"no {symbol} {timeframe} bars in {args.candles} for {span}: backfill them"
                " (python -m tools.backfill_historical_data --execute) or change --from/--to"
            )
        if loaded.gaps and not args.allow_gaps:
            first = loaded.gaps[0]
            missing = sum(g.count for g in loaded.gaps)
            raise UsageError(
                f"{args.candles}: {symbol} {timeframe} has {missing} missing bar(s) in {len(loaded.gaps)} gap(s),"
                f" the first {first.count} from {first.first:%Y-%m-%d %H:%M}: backfill them, or pass --allow-gaps"
            )
        series[symbol] = loaded.bars
    spec = Spec(
        bars=series,
        timeframe=timeframe,
        params=params,
        settings=settings,
        fee_rate=args.fees,
        starting_usd=args.starting_usd,
        registry_path=args.registry,
    )
    return spec, sets


@contextmanager
def quiet_events(show: bool) -> Iterator[None]:
    """The jobs log one event line per decision, order and fill; a backtest reports them in its summary, so they
    reach stderr only with --events (without any handler, Python would print every warning among them)."""
    logger = logging.getLogger(EVENT_LOGGER)
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if show else logging.NullHandler()
    propagate, level = logger.propagate, logger.level
    logger.propagate = False
    if show:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = propagate, level


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    spec, sets = build_spec(args)
    with quiet_events(args.events):
        return _main(args, spec, sets)


def _main(args: argparse.Namespace, spec: Spec, sets: list[dict[str, str]]) -> int:
    if args.grid is not None:
        return _sweep(args, spec, sets)
    result = run(spec)
    rep = report.build(result)
    if args.plot is not None:
        from backtest.plot import equity_png

        equity_png(result, args.plot)
    doc: dict[str, Any] = {
        "params": spec.params.as_dict(),
        **rep.as_dict(),
        "audit": result.audit,
        "problems": result.problems,
    }
    if args.registry is not None:
        doc["registry"] = str(args.registry)
    if args.json:
        write_json(doc)
    else:
        print("\n".join(rep.lines()))
        print(f"engine          {result.audit}; last reconciliation {'clean' if not result.problems else 'NOT clean'}")
    if result.problems:
        raise ProblemsFound("backtest broke the engine's invariants (a bug found): " + "; ".join(result.problems))
    return 0


def _sweep(args: argparse.Namespace, spec: Spec, sets: list[dict[str, str]]) -> int:
    specs = grid.specs_for(spec, sets)
    if args.cluster is not None:
        try:
            rows = grid.run_cluster(specs, args.cluster, float(args.cluster_timeout))
        except grid.ClusterError as exc:
            raise UsageError(str(exc)) from None
    else:
        rows = grid.run_local(specs, min(args.workers, os.cpu_count() or 1, len(specs)))
    ranked = grid.rank(rows, args.rank)
    if args.json:
        write_json({"rank": args.rank, "rows": ranked})
    else:
        names = sorted({k for s in sets for k in s})
        header = [*names, "net_pnl", "trades", "win_rate_pct", "profit_factor", "average_r", "max_drawdown_pct"]
        print("  ".join(f"{h:>14}" for h in header))
        for row in ranked:
            params = row["params"]
            assert isinstance(params, dict)
            cells = [str(params[n]) for n in names] + [str(row[h]) for h in header[len(names) :]]
            print("  ".join(f"{c:>14}" for c in cells))
    broken = [r for r in ranked if r["problems"]]
    if broken:
        raise ProblemsFound(f"{len(broken)} grid run(s) broke the engine's invariants: {broken[0]['problems']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
