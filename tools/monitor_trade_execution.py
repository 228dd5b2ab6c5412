"""`python -m tools.monitor_trade_execution [--config FILE] [--db PATH] [--since-hours H] [--venue] [--json]`.

Execution quality from the registry's orders and fill ledger (with `--venue`, also the venue's own fills for
our client order ids, which covers fills the ledger has not recorded yet). Read-only. Reports:
- fill ratio: orders with any fill / orders that reached the venue, and filled / ordered quantity;
- slippage in basis points of each filled order's volume-weighted fill price against its intended price (the
  limit or trigger price; for a market entry, the price the strategy decided at, recorded with its intent since
  schema version 6; other market orders have none), positive = worse for us;
- rejections grouped by the venue's reason; time from intent to first fill.
Exit 0 (a report, not a verdict), 2 for a missing registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import peewee as pw

from lifecycle.clock import SystemClock, from_ms, to_ms
from lifecycle.units import units_to_qty
from store.models import EntryDecision, Fill, Order
from tools._cli import bounded_float, make_parser, run_tool, write_json, write_text
from tools._venue import add_common, build_venue, db_path, prepare, read_registry, venue_call

BPS = Decimal(10000)
MAX_SINCE_HOURS = 24 * 365 * 20  # a timedelta this far back stays valid; no registry is older
SENT = frozenset({"open", "filled", "cancelled", "rejected", "unknown"})


@dataclass(frozen=True)
class FillRow:
    fill_id: str
    client_order_id: str | None
    venue_order_id: str | None
    qty: Decimal
    price: Decimal
    fill_ms: int


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    venue_order_id: str | None
    purpose: str
    side: str
    order_type: str
    qty: Decimal
    intended: Decimal | None
    status: str
    reason: str | None
    created_ms: int


def slippage_bps(side: str, intended: Decimal, price: Decimal) -> Decimal:
    """Positive when the fill was worse than intended: paid more on a buy, received less on a sell."""
    move = (price - intended) / intended * BPS
    return move if side == "buy" else -move


def _stats(values: Sequence[Decimal]) -> dict[str, Decimal | None]:
    if not values:
        return {"count": Decimal(0), "mean": None, "median": None, "max": None}
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    q = Decimal("0.01")
    return {
        "count": Decimal(len(values)),
        "mean": (sum(values, Decimal(0)) / len(values)).quantize(q),
        "median": median.quantize(q),
        "max": ordered[-1].quantize(q),
    }


def analyse(orders: Sequence[OrderRow], fills: Iterable[FillRow]) -> dict[str, Any]:
    by_coid = {o.client_order_id: o for o in orders}
    by_vid = {o.venue_order_id: o for o in orders if o.venue_order_id}
    fills_of: dict[str, list[FillRow]] = {}
    for f in fills:
        order = by_coid.get(f.client_order_id or "") or by_vid.get(f.venue_order_id or "")
        if order is not None:
            fills_of.setdefault(order.client_order_id, []).append(f)
    sent = [o for o in orders if o.status in SENT]
    with_fill = [o for o in sent if fills_of.get(o.client_order_id)]
    ordered_qty = sum((o.qty for o in sent), Decimal(0))
    filled_qty = sum((f.qty for o in sent for f in fills_of.get(o.client_order_id, ())), Decimal(0))
    slips: list[Decimal] = []
    per_order: list[dict[str, Any]] = []
    waits: list[Decimal] = []
    for o in with_fill:
        fs = fills_of[o.client_order_id]
        qty = sum((f.qty for f in fs), Decimal(0))
        vwap = sum((f.qty * f.price for f in fs), Decimal(0)) / qty
        waits.append(Decimal(min(f.fill_ms for f in fs) - o.created_ms) / 1000)
        slip = None if o.intended is None else slippage_bps(o.side, o.intended, vwap).quantize(Decimal("0.01"))
        if slip is not None:
            slips.append(slip)
        per_order.append(
            {"client_order_id": o.client_order_id, "purpose": o.purpose, "side": o.side, "type": o.order_type,
             "intended": o.intended, "fill_price": vwap.quantize(Decimal("0.00000001")).normalize(),
             "slippage_bps": slip}
        )  # fmt: skip
    rejections = Counter(o.reason or "unspecified" for o in orders if o.status == "rejected")
    return {
        "orders": len(orders),
        "orders_sent": len(sent),
        "orders_with_fills": len(with_fill),
        "fill_ratio": None if not sent else (Decimal(len(with_fill)) / len(sent)).quantize(Decimal("0.0001")),
        "qty_fill_ratio": None if not ordered_qty else (filled_qty / ordered_qty).quantize(Decimal("0.0001")),
        "status": dict(sorted(Counter(o.status for o in orders).items())),
        "slippage_bps": _stats(slips),
        "time_to_fill_s": _stats(waits),
        "rejections": dict(rejections.most_common()),
        "filled_orders": per_order,
    }


def _intended(limit_price: str | None, trigger_price: str | None) -> Decimal | None:
    text = limit_price or trigger_price
    return Decimal(text) if text else None


def _decision_prices(db: pw.Database, window: pw.ColumnBase) -> dict[int, str]:
    """position id -> the price its strategy decided at, for the positions of the orders in `window` (a registry
    older than schema version 6 has none)."""
    if not db.table_exists(EntryDecision._meta.table_name):
        return {}
    positions = Order.select(Order.position).where(window)
    return {
        _position_id(d): d.decision_price for d in EntryDecision.select().where(EntryDecision.position.in_(positions))
    }


def _position_id(row: pw.Model) -> int:
    return int(row.__data__["position"])  # the foreign key's raw id, without loading the position row


def load_rows(db: pw.Database, since_ms: int | None) -> tuple[list[OrderRow], list[FillRow]]:
    """The orders created since `since_ms` (all when None) and the ledger fills of those orders only: the window is
    applied in SQL, so a report of the last hours does not read a year's ledger into memory."""
    window = pw.SQL("1") if since_ms is None else (Order.created_ms >= since_ms)
    query = Order.select().where(window)
    decided = _decision_prices(db, window)
    orders = [
        OrderRow(
            o.client_order_id, o.venue_order_id, o.purpose, o.side, o.order_type, units_to_qty(o.qty_units),
            _intended(o.limit_price, o.trigger_price)
            or (_intended(decided.get(_position_id(o)), None) if o.purpose == "entry" else None),
            o.status, o.reason, o.created_ms,
        )
        for o in query.order_by(Order.created_ms)
    ]  # fmt: skip
    fills = [
        FillRow(f.fill_id, f.client_order_id, f.venue_order_id, units_to_qty(f.qty_units), Decimal(f.price), f.fill_ms)
        for f in Fill.select().where(
            Fill.client_order_id.in_(Order.select(Order.client_order_id).where(window))
            | Fill.venue_order_id.in_(
                Order.select(Order.venue_order_id).where(window & Order.venue_order_id.is_null(False))
            )
        )
    ]
    return orders, fills


def main(argv: Sequence[str]) -> int:
    parser = add_common(make_parser("python -m tools.monitor_trade_execution", "Execution quality metrics"))
    parser.add_argument(
        "--since-hours",
        type=bounded_float(0, MAX_SINCE_HOURS, lo_open=True),
        default=None,
        metavar="H",
        help="only orders created in the last H hours",
    )
    parser.add_argument("--venue", action="store_true", help="also read the venue's fills for our orders")
    args = parser.parse_args(argv)
    env = prepare(args)
    path = db_path(args, env.settings)
    clock = SystemClock()
    since_ms = None if args.since_hours is None else to_ms(clock.now() - timedelta(hours=args.since_hours))
    with read_registry(path) as db:
        orders, fills = load_rows(db, since_ms)
    venue_extra = 0
    oldest = min((o.created_ms for o in orders), default=None)
    if args.venue and oldest is not None:
        venue = build_venue(env.settings, clock)
        since = from_ms(oldest - 60_000)  # fills cannot precede their order's intent
        known = {f.fill_id for f in fills}
        coids = {o.client_order_id for o in orders}
        vids = {o.venue_order_id for o in orders if o.venue_order_id}
        for vf in venue_call("reading venue fills", partial(venue.fills_since, since)):
            ours = vf.client_order_id in coids or vf.order_id in vids  # manual trades are not our execution
            if ours and vf.fill_id not in known:
                venue_extra += 1
                fills.append(FillRow(vf.fill_id, vf.client_order_id, vf.order_id, vf.size, vf.price, to_ms(vf.time)))
    report = analyse(orders, fills)
    report["venue_fills_not_in_ledger"] = venue_extra if args.venue else None
    if args.json:
        write_json({"db": str(path), **report})
        return 0
    slip, wait = report["slippage_bps"], report["time_to_fill_s"]
    lines = [
        f"orders: {report['orders']} ({', '.join(f'{k}={v}' for k, v in report['status'].items()) or 'none'})",
        f"fill ratio: {report['fill_ratio']} of orders sent, {report['qty_fill_ratio']} of quantity",
        f"slippage (bps, + = worse): n={slip['count']} mean={slip['mean']} median={slip['median']} max={slip['max']}",
        f"time to fill (s): n={wait['count']} mean={wait['mean']} median={wait['median']} max={wait['max']}",
        "rejections: " + (", ".join(f"{r}={n}" for r, n in report["rejections"].items()) or "none"),
    ]
    if args.venue:
        lines.append(f"venue fills of our orders not yet in the ledger: {venue_extra}")
    write_text(lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
