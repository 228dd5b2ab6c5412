"""`python -m backtest.demo --candles FILE [--days N] [--symbols S,..] [--timeframe TF] [--seed N]`

A newcomer's candle store with no network and no keys: the simulator generates its seeded price history, serves it
on 127.0.0.1 under Kraken's chart paths, and `tools.backfill_historical_data --execute` fills the store through
the real ccxt client, exactly as it would from Kraken's public candle endpoint. The history ends at a fixed
instant, so the same flags give the same candles, and a second run finds nothing missing (writes nothing).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.instruments import DEFAULT_INSTRUMENTS
from simulator.server import SimulatorServer
from tools import backfill_historical_data
from tools._cli import run_tool

HISTORY_END = datetime(2026, 7, 1, tzinfo=UTC)  # fixed: the same seed gives the same candles on every machine
HISTORY_STEP_S = 60  # one price a minute is all an hourly backtest needs, and keeps a few months to seconds


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m backtest.demo", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--candles", type=Path, required=True, metavar="FILE")
    p.add_argument("--days", type=int, default=120, choices=range(1, 731), metavar="N", help="history (1..730)")
    p.add_argument("--symbols", default="PF_XBTUSD,PF_ETHUSD")
    p.add_argument("--timeframe", default="1h")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    instruments = tuple(i for i in DEFAULT_INSTRUMENTS if i.symbol in symbols)
    if len(instruments) != len(symbols):
        known = ", ".join(i.symbol for i in DEFAULT_INSTRUMENTS)
        sys.stderr.write(f"error: --symbols {args.symbols}: use simulator instruments ({known})\n")
        return 2
    if not args.candles.parent.is_dir():
        args.candles.parent.mkdir(parents=True)
    sim = Simulator(
        SimConfig(
            seed=args.seed,
            instruments=instruments,
            history_minutes=args.days * 1440 + 60,
            history_step_seconds=HISTORY_STEP_S,
        ),
        clock=FakeClock(HISTORY_END),
    )
    key = secrets.token_hex(18)
    secret = base64.b64encode(secrets.token_bytes(64)).decode()
    with SimulatorServer(sim, api_key=key, api_secret=secret) as server, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "demo.toml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a config holding keys must be private
        with os.fdopen(fd, "w") as fh:
            fh.write(
                f'symbols = [{", ".join(repr(s) for s in symbols)}]\ntimeframe = "{args.timeframe}"\n'
                f'[venue]\nbase_url = "{server.base_url}"\napi_key = "{key}"\napi_secret = "{secret}"\n'
                "enable_rate_limit = false\n"
            )
        return run_tool(
            backfill_historical_data.main,
            ["--config", str(config), "--candles", str(args.candles), "--hours", str(args.days * 24), "--execute"],
            secrets=(key, secret),
        )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
