"""The daemon as a subprocess against a simulator served from the test process (which outlives the daemon)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lifecycle.clock import FakeClock, SystemClock
from simulator.engine import SimConfig, Simulator
from simulator.prices import ReplayCandle
from simulator.server import SimulatorServer
from tests.daemon.harness import API_KEY, API_SECRET

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "PF_ETHUSD"


BREAKOUT = "PF_XBTUSD"


def breakout_replay(now: datetime) -> list[ReplayCandle]:
    """1-minute XBT candles: two wide, quiet hours (a range of 400, so the ATR stop is ~500 away), then every candle
    from two minutes ago on closes 100 higher than the last, above the quiet channel, so the default strategy sees an
    upward breakout above its EMA on whichever candle closed last. The wide stop keeps the market entry's slippage
    against the last close (up to a candle's 120 of drift, whatever second of the minute the test starts in) well
    under the slippage rule's 1 R: the crash tests exercise recovery, not the slippage exit."""
    t0 = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    candles = []
    for i in range(130, 0, -1):
        mid = Decimal(60000) + (10 if i % 2 else -10)
        candles.append(ReplayCandle(t0 - timedelta(minutes=i), mid, mid + 200, mid - 200, mid))
    for i in range(240):
        close = Decimal(60300) + 100 * i
        candles.append(ReplayCandle(t0 + timedelta(minutes=i), close - 100, close + 10, close - 110, close))
    return candles


@contextmanager
def live_simulator(seed: int, *, breakout: bool = False) -> Iterator[tuple[Simulator, str]]:
    now = SystemClock().now()
    clock = FakeClock(now)  # the daemon reads the wall clock: keep simulated time on it
    replay = {BREAKOUT: breakout_replay(now)} if breakout else {}
    sim = Simulator(SimConfig(seed=seed, history_minutes=120, replay=replay), clock=clock)
    stop = threading.Event()

    def pace() -> None:
        last = time.monotonic()
        while not stop.wait(0.1):
            now = time.monotonic()
            whole = int(now - last)
            if whole >= 1:
                sim.advance(float(whole))
                last += whole

    pacer = threading.Thread(target=pace, daemon=True)
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET) as server:
        pacer.start()
        try:
            yield sim, server.base_url
        finally:
            stop.set()
            pacer.join(timeout=2)


def write_config(tmp_path: Path, base_url: str) -> Path:
    config = tmp_path / "daemon.toml"
    config.write_text(
        f'mode = "paper"\ndb_path = "{tmp_path / "registry.db"}"\nsymbols = ["PF_XBTUSD", "{SYMBOL}"]\n'
        f'timeframe = "1m"\n[venue]\nbase_url = "{base_url}"\nenable_rate_limit = false\ntimeout_ms = 3000\n'
        "[intervals]\ntick = 1\nreconcile = 1\nprotect = 1\nhealth = 2\n"
    )
    return config


def daemon(config: Path, *, duration: float, crash_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    env.update(TRADER_VENUE__API_KEY=API_KEY, TRADER_VENUE__API_SECRET=API_SECRET, PYTHONPATH=str(ROOT))
    if crash_at:
        env["DAEMON_CRASH_AT"] = crash_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scheduler",
            "--config",
            str(config),
            "--duration",
            str(duration),
            "--recovery-wait",
            "0.2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
