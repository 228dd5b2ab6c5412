"""`python -m tools.pre_flight_check [--config FILE] [--db PATH] [--max-skew-s N] [--json]`: before going live.

Everything `check_live_readiness` checks, plus: the registry's health and audit (`check_db_health`), the config
file's permissions (owner only), threshold consistency (THRESHOLD_MISMATCH), the kill-switch settings, that every
exposed position has a live stop-loss on the venue, the joint invariants at this instant (registry quantities match
the venue, no stray live order, every stop on the protective side of the mark) and the running daemon's own safety
state (not READY while it is halted or escalated). Read-only. Exit 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from exchange.errors import VenueError
from exchange.venue import Venue
from lifecycle.clock import SystemClock
from lifecycle.values import OrderStatus
from operations.daemon_state import read_state
from settings.config import Settings, check_thresholds
from settings.secrets_guard import permission_problem
from specs.lifecycle import ACTIVE_STATES
from store.models import Position
from tools import check_db_health
from tools._cli import ToolError, make_parser, run_tool
from tools._joint import describe, joint_now
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


def daemon_state_check(path: Path) -> list[Check]:
    """The running daemon's own word on its safety state (operations.daemon_state), when it has one."""
    state = read_state(path)
    if state is None:
        return [Check("daemon_state", True, "no daemon state file beside the registry (daemon not run yet)")]
    ok = state.state == "trading" and not state.escalations
    detail = f"daemon pid {state.pid} reported {state.state} at {state.at.isoformat()}"
    if state.escalations:
        detail += f"; critical escalations: {', '.join(state.escalations)}"
    fix = "resolve the escalation (RUNBOOK incident playbook) and restart the daemon" if not ok else ""
    return [Check("daemon_state", ok, detail, fix)]


def joint_checks(settings: Settings, venue: Venue, path: Path) -> list[Check]:
    """Registry x venue, read with the daemon's own rules (tools._joint): quantities, stray orders, protection."""
    try:
        now = joint_now(settings, venue, path)
    except ToolError as exc:
        return [Check("registry_matches_venue", False, str(exc), "retry once the venue answers")]
    strays = describe(now.findings, "stray_venue_orders")
    unprotected = describe(now.findings, "unprotected_exposure")
    churn = describe(now.findings, "stop_churn")
    differences = [*now.qty_mismatch, *now.suspected]
    return [
        Check(
            "registry_matches_venue",
            not differences,
            "; ".join(differences) or "every registry quantity matches the venue",
            "python -m tools.sync_positions (dry-run) and the RUNBOOK's qty_mismatch and orphan/phantom playbooks"
            if differences
            else "",
        ),
        Check(
            "no_stray_orders",
            not strays,
            "; ".join(strays) or "no live venue order without a live owner",
            "cancel them on the venue (or let the daemon's reconciliation settle them), then re-run" if strays else "",
        ),
        Check(
            "stops_protective",
            not unprotected,
            "; ".join(unprotected) or "each exposed position has exactly one live stop on the protective side",
            "python -m tools.recover_sl_order_ids --execute, or let the daemon's protect job act"
            if unprotected
            else "",
        ),
        Check(
            "stops_not_churning",
            not churn,
            "; ".join(churn) or "no position past protect.max_replacements_per_hour stop placements in the last hour",
            "find out why its stops keep vanishing (ORDER_REJECTED_BY_VENUE, STOP_CHURN_LIMIT lines); the daemon sends"
            " no more stops for it until the hour has passed"
            if churn
            else "",
        ),
    ]


def stream_check(settings: Settings) -> list[Check]:
    """The order stream's websocket (docs/stream.md): reachable, and the key's signed challenge accepted."""
    from exchange.stream import probe  # ccxt.pro is heavy: only a config that reached the venue loads it

    venue = settings.venue
    if venue.api_key is None or venue.api_secret is None:
        return []
    ok, detail = probe(
        api_key=venue.api_key.get_secret_value(),
        api_secret=venue.api_secret.get_secret_value(),
        base_url=venue.base_url,
        timeout_s=venue.timeout_ms / 1000,
    )
    fix = "" if ok else "the daemon trades on REST polling without it; RUNBOOK 'Websocket health' (stream.enabled)"
    return [Check("order_stream", ok, detail, fix)]


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
    if settings.stream.enabled and all(c.ok for c in vchecks):
        checks += stream_check(settings)
    if all(c.ok for c in vchecks + db):
        try:
            orders = venue.open_orders()
        except VenueError as exc:
            return [*checks, Check("positions_protected", False, f"open orders unreadable: {exc}", "retry")]
        checks += protection_checks(settings, path, {o.order_id for o in orders if o.status is OrderStatus.OPEN})
        checks += joint_checks(settings, venue, path)
    checks += daemon_state_check(path)
    return checks


def main(argv: Sequence[str]) -> int:
    parser = add_skew(add_common(make_parser("python -m tools.pre_flight_check", "Full pre-flight check (read-only)")))
    args = parser.parse_args(argv)
    return render(preflight(args), args.json)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
