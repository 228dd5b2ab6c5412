"""`python -m simulator --port PORT [--seed N] [--api-key KEY --api-secret B64] [--speed X]`

Serves the simulator on 127.0.0.1 for paper trading and manual exploration. Simulated time starts at the wall
clock and advances `--speed` simulated seconds per real second. Prints `SIMULATOR_READY base_url=...` once
listening; SIGTERM or Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from decimal import Decimal, InvalidOperation
from types import FrameType

from lifecycle.clock import FakeClock, SystemClock
from simulator.engine import SimConfig, Simulator
from simulator.ratelimit import RateLimits
from simulator.server import SimulatorServer

TICK_REAL_SECONDS = 0.1


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of prices, ids and faults (default 0)")
    parser.add_argument("--api-key", default=None, help="API key the server expects (default: auth disabled)")
    parser.add_argument("--api-secret", default=None, help="base64 API secret the server verifies Authent with")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    parser.add_argument("--starting-usd", type=_decimal, default=Decimal(10000), help="USD collateral (10000)")
    parser.add_argument("--history-minutes", type=int, default=3 * 1440, help="candle history before start")
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce Kraken's REST rate budgets (default: enforced)"
    )
    args = parser.parse_args(argv)
    if (args.api_key is None) != (args.api_secret is None):
        parser.error("give both --api-key and --api-secret, or neither (auth disabled)")
    if args.speed < 0:
        parser.error("--speed must be >= 0")
    return args


def config_from_args(args: argparse.Namespace) -> SimConfig:
    return SimConfig(
        seed=args.seed,
        starting_usd=args.starting_usd,
        history_minutes=args.history_minutes,
        rate_limits=RateLimits(enabled=not args.no_rate_limits),
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    clock = FakeClock(SystemClock().now())  # simulated time starts at wall time, then runs at --speed
    sim = Simulator(config_from_args(args), clock=clock)
    # Building the candle history takes seconds of wall time: catch up before serving, or every client's
    # clock-skew check (check_live_readiness, the daemon's snapshot) sees a simulator behind from its first answer.
    sim.advance(max(0.0, (SystemClock().now() - clock.now()).total_seconds()))
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server = SimulatorServer(sim, api_key=args.api_key, api_secret=args.api_secret, host=args.host, port=args.port)
    except ValueError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    try:
        server.start()
    except OSError as exc:
        print(
            f"simulator: cannot listen on {args.host}:{args.port}: {exc.strerror}; pick another --port", file=sys.stderr
        )
        return 2
    print(f"SIMULATOR_READY base_url={server.base_url}", flush=True)
    try:
        last = time.monotonic()
        while not stop.wait(TICK_REAL_SECONDS):
            now = time.monotonic()
            if args.speed > 0:
                sim.advance((now - last) * args.speed)
            last = now
    finally:
        server.stop()
    print("SIMULATOR_STOPPED", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
