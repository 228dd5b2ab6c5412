"""backfill_historical_data pages the venue's candles by time through the real ccxt client over HTTP, shows a
rich progress bar on a terminal only, and a second run writes nothing."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.instruments import DEFAULT_INSTRUMENTS
from simulator.server import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "backfill-key-0123456789abcdef"
SECRET = base64.b64encode(b"backfill-secret-" * 5).decode()


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    sim = Simulator(
        SimConfig(
            seed=3,
            instruments=tuple(i for i in DEFAULT_INSTRUMENTS if i.symbol == "PF_XBTUSD"),
            history_minutes=3 * 1440,
            history_step_seconds=60,
        ),
        clock=FakeClock(datetime(2026, 3, 1, tzinfo=UTC)),
    )
    with SimulatorServer(sim, api_key=KEY, api_secret=SECRET) as server:
        path = tmp_path / "c.toml"
        path.write_text(
            'symbols = ["PF_XBTUSD"]\ntimeframe = "5m"\n[venue]\n'
            f'base_url = "{server.base_url}"\napi_key = "{KEY}"\napi_secret = "{SECRET}"\nenable_rate_limit = false\n'
        )
        path.chmod(0o600)
        yield path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    return {**env, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm"}


def _args(config: Path, store: Path, *extra: str) -> list[str]:
    tool = [sys.executable, "-m", "tools.backfill_historical_data", "--config", str(config)]
    return [*tool, "--candles", str(store), "--hours", "48", "--execute", *extra]


def test_progress_bar_on_a_terminal_only_and_idempotent(config: Path, tmp_path: Path) -> None:
    store = tmp_path / "candles.db"
    master, slave = pty.openpty()
    proc = subprocess.Popen(  # stderr on a pseudo-terminal: what an operator's shell gives the tool
        _args(config, store), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=slave, text=True
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0, (out, seen)
    assert b"backfill" in seen and b"576/576" in seen, seen[-500:]  # 48 h of 5 m candles, all counted
    assert "wrote 576" in out

    piped = subprocess.run(_args(config, store, "--json"), cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # no bar in a pipe
    doc = json.loads(piped.stdout)
    assert [s["written"] for s in doc["series"]] == [0]  # the second run finds nothing missing
