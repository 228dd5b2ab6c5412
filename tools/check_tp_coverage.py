"""`python -m tools.check_tp_coverage [--config FILE] [--db PATH] [--offline] [--json]`: protection report. Read-only.

For every active position: is a stop-loss recorded, and is it live on the venue? Is a take-profit recorded and
live, where one is expected (the position carries a TP price, or `risk.take_profit_r` is configured)? Exits 0
when every exposed position is covered, 1 when any has a gap. `--offline` checks the registry alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from lifecycle.values import OrderStatus
from specs.lifecycle import ACTIVE_STATES, PROTECTABLE_STATES
from store.models import Position
from tools._cli import make_parser, run_tool, write_json, write_text
from tools._joint import joint_now
from tools._venue import add_common, build_venue, db_path, prepare, read_registry, venue_call

# EXITING is left out on purpose: its exit is in flight and the stop may legitimately be gone already.
NEEDS_PROTECTION = PROTECTABLE_STATES


@dataclass(frozen=True)
class Coverage:
    uid: str
    symbol: str
    side: str
    state: str
    sl_order_id: str | None
    sl_live: bool | None  # None: not checked (offline)
    tp_expected: bool
    tp_order_id: str | None
    tp_live: bool | None
    gaps: tuple[str, ...]


def assess(rows: Sequence[Position], live_ids: set[str] | None, tp_configured: bool) -> list[Coverage]:
    out = []
    for p in rows:
        sl_live = None if live_ids is None or not p.sl_order_id else p.sl_order_id in live_ids
        tp_live = None if live_ids is None or not p.tp_order_id else p.tp_order_id in live_ids
        tp_expected = p.take_profit_price is not None or tp_configured
        gaps: list[str] = []
        if p.state in NEEDS_PROTECTION:
            if not p.sl_order_id:
                gaps.append("no stop-loss recorded")
            elif sl_live is False:
                gaps.append(f"stop-loss {p.sl_order_id} not live on the venue")
            if tp_expected and not p.tp_order_id:
                gaps.append("no take-profit recorded")
            elif tp_expected and tp_live is False:
                gaps.append(f"take-profit {p.tp_order_id} not live on the venue")
        out.append(
            Coverage(
                p.uid, p.symbol_key, p.side, p.state, p.sl_order_id, sl_live, tp_expected, p.tp_order_id, tp_live,
                tuple(gaps),
            )
        )  # fmt: skip
    return out


def _mark(order_id: str | None, live: bool | None) -> str:
    if not order_id:
        return "-"
    return order_id + ("" if live is None else (" (live)" if live else " (NOT LIVE)"))


def main(argv: Sequence[str]) -> int:
    parser = add_common(make_parser("python -m tools.check_tp_coverage", "Stop-loss / take-profit coverage report"))
    parser.add_argument("--offline", action="store_true", help="registry only: do not ask the venue what is live")
    args = parser.parse_args(argv)
    env = prepare(args)
    path = db_path(args, env.settings)
    with read_registry(path):
        rows = list(
            Position.select()
            .where(Position.state.in_(sorted(ACTIVE_STATES)))
            .order_by(Position.created_ms, Position.uid)
        )
    live_ids: set[str] | None = None
    if not args.offline:
        venue = build_venue(env.settings)
        orders = venue_call("reading open orders", venue.open_orders)
        live_ids = {o.order_id for o in orders if o.status is OrderStatus.OPEN}
    report = assess(rows, live_ids, env.settings.risk.take_profit_r is not None)
    if not args.offline:
        # The daemon's joint invariant J2 at this instant: a live stop on the wrong side of the mark, or one that
        # covers less than the position, is a gap even though its id is recorded and live.
        joint = joint_now(env.settings, venue, path)
        unprotected = {f.key: f.detail for f in joint.findings if f.field == "unprotected_exposure"}
        report = [
            replace(c, gaps=(*c.gaps, f"J2: {unprotected[c.uid]}")) if c.uid in unprotected and not c.gaps else c
            for c in report
        ]
    gaps = [c for c in report if c.gaps]
    if args.json:
        doc: dict[str, Any] = {
            "db": str(path),
            "checked_venue": live_ids is not None,
            "positions": [asdict(c) for c in report],
            "gaps": len(gaps),
            "ok": not gaps,
        }
        write_json(doc)
    else:
        lines = [f"{len(report)} active position(s) in {path}" + ("" if live_ids is not None else " (offline)")]
        for c in report:
            lines.append(
                f"  {c.uid} {c.symbol} {c.side} {c.state}: SL {_mark(c.sl_order_id, c.sl_live)}, "
                f"TP {_mark(c.tp_order_id, c.tp_live) if c.tp_expected else 'not configured'}"
                + (f"  GAP: {'; '.join(c.gaps)}" if c.gaps else "")
            )
        lines.append(
            "status: " + ("COVERED" if not gaps else f"{len(gaps)} position(s) with gaps; "
            "run python -m tools.recover_sl_order_ids, then the daemon's protect job places what is missing")
        )  # fmt: skip
        write_text(lines)
    if gaps:
        sys.stderr.write(f"error: {len(gaps)} position(s) lack protection (see the report)\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
