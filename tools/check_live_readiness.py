"""`python -m tools.check_live_readiness [--config FILE] [--max-skew-s N] [--json]`: can we trade? Read-only.

Checks, in order, each with what to fix when it fails: the config validates; the venue answers a public call
(instruments); authentication works (a private call: the margin accounts); the clock skew between this host
and the venue's serverTime; an instrument exists and is tradeable for every configured symbol; the margin
snapshot (equity positive, utilisation below the kill-switch threshold). Exit 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from exchange.errors import AuthenticationFailed, VenueError
from exchange.venue import Venue
from lifecycle.clock import Clock, SystemClock
from lifecycle.values import Instrument, MarginSnapshot
from settings.config import Settings, describe
from tools._cli import ToolError, bounded_float, make_parser, run_tool, write_json, write_text
from tools._venue import add_common, build_venue, load


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _venue_error(exc: VenueError) -> str:
    return f"{type(exc).__name__}: {exc}"


def venue_checks(settings: Settings, venue: Venue, clock: Clock, max_skew_s: float) -> list[Check]:
    """Reachability, auth, skew, instruments, margin. Stops early when an earlier step makes later ones moot."""
    checks: list[Check] = []
    host = settings.venue.host or "?"
    try:
        instruments: dict[str, Instrument] = venue.instruments()
        checks.append(Check("venue_reachable", True, f"{host} listed {len(instruments)} instruments"))
    except VenueError as exc:
        checks.append(
            Check("venue_reachable", False, _venue_error(exc), "check venue.base_url, DNS, firewall and Kraken status")
        )
        return checks
    try:
        margin: MarginSnapshot = venue.margin()
        checks.append(Check("authentication", True, "private call (accounts) accepted"))
    except AuthenticationFailed as exc:
        checks.append(
            Check(
                "authentication",
                False,
                _venue_error(exc),
                "check venue.api_key / venue.api_secret (copy them again from Kraken; keys need read + trade "
                "permissions; the host clock must be right for the nonce)",
            )
        )
        margin = None  # type: ignore[assignment]
    except VenueError as exc:
        checks.append(Check("authentication", False, _venue_error(exc), "retry; if it persists check Kraken status"))
        margin = None  # type: ignore[assignment]
    if margin is not None and not margin.server_time_known:
        checks.append(
            Check(
                "clock_skew",
                False,
                "the venue's accounts answer carried no serverTime, so the skew cannot be measured",
                "retry; every Kraken answer carries serverTime, so a missing one means something between this host"
                " and Kraken (a proxy, a wrong venue.base_url) rewrites the answers",
            )
        )
    elif margin is not None:
        skew = abs((clock.now() - margin.time).total_seconds())
        checks.append(
            Check(
                "clock_skew",
                skew <= max_skew_s,
                f"{skew:.1f}s between this host and the venue's serverTime (limit {max_skew_s:g}s)",
                "" if skew <= max_skew_s else "sync the host clock (systemctl status systemd-timesyncd / chrony)",
            )
        )
    for symbol in settings.symbols:
        inst = instruments.get(symbol)
        if inst is None:
            checks.append(
                Check(f"instrument:{symbol}", False, "not listed by the venue", "remove it from `symbols` or fix it")
            )
        elif not inst.tradeable:
            checks.append(
                Check(f"instrument:{symbol}", False, "listed but not tradeable (suspended)", "wait or remove")
            )
        else:
            checks.append(Check(f"instrument:{symbol}", True, f"tick {inst.tick_size}, min size {inst.min_size}"))
    if margin is not None:
        limit = settings.risk.max_margin_utilization_pct
        util = margin.utilization_pct.quantize(Decimal("0.01"))
        ok = margin.margin_equity > 0 and margin.utilization_pct < limit
        checks.append(
            Check(
                "margin",
                ok,
                f"equity {margin.margin_equity}, available {margin.available_margin}, utilisation {util}% "
                f"(kill switch at {limit}%)",
                "" if ok else "fund the account or reduce positions before trading",
            )
        )
    return checks


def config_check(load_fn: Callable[[], Settings]) -> tuple[Settings | None, Check]:
    try:
        settings = load_fn()
    except ToolError as exc:
        return None, Check("config", False, str(exc), "fix the named keys (python -m settings.config --check FILE)")
    return settings, Check("config", True, describe(settings))


def render(checks: Sequence[Check], as_json: bool, extra: dict[str, Any] | None = None) -> int:
    ok = all(c.ok for c in checks)
    if as_json:
        write_json({**(extra or {}), "ok": ok, "checks": [asdict(c) for c in checks]})
    else:
        lines = [
            f"[{'PASS' if c.ok else 'FAIL'}] {c.name}: {c.detail}" + (f" -> {c.fix}" if c.fix else "") for c in checks
        ]
        lines.append("READY" if ok else f"NOT READY: {sum(not c.ok for c in checks)} check(s) failed")
        write_text(lines)
    return 0 if ok else 1


def readiness(args: argparse.Namespace) -> list[Check]:
    settings, cfg = config_check(lambda: load(args.config))
    checks = [cfg]
    if settings is None:
        return checks
    try:
        venue = build_venue(settings)
    except ToolError as exc:
        return [*checks, Check("venue_reachable", False, str(exc), "set the venue section of the config")]
    return checks + venue_checks(settings, venue, SystemClock(), args.max_skew_s)


def add_skew(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--max-skew-s",
        type=bounded_float(0, 3600),
        default=5.0,
        metavar="S",
        help="allowed clock skew in seconds (default 5)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    parser = add_skew(add_common(make_parser("python -m tools.check_live_readiness", "API and system readiness")))
    args = parser.parse_args(argv)
    return render(readiness(args), args.json)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
