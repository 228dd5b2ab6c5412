"""`python -m scheduler [--config FILE]` (live or demo) and `python -m scheduler --paper` (the embedded default).

Without `--config` the config is found as settings/discovery.py says ($TRADER_CONFIG, /etc/trading-bot/config.toml,
./config.toml) and the file used is named in the first STARTUP_STEP line.

Exit codes: 0 stopped cleanly, 1 unexpected failure or venue unreachable, 2 configuration or usage (systemd does
not restart), 3 registry audit failed (systemd does not restart). See RUNBOOK.md.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from scheduler.logsetup import configure_logging, install_excepthooks, redact
from scheduler.paper import MAX_SPEED, MIN_SPEED, run_paper
from scheduler.startup import EXIT_FAILURE, StartupRefused, run_live, step
from settings.config import EXIT_CONFIG, Settings, describe, validate_or_exit
from settings.discovery import DiscoveryError, Found, discover, searched

log = logging.getLogger("scheduler")
PROG = "python -m scheduler"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line naming the problem and where to look, exit 2 (argparse's default adds a usage block).
        self.exit(EXIT_CONFIG, f"{PROG}: {message} (see --help)\n")


def _ranged(name: str, low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in {low:g}..{high:g}, not {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be a number in {low:g}..{high:g}, not {text!r}")
        return value

    parse.__name__ = name
    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _Parser(prog=PROG, description="Kraken Futures lifecycle daemon.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config", type=Path, metavar="FILE", help=f"TOML config file (default: the first of {searched()})"
    )
    source.add_argument("--paper", action="store_true", help="paper trading on the embedded simulator")
    parser.add_argument(
        "--speed",
        type=_ranged("--speed", MIN_SPEED, MAX_SPEED),
        default=None,
        help=f"paper: simulated seconds per real second, {MIN_SPEED:g}..{MAX_SPEED:g} (config paper.speed, 60)",
    )
    parser.add_argument("--seed", type=int, default=None, help="paper: simulator seed (config paper.seed)")
    parser.add_argument("--db", type=Path, default=None, help="registry file (paper default var/paper/registry.db)")
    parser.add_argument(
        "--duration",
        type=_ranged("--duration", 0.1, 10 * 365 * 86_400),
        default=None,
        help="stop after this many real seconds",
    )
    parser.add_argument(
        "--recovery-wait",
        type=_ranged("--recovery-wait", 0.0, 600.0),
        default=3.0,
        help="seconds between the 3 lookups of an in-flight order, 0..600 (3)",
    )
    parser.add_argument("--log-format", choices=("kv", "json"), default=None, help="override log.format")
    args = parser.parse_args(argv)
    if args.seed is not None and not 0 <= args.seed <= 2**63 - 1:
        parser.error("--seed must be a whole number in 0..9223372036854775807")
    return args


def _config(args: argparse.Namespace) -> tuple[Settings, Found | None]:
    if args.paper:
        return validate_or_exit(None), None
    try:
        found = discover(args.config)
    except DiscoveryError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    if found.path is None:
        print(f"{PROG}: no config file found (looked at {searched()}); pass --config FILE, or --paper", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    return validate_or_exit(found.path, secrets_path=found.secrets), found


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    install_excepthooks()
    settings, found = _config(args)
    configure_logging(
        args.log_format or settings.log.format,
        settings.log.level,
        secrets=settings.secret_values(),
        quiet_cycles=settings.log.quiet_cycles,
    )
    try:
        if found is not None:
            step("config_file", found.describe())
        if args.paper or (settings.mode == "paper" and settings.venue.base_url is None):
            return run_paper(
                settings, speed=args.speed, seed=args.seed, db=args.db, duration_s=args.duration, embedded=args.paper
            )
        step("config", describe(settings))
        return run_live(settings, db=args.db, duration_s=args.duration, recovery_wait_s=args.recovery_wait)
    except StartupRefused as refused:
        log.critical("%s", refused)
        print(redact(f"trading daemon: {refused}"), file=sys.stderr)
        if settings.telegram is not None:
            from scheduler.telegram.oneshot import send_once  # only a daemon with [telegram] loads the bot library

            send_once(settings.telegram, f"TRADING DAEMON NOT RUNNING (exit {refused.exit_code}): {refused}")
        return refused.exit_code
    except Exception as exc:  # the last line of defence: one readable line, never a secret-bearing traceback
        log.critical("daemon failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        print(redact(f"trading daemon: unexpected failure: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
