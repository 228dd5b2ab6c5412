"""Each tool runs as a real subprocess against the simulator served over HTTP on 127.0.0.1, with real files."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from store.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "tools-key-0123456789abcdef"
API_SECRET = base64.b64encode(b"tools-secret-" * 6).decode()
SECRETS = (API_KEY, API_SECRET)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def assert_clean(self) -> None:
        """No traceback and no secret anywhere in what the operator sees."""
        text = self.out + self.err
        assert "Traceback" not in text, text
        for secret in SECRETS:
            assert secret not in text, "a secret reached the output"


def run_tool(name: str, *args: str, env: dict[str, str] | None = None) -> Run:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_") and k != "I_UNDERSTAND_LIVE"}
    base["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-m", f"tools.{name}", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = Run(proc.returncode, proc.stdout, proc.stderr)
    result.assert_clean()
    return result


def write_config(path: Path, base_url: str, *, db: Path, mode: str = "paper", extra: str = "") -> Path:
    path.write_text(
        f'mode = "{mode}"\n'
        f'db_path = "{db}"\n'
        'symbols = ["PF_XBTUSD", "PF_ETHUSD"]\n'
        'timeframe = "1m"\n'
        f"{extra}"
        "[venue]\n"
        f'base_url = "{base_url}"\n'
        f'api_key = "{API_KEY}"\n'
        f'api_secret = "{API_SECRET}"\n'
        "enable_rate_limit = false\n"
    )
    path.chmod(0o600)
    return path


@dataclass
class Env:
    sim: Simulator
    server: SimulatorServer
    clock: FakeClock
    config: Path
    db: Path
    tmp: Path

    def registry(self, age: timedelta = timedelta(hours=1)) -> Registry:
        """A registry handle whose writes are dated `age` ago (older than reconciliation's young grace)."""
        return Registry.open(self.db, FakeClock(self.clock.now() - age))

    def args(self, *extra: str) -> tuple[str, ...]:
        return ("--config", str(self.config), "--db", str(self.db), *extra)

    def venue_state(self) -> tuple[object, ...]:
        positions = tuple((p.symbol, p.side, p.size) for p in self.sim.positions())
        orders = tuple((o.order_id, o.order_type, o.size, o.stop_price) for o in self.sim.open_orders())
        return positions, orders, len(self.sim.order_log)


def registry_dump(db: Path) -> list[tuple[object, ...]]:
    """Every row of every table, to prove a dry-run wrote nothing."""
    import sqlite3

    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        rows: list[tuple[object, ...]] = []
        for t in tables:
            rows += [(t, *r) for r in con.execute(f'SELECT * FROM "{t}" ORDER BY rowid')]
        return rows
    finally:
        con.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    # The simulator's clock starts at the real time so the readiness skew check sees a sane serverTime;
    # it never advances by itself, so venue state only changes when a tool or the test acts.
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    sim = Simulator(SimConfig(seed=7, history_minutes=120), clock=clock)
    with SimulatorServer(sim, api_key=API_KEY, api_secret=API_SECRET) as server:
        db = tmp_path / "registry.db"
        config = write_config(tmp_path / "trader.toml", server.base_url, db=db)
        yield Env(sim, server, clock, config, db, tmp_path)
