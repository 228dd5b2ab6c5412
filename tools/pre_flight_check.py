"""`python -m tools.pre_flight_check [--config FILE] [--db PATH] [--max-skew-s N] [--json]`: before going live.

Everything `check_live_readiness` checks, plus: the registry's health and audit (`check_db_health`), the config
file's permissions (owner only), threshold consistency (THRESHOLD_MISMATCH), the kill-switch settings, and
that every exposed position has a live stop-loss on the venue. Read-only. Exit 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from exchange.errors import VenueError
from lifecycle.clock import SystemClock
from lifecycle.values import OrderStatus
from settings.config import Settings, check_thresholds
from settings.secrets_guard import permission_problem
from specs.lifecycle import ACTIVE_STATES
from store.models import Position
from tools import check_db_health
from tools._cli import ToolError, make_parser, run_tool
from tools._venue import add_common, build_venue, load, read_registry
from tools.check_live_readiness import Check, add_skew, config_check, render, venue_checks
from tools.check_tp_coverage import assess


def file_checks(config: Path | None) -> list[Check]:
    if config is None:
        return [Check("config_permissions", True, "no --config: the embedded paper defaults (no secrets)")]
    if not config.is_file():
        return []  # the config check already says the file is missing
    problem = permission_problem(config)
    return [Check("config_permissions", problem is None, problem or f"{config} is accessible by its owner only")]


def settings_checks(settings: Settings) -> list[Check]:
    risk = settings.risk
    mismatches = check_thresholds(settings)
    checks = [
        Check(
            "thresholds",
            not mismatches,
            "; ".join(mismatches)
            or f"auction_max_margin_util {risk.auction_max_margin_util}% <= max_margin_utilization_pct "
            f"{risk.max_margin_utilization_pct}%",
        )
    ]
    release = risk.max_margin_utilization_pct - risk.kill_switch_hysteresis_pct
    flapping = risk.kill_switch_hysteresis_pct == 0
    checks.append(
        Check(
            "kill_switch",
            not flapping,
            f"margin_critical engages at {risk.max_margin_utilization_pct}%, releases below {release}% after "
            f"{risk.kill_switch_release_cycles} calm cycle(s)",
            "set risk.kill_switch_hysteresis_pct above 0, or the kill switch can flap at the threshold"
            if flapping
            else "",
        )
    )
    return checks


def db_checks(path: Path) -> list[Check]:
    try:
        report = check_db_health.check(path)
    except ToolError as exc:
        return [Check("registry_health", False, str(exc), "run python -m tools.check_db_health for details")]
    detail = "healthy" if report.ok else "; ".join(report.problems)
    audit = " ".join(f"{k}={v}" for k, v in report.audit.fields().items()) if report.audit else "no audit"
    return [
        Check(
            "registry_health",
            report.ok,
            f"{path}: {detail} ({audit})",
            "" if report.ok else "keep the service stopped; see the runbook's incident playbook",
        )
    ]


def protection_checks(settings: Settings, path: Path, live_ids: set[str]) -> list[Check]:
    with read_registry(path):
        rows = list(Position.select().where(Position.state.in_(sorted(ACTIVE_STATES))))
    unprotected = [c for c in assess(rows, live_ids, tp_configured=False) if c.gaps]
    detail = (
        "; ".join(f"{c.uid} {c.symbol}: {', '.join(c.gaps)}" for c in unprotected)
        or f"{len(rows)} active position(s), every exposed one has a live stop-loss"
    )
    fix = "python -m tools.recover_sl_order_ids --execute, then python -m tools.sync_positions --execute"
    return [Check("positions_protected", not unprotected, detail, fix if unprotected else "")]


def preflight(args: argparse.Namespace) -> list[Check]:
    settings, cfg = config_check(lambda: load(args.config))
    checks = [cfg, *file_checks(args.config)]
    if settings is None:
        return checks
    checks += settings_checks(settings)
    path: Path = args.db if args.db is not None else settings.db_path
    db = db_checks(path)
    checks += db
    try:
        venue = build_venue(settings)
    except ToolError as exc:
        return [*checks, Check("venue_reachable", False, str(exc), "set the venue section of the config")]
    vchecks = venue_checks(settings, venue, SystemClock(), args.max_skew_s)
    checks += vchecks
    if all(c.ok for c in vchecks + db):
        try:
            orders = venue.open_orders()
        except VenueError as exc:
            return [*checks, Check("positions_protected", False, f"open orders unreadable: {exc}", "retry")]
        checks += protection_checks(settings, path, {o.order_id for o in orders if o.status is OrderStatus.OPEN})
    return checks


def main(argv: Sequence[str]) -> int:
    parser = add_skew(add_common(make_parser("python -m tools.pre_flight_check", "Full pre-flight check (read-only)")))
    args = parser.parse_args(argv)
    return render(preflight(args), args.json)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
