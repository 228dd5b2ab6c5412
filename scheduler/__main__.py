"""`python -m scheduler --config FILE` (live or demo) and `python -m scheduler --paper` (the embedded default).

Exit codes: 0 stopped cleanly, 1 unexpected failure or venue unreachable, 2 configuration (systemd does not
restart), 3 registry audit failed (systemd does not restart). See RUNBOOK.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from scheduler.logsetup import configure_logging, redact
from scheduler.paper import run_paper
from scheduler.startup import EXIT_FAILURE, StartupRefused, run_live, step
from scheduler.telegram.oneshot import send_once
from settings.config import Settings, describe, validate_or_exit

log = logging.getLogger("scheduler")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scheduler", description="Kraken Futures lifecycle daemon.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, metavar="FILE", help="TOML config file (see config/example.toml)")
    source.add_argument("--paper", action="store_true", help="paper trading on the embedded simulator")
    parser.add_argument("--speed", type=float, default=None, help="paper: simulated seconds per real second (60)")
    parser.add_argument("--seed", type=int, default=None, help="paper: simulator seed (config paper.seed)")
    parser.add_argument("--db", type=Path, default=None, help="registry file (paper default var/paper/registry.db)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    parser.add_argument(
        "--recovery-wait", type=float, default=3.0, help="seconds between the 3 lookups of an in-flight order (3)"
    )
    parser.add_argument("--log-format", choices=("kv", "json"), default=None, help="override log.format")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings: Settings = validate_or_exit(None if args.paper else args.config)
    configure_logging(args.log_format or settings.log.format, settings.log.level, secrets=settings.secret_values())
    try:
        if args.paper or (settings.mode == "paper" and settings.venue.base_url is None):
            return run_paper(settings, speed=args.speed, seed=args.seed, db=args.db, duration_s=args.duration)
        step("config", describe(settings))
        return run_live(settings, db=args.db, duration_s=args.duration, recovery_wait_s=args.recovery_wait)
    except StartupRefused as refused:
        log.critical("%s", refused)
        print(redact(f"trading daemon: {refused}"), file=sys.stderr)
        if settings.telegram is not None:
            send_once(settings.telegram, f"TRADING DAEMON NOT RUNNING (exit {refused.exit_code}): {refused}")
        return refused.exit_code
    except Exception as exc:  # the last line of defence: one readable line, never a secret-bearing traceback
        log.critical("daemon failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        print(redact(f"trading daemon: unexpected failure: {type(exc).__name__}: {exc}"), file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
