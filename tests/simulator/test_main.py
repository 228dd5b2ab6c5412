"""`python -m simulator` starts, prints its ready line, serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[2]


def test_cli_ready_line_serves_and_stops_on_sigterm() -> None:
    secret = base64.b64encode(os.urandom(64)).decode()
    cmd = [sys.executable, "-m", "simulator", "--port", "0", "--seed", "3", "--history-minutes", "30",
           "--api-key", "k", "--api-secret", secret, "--speed", "60"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("SIMULATOR_READY base_url=http://127.0.0.1:")
        base = line.split("=", 1)[1]
        with urlopen(base + "/derivatives/api/v3/tickers/PF_XBTUSD", timeout=5) as resp:  # noqa: S310 - loopback
            first = json.loads(resp.read())["ticker"]["lastTime"]
        time.sleep(0.3)
        with urlopen(base + "/derivatives/api/v3/tickers/PF_XBTUSD", timeout=5) as resp:  # noqa: S310
            second = json.loads(resp.read())["ticker"]["lastTime"]
        assert second > first  # simulated time runs at --speed
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "SIMULATOR_STOPPED" in out
    assert "Traceback" not in err and secret not in out + err


def test_cli_rejects_half_credentials() -> None:
    cmd = [sys.executable, "-m", "simulator", "--api-key", "k"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2 and "--api-secret" in done.stderr and "Traceback" not in done.stderr


def test_simulated_time_starts_level_with_the_wall_clock_after_the_history_is_built() -> None:
    """A day of candles takes seconds to build; a simulator that started its clock before that would answer
    behind wall time for ever, and a client's clock-skew check against it would fail."""
    cmd = [sys.executable, "-m", "simulator", "--port", "0", "--history-minutes", "1440", "--speed", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        started = time.monotonic()
        base = proc.stdout.readline().strip().split("=", 1)[1]
        built_in = time.monotonic() - started
        with urlopen(base + "/derivatives/api/v3/tickers", timeout=5) as resp:  # noqa: S310 - loopback
            server_time = json.loads(resp.read())["serverTime"]
        lag = time.time() - datetime.fromisoformat(server_time.replace("Z", "+00:00")).timestamp()
        assert abs(lag) < 1.0, f"simulator is {lag:.2f} s behind wall time (history took {built_in:.1f} s)"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_rate_budgets_are_on_unless_turned_off() -> None:
    from simulator.__main__ import config_from_args, parse_args

    assert config_from_args(parse_args([])).rate_limits.enabled
    assert not config_from_args(parse_args(["--no-rate-limits"])).rate_limits.enabled
