"""`python -m tools.report [--db PATH] [--since WHEN] [--until WHEN] [--period day|week|month] [--json] [--csv FILE]
[--plot FILE.png] [--gross]`.

The money view of the registry, read-only: the trade history (positions closed in the window), realised net PnL
per UTC day, and summary statistics (win rate, profit factor, average R, expectancy, max drawdown); `--csv` writes
the trade history, `--plot` the equity curve with its drawdown shaded and one marker per trade. Tables are drawn
with `rich` on a terminal and as plain text otherwise. Definitions in docs/money.md.

Exit 0 with a report; 2 for input that cannot give one (one line, nothing written): a registry with no trade, a
window with nothing in it, `--since` not before `--until`, an output path that cannot be written, or a registry
holding trades but no fee rows (its net PnL would leave fees and funding out: `--gross` accepts that knowingly).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lifecycle.accounting import PERIODS, Summary, TradeRecord, cents
from operations.money import MoneyView, build_view
from operations.trades import load_books, load_charge_count, load_unattributed_charges
from tools._cli import UsageError, make_parser, run_tool, write_json, write_text
from tools._venue import read_registry

TRADE_COLUMNS = (
    "closed", "uid", "symbol", "side", "qty", "entry", "exit", "realised", "fees", "funding", "net", "r", "reason",
    "held",
)  # fmt: skip


def when(text: str) -> datetime:
    """An argparse `type`: `YYYY-MM-DD` (midnight UTC) or an ISO 8601 time (UTC when it names no zone)."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time; expected YYYY-MM-DD or an ISO 8601 time such as 2026-12-01T08:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def writable_target(path: Path, flag: str) -> None:
    """Refuse, before anything is read or written, an output path that cannot be written."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder: give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {parent} does not exist; create it or choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path} is not writable: choose a path you can write")


def write_all(files: Sequence[tuple[Path, bytes]]) -> None:
    """Every file or none: each is written beside its target first, and only when all are written are they moved
    into place, so a failure (a full disk, a path only the write itself finds unwritable) leaves nothing behind."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            staged.append((tmp, path))
            tmp.write_bytes(data)
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {staged[-1][1]}: {exc.strerror or exc}; nothing was written") from None
    for tmp, path in staged:
        tmp.replace(path)


def _held(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _num(value: Decimal | None, places: str = "0.01") -> str:
    return "-" if value is None else format(value.quantize(Decimal(places)), "f")


def _price(value: Decimal | None) -> str:
    return "-" if value is None else format(value.quantize(Decimal("0.00000001")).normalize(), "f")


def trade_row(t: TradeRecord) -> dict[str, str]:
    return {
        "closed": "-" if t.closed is None else t.closed.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "uid": t.uid,
        "symbol": t.symbol,
        "side": t.side,
        "qty": format(t.qty, "f"),
        "entry": _price(t.entry_vwap),
        "exit": _price(t.exit_vwap),
        "realised": _num(t.realised),
        "fees": _num(t.fees),
        "funding": _num(t.funding),
        "net": _num(t.net),
        "r": _num(t.r_multiple),
        "reason": t.reason or "-",
        "held": _held(t.held_s),
    }


def summary_rows(view: MoneyView, *, fees_known: bool) -> list[tuple[str, str]]:
    s: Summary = view.summary
    rate = "-" if s.win_rate is None else f"{s.win_rate * 100:.1f} %"
    fees = _num(s.fees) if fees_known else "not recorded"
    return [
        ("trades closed", str(s.trades)),
        ("wins / losses", f"{s.wins} / {s.losses}"),
        ("win rate", rate),
        ("realised (trades)", _num(s.realised)),
        ("fees (trades)", fees),
        ("funding (trades)", _num(s.funding) if fees_known else "not recorded"),
        ("net PnL (trades)", _num(s.net)),
        ("net PnL (window)", _num(view.net)),
        ("profit factor", _num(s.profit_factor)),
        ("average R", _num(s.average_r)),
        ("expectancy / trade", _num(s.expectancy)),
        ("max drawdown", _num(s.max_drawdown)),
    ]


def report_json(path: Path, view: MoneyView, *, fees_known: bool) -> dict[str, Any]:
    s = view.summary
    return {
        "db": str(path),
        "since": view.since,
        "until": view.until,
        "fees_recorded": fees_known,
        "summary": {
            "trades": s.trades,
            "wins": s.wins,
            "losses": s.losses,
            "win_rate": None if s.win_rate is None else s.win_rate.quantize(Decimal("0.0001")),
            "realised": cents(s.realised),
            "fees": cents(s.fees),
            "funding": cents(s.funding),
            "net_trades": cents(s.net),
            "net_window": cents(view.net),
            "profit_factor": None if s.profit_factor is None else s.profit_factor.quantize(Decimal("0.0001")),
            "average_r": None if s.average_r is None else s.average_r.quantize(Decimal("0.0001")),
            "expectancy": None if s.expectancy is None else cents(s.expectancy),
            "max_drawdown": cents(s.max_drawdown),
        },
        "daily": [{"day": day.date().isoformat(), "net": cents(v)} for day, v in view.by_period("day")],
        "weekly": [{"week": _period_label(w, "week"), "net": cents(v)} for w, v in view.by_period("week")],
        "monthly": [{"month": _period_label(m, "month"), "net": cents(v)} for m, v in view.by_period("month")],
        "trades": [trade_row(t) for t in view.trades],
    }


def trades_csv(view: MoneyView) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(TRADE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for t in view.trades:
        writer.writerow(trade_row(t))
    return out.getvalue().encode()


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows]  # fmt: skip
    return [line.rstrip(), "-" * len(line.rstrip()), *(b.rstrip() for b in body)]


def _period_label(start: datetime, period: str) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m") if period == "month" else start.date().isoformat()


def render_text(view: MoneyView, *, fees_known: bool, terminal: bool, period: str = "day") -> None:
    trades = [[trade_row(t)[c] for c in TRADE_COLUMNS] for t in view.trades]
    daily = [[_period_label(start, period), _num(v)] for start, v in view.by_period(period)]
    heading = f"Realised net PnL per UTC {period} (USD)"
    summary = summary_rows(view, fees_known=fees_known)
    if terminal:
        from rich.console import Console
        from rich.table import Table

        # The trade table needs about 140 columns; a narrower terminal wraps lines rather than cutting figures.
        console = Console(file=sys.stdout)
        console = Console(file=sys.stdout, width=max(console.width, 140))
        for title, headers, rows in (
            ("Trades", TRADE_COLUMNS, trades),
            (heading, (period, "net"), daily),
            ("Summary (USD)", ("", ""), [list(r) for r in summary]),
        ):
            table = Table(title=title, show_header=bool(headers[0]))
            for h in headers:
                table.add_column(
                    h,
                    justify="right"
                    if h in ("qty", "entry", "exit", "realised", "fees", "funding", "net", "r")
                    else "left",
                )
            for r in rows:
                table.add_row(*r)
            console.print(table)
        return
    lines = ["Trades", *plain_table(TRADE_COLUMNS, trades), "", heading]
    lines += plain_table((period, "net"), daily)
    width = max(len(k) for k, _ in summary)
    lines += ["", "Summary (USD)", *(f"{k.ljust(width)}  {v}" for k, v in summary)]
    write_text(lines)


def main(argv: Sequence[str]) -> int:
    parser = make_parser("python -m tools.report", "Trade history, daily PnL and statistics from the registry")
    parser.add_argument("--since", type=when, default=None, metavar="WHEN", help="from this UTC date/time")
    parser.add_argument("--until", type=when, default=None, metavar="WHEN", help="up to (not including) this")
    parser.add_argument("--csv", type=Path, default=None, metavar="FILE", help="also write the trade history as CSV")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="also draw the equity curve")
    parser.add_argument(
        "--period", choices=PERIODS, default="day", help="the PnL table per UTC day, ISO week or month (default day)"
    )
    parser.add_argument(
        "--gross", action="store_true", help="report a registry that holds no fee rows (fees and funding left out)"
    )
    args = parser.parse_args(argv)
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}")
    outputs = [(p, f) for p, f in ((args.csv, "--csv"), (args.plot, "--plot")) if p is not None]
    for target, flag in outputs:
        writable_target(target, flag)
    if args.csv is not None and args.plot is not None and args.csv.resolve() == args.plot.resolve():
        raise UsageError("--csv and --plot name the same file: give each its own")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: the picture is a PNG; name the file *.png")
    with read_registry(args.db):
        books = load_books()
        charges = load_charge_count()
        account_events = load_unattributed_charges()
    if not books:
        raise UsageError(f"registry {args.db} holds no trade yet (no position has a fill): nothing to report")
    if charges == 0 and not args.gross:
        raise UsageError(
            f"registry {args.db} holds trades but no fee or funding rows (the account log was never read into it):"
            " its net PnL would leave them out; pass --gross to report without them"
        )
    view = build_view(
        books, since=args.since, until=args.until, charges_recorded=charges, account_events=account_events
    )
    if not view.trades and not view.events:
        raise UsageError("no trade closed and no PnL realised in the window: widen --since/--until")
    files: list[tuple[Path, bytes]] = []
    if args.csv is not None:
        files.append((args.csv, trades_csv(view)))
    if args.plot is not None:
        from operations.equity_plot import equity_png

        title = f"Realised equity, {len(view.trades)} trades" + (" (gross: no fees recorded)" if not charges else "")
        files.append((args.plot, equity_png(view.curve, view.trades, title=title)))
    write_all(files)
    fees_known = charges > 0
    if args.json:
        document = report_json(args.db, view, fees_known=fees_known)
        document["written"] = [str(p) for p, _ in files]
        write_json(document)
    else:
        render_text(view, fees_known=fees_known, terminal=sys.stdout.isatty(), period=args.period)
        for target, _ in files:
            write_text([f"wrote {target}"])
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
