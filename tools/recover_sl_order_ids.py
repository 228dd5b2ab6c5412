"""`python -m tools.recover_sl_order_ids [--config FILE] [--db PATH] [--execute] [--json]`: relink stop ids.

An exposed position whose recorded stop-loss id is missing, or names an order the venue no longer shows, is
relinked to the live reduce-only stop on the closing side for its symbol (the one carrying its own client order
id first). The matching is the daemon's (`lifecycle.reconcile`), over one venue snapshot. Dry-run prints the
relinks; `--execute` writes them (and confirms protection for an OPEN position). Positions with no live stop
to relink are listed as needing a new stop (the daemon's protect job, or `sync_positions`, places it).
Exit 0 when nothing is left unlinked, 1 otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from exchange.venue import Venue
from lifecycle.clock import Clock
from lifecycle.reconcile import MissingStop, RelinkStop, reconcile
from operations import control, protection
from settings.config import Settings
from tools._cli import ProblemsFound, dry_run_prefix, make_parser, run_tool, write_json, write_text
from tools._venue import (
    add_common,
    build_venue,
    check_registry_file,
    daemon_context,
    db_path,
    open_registry,
    prepare,
    registry_errors,
    registry_inputs,
    tool_clock,
    venue_snapshot,
)


def _relink(
    env_settings: Settings, path: Path, venue: Venue, clock: Clock, relinks: Sequence[RelinkStop], done: list[str]
) -> None:
    """Write each relink through the daemon's protection planner in relink-only mode: the one ownership rule (a stop
    another position ever owned, open or closed, is never taken) decides, and nothing new is placed here."""
    answer = control.ask(path, "recover_sl_order_ids")
    if answer is not None:  # the daemon holds the registry: it relinks under its job lock (operations.control)
        done.extend(
            r.uid for r in relinks if any(r.uid in line for line in answer.lines if line.startswith("relinked"))
        )
        return
    registry = open_registry(
        path, clock, role="recover_sl_order_ids --execute", key_file=env_settings.registry_key_file
    )
    ctx = daemon_context(env_settings, registry, venue, clock, env_settings.protect.default_stop_pct)
    open_orders = venue.open_orders()
    for r in relinks:
        outcome = protection.protect(ctx, registry.get(r.uid), open_orders, relink_only=True)
        if outcome.relinked is not None:
            done.append(r.uid)


def main(argv: Sequence[str]) -> int:
    parser = add_common(
        make_parser(
            "python -m tools.recover_sl_order_ids",
            "Relink positions to their live stop-loss orders",
            modifies_state=True,
        )
    )
    args = parser.parse_args(argv)
    env = prepare(args, execute=args.execute)
    path = db_path(args, env.settings)
    check_registry_file(path)  # registry_inputs reads a missing file as empty: this tool needs one
    clock = tool_clock()
    venue = build_venue(env.settings, clock)
    snap = venue_snapshot(venue, clock, clock.now() - timedelta(minutes=5))
    inputs = registry_inputs(path, clock, snap.fills)
    rec = reconcile(inputs.positions, inputs.known_fill_ids, inputs.orders, snap, snap.server_time)
    if not rec.report.complete:
        raise ProblemsFound(f"venue snapshot incomplete ({rec.report.reason}): nothing judged; retry later")
    by_uid = {p.uid: p for p in inputs.positions}
    relinks = [a for a in rec.actions if isinstance(a, RelinkStop)]
    missing = [a for a in rec.actions if isinstance(a, MissingStop)]
    done: list[str] = []
    if args.execute and relinks:
        with registry_errors(path):
            _relink(env.settings, path, venue, clock, relinks, done)
        # A relink the ownership rule refused (a stop another position owned) leaves the position needing a stop.
        missing += [MissingStop(r.uid) for r in relinks if r.uid not in done]
        relinks = [r for r in relinks if r.uid in done]
    if args.json:
        doc: dict[str, Any] = {
            "db": str(path),
            "execute": args.execute,
            "relinks": [
                {
                    "position": r.uid,
                    "symbol": by_uid[r.uid].symbol_key,
                    "old": by_uid[r.uid].sl_order_id,
                    "new": r.order_id,
                }
                for r in relinks
            ],
            "relinked": done,
            "missing_stop": [{"position": m.uid, "symbol": by_uid[m.uid].symbol_key} for m in missing],
            "ok": not missing and (args.execute or not relinks),
        }
        write_json(doc)
    else:
        verb = "relinked" if args.execute else f"{dry_run_prefix(False)}relink"
        lines = [
            f"{verb} {r.uid} {by_uid[r.uid].symbol_key}: stop {by_uid[r.uid].sl_order_id or '-'} -> {r.order_id}"
            for r in relinks
        ]
        lines += [
            f"no live stop to relink for {m.uid} {by_uid[m.uid].symbol_key}: run python -m tools.sync_positions"
            " --execute or let the daemon's protect job place one"
            for m in missing
        ]
        if not relinks and not missing:
            lines.append("every exposed position is linked to its live stop-loss")
        elif relinks and not args.execute:
            lines.append("dry-run: nothing changed; re-run with --execute to write the relinks")
        write_text(lines)
    if missing:
        sys.stderr.write(f"error: {len(missing)} position(s) have no live stop-loss on the venue\n")
        return 1
    return 1 if relinks and not args.execute else 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
