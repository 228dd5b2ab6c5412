"""`python -m tools.sync_positions [--config FILE] [--db PATH] [--execute] [--json]`: registry vs venue.

Runs the daemon's own reconciliation diff (`lifecycle.reconcile.reconcile`) over two venue snapshots taken
`--confirm-wait-s` apart, because an orphan or phantom counts only when two consecutive snapshots agree.
Dry-run (default) prints the orphans it would import and the phantoms it would close. `--execute` imports each
orphan into the registry, protects it (relinks a reduce-only stop already on the venue, else places one at
entry -/+ atr_stop_multiple x ATR, or `--stop-pct` from entry when candles are short) and closes confirmed
phantoms with the daemon's evidence rules. Exit 0 in sync (or all done), 1 when work remains or failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from exchange.venue import Venue
from lifecycle.clock import Clock
from lifecycle.reconcile import ClosePhantom, ImportOrphan, Issue, Reconciliation
from lifecycle.values import AccountSnapshot
from operations import control, sync
from operations.sync import Outcome
from tools._cli import (
    ProblemsFound,
    bounded_decimal,
    bounded_float,
    dry_run_prefix,
    make_parser,
    run_tool,
    write_json,
    write_text,
)
from tools._joint import suspected_differences
from tools._venue import (
    RegistryInputs,
    ToolEnv,
    add_common,
    build_venue,
    check_registry_file,
    daemon_context,
    db_path,
    known_fill_ids,
    open_registry,
    prepare,
    registry_errors,
    registry_inputs,
    tool_clock,
    venue_snapshot,
)


def diff(
    args: argparse.Namespace, venue: Venue, inputs_path: Path, clock: Clock
) -> tuple[Reconciliation, AccountSnapshot]:
    """The daemon's confirmation loop (operations.sync.confirm) on the registry file, read without writing; with the
    snapshot the verdict was judged on."""
    read: list[RegistryInputs] = []
    seen: list[AccountSnapshot] = []

    def registry_side() -> sync.RegistrySide:
        read.append(registry_inputs(inputs_path, clock))
        return read[-1].positions, read[-1].orders

    def snapshot() -> AccountSnapshot:
        seen.append(venue_snapshot(venue, clock, clock.now() - sync.FILL_LOOKBACK))
        return seen[-1]

    rec = sync.confirm(registry_side, snapshot, partial(known_fill_ids, inputs_path), args.confirm_wait_s)
    if not rec.report.complete:
        raise ProblemsFound(f"venue snapshot incomplete ({rec.report.reason}): nothing judged; retry later")
    return rec, seen[-1]


def execute(
    env: ToolEnv, args: argparse.Namespace, venue: Venue, path: Path, clock: Clock, rec: Reconciliation
) -> Outcome:
    """The daemon's own operation (operations.sync): run by the daemon when it holds the registry (handed over its
    control socket, operations.control), else here."""
    answer = control.ask(path, "sync_positions", {"confirm_wait_s": args.confirm_wait_s})
    if answer is not None:
        done = [line for line in answer.lines if not line.startswith("FAILED: ")]
        failed = [line.removeprefix("FAILED: ") for line in answer.lines if line.startswith("FAILED: ")]
        return Outcome(["(run by the daemon) " + line for line in done], failed)
    registry = open_registry(
        path, clock, must_exist=False, role="sync_positions --execute", key_file=env.settings.registry_key_file
    )
    ctx = daemon_context(env.settings, registry, venue, clock, args.stop_pct)
    return sync.sync(ctx, rec.actions)


def main(argv: Sequence[str]) -> int:
    parser = add_common(
        make_parser("python -m tools.sync_positions", "Sync venue positions into the registry", modifies_state=True)
    )
    parser.add_argument(
        "--confirm-wait-s",
        type=bounded_float(0, 600),
        default=2.0,
        help="seconds between the two snapshots (default 2)",
    )
    parser.add_argument(
        "--stop-pct",
        type=bounded_decimal(Decimal(0), Decimal(50), lo_open=True),
        default=Decimal(2),
        help="fallback stop distance from entry in percent when ATR cannot be computed (default 2)",
    )
    args = parser.parse_args(argv)
    env = prepare(args, execute=args.execute)
    path = db_path(args, env.settings)
    _require_registry(path, env.settings.db_path)
    clock = tool_clock()
    venue = build_venue(env.settings, clock)
    rec, snap = diff(args, venue, path, clock)
    imports = [a for a in rec.actions if isinstance(a, ImportOrphan)]
    phantoms = [a for a in rec.actions if isinstance(a, ClosePhantom)]
    others = [i for i in rec.issues if i.cls not in ("orphaned", "phantom")]
    # Seen but not confirmed by both looks, or behind unbooked fills that close the symbol's positions: not acted on
    # here, and not in sync either.
    unconfirmed = suspected_differences(rec, snap)
    outcome = Outcome()
    if args.execute and (imports or phantoms):
        with registry_errors(path):
            outcome = execute(env, args, venue, path, clock, rec)
    pending = bool(imports or phantoms) and not args.execute
    if args.json:
        doc: dict[str, Any] = {
            "db": str(path),
            "execute": args.execute,
            "report": rec.report.counters(),
            "orphans": [
                {"symbol": a.symbol, "side": a.side.value, "qty": a.qty, "entry_price": a.entry_price} for a in imports
            ],
            "phantoms": [a.uid for a in phantoms],
            "other_issues": [
                {"class": i.cls, "symbol": i.symbol, "position": i.uid, "detail": i.detail} for i in others
            ],
            "unconfirmed": list(unconfirmed),
            "done": outcome.done,
            "failed": outcome.failed,
            "in_sync": not (imports or phantoms or others or unconfirmed),
        }
        write_json(doc)
    else:
        prefix = dry_run_prefix(args.execute)
        lines = [f"registry {path} vs venue {env.settings.venue.host}: " + ", ".join(
            f"{k}={v}" for k, v in rec.report.counters().items() if k in ("orphaned", "phantom", "qty_mismatch")
        )]  # fmt: skip
        if not args.execute:
            lines += [f"{prefix}import orphan {a.symbol} {a.side.value} {a.qty} @ {a.entry_price}" for a in imports]
            lines += [f"{prefix}close phantom {a.uid}" for a in phantoms]
        lines += outcome.done + [f"FAILED: {f}" for f in outcome.failed]
        lines += [f"note: {i.cls} {i.symbol} {i.uid or '-'} {i.detail} (left to the daemon)" for i in others]
        lines += [
            f"note: {d} not acted on: seen in one snapshot only, or (an orphan) behind venue fills not booked yet that"
            " close the registry's positions on its symbol (the daemon books them, then adopts it); re-run later"
            for d in unconfirmed
        ]
        if not (imports or phantoms or others or unconfirmed):
            lines.append("in sync: nothing to import or close")
        elif (others or unconfirmed) and not (imports or phantoms):
            lines.append("NOT in sync: the differences above need an operator (see RUNBOOK: qty_mismatch)")
        elif pending:
            lines.append("dry-run: nothing changed; re-run with --execute to act")
        write_text(lines)
    if outcome.failed:
        sys.stderr.write(f"error: {len(outcome.failed)} action(s) failed (see the report)\n")
        return 1
    return 1 if pending or unconfirmed or _needs_operator(others) else 0


def _require_registry(path: Path, configured: Path) -> None:
    """A `--db` that does not exist and is not the configured registry is a mistyped path (exit 2), never an empty
    registry "in sync". The configured registry itself may not exist yet (a host before the daemon's first start):
    it reads as empty, and `--execute` creates it for a first import."""
    if path.exists():
        check_registry_file(path)
        return
    if path.resolve() == configured.resolve():
        return
    check_registry_file(path)  # raises: does not exist, nothing created


def _needs_operator(others: Sequence[Issue]) -> bool:
    """A quantity mismatch (or a stop the daemon must still place) is not "in sync", whatever else is."""
    return any(i.cls in ("qty_mismatch", "missing_stop") for i in others)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
