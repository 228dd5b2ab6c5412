"""`--execute` tools while the daemon runs (issue #5): the tool hands its operation to the daemon over the
registry's control socket (mode 0600), the daemon runs it under its job lock, and the tool prints the answer.
Real parts: the daemon as a subprocess, the simulator over HTTP, the tool as a subprocess."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from operations.control import ask, socket_path
from tests.daemon.harness import API_KEY, API_SECRET
from tests.daemon.procs import ROOT, daemon, live_simulator, write_config


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _tool(name: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADER_")}
    env.update(TRADER_VENUE__API_KEY=API_KEY, TRADER_VENUE__API_SECRET=API_SECRET, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", f"tools.{name}", "--config", str(config), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_sync_positions_execute_is_run_by_the_daemon_while_it_holds_the_registry(tmp_path: Path) -> None:
    with live_simulator(seed=11) as (sim, base_url):
        config = write_config(tmp_path, base_url)
        db = tmp_path / "registry.db"
        proc = daemon(config, duration=60)
        try:
            _wait_for(lambda: socket_path(db).exists())
            mode = stat.S_IMODE(os.stat(socket_path(db)).st_mode)
            assert mode == 0o600, oct(mode)
            answer = ask(db, "ping")
            assert answer is not None and answer.code == 0
            sim.open_position_direct("PF_ETHUSD", "long", Decimal("0.5"))  # an orphan, opened by hand
            run = _tool("sync_positions", config, "--confirm-wait-s", "0", "--execute")
            # Either the tool's operation imported it through the daemon, or the daemon's own reconciliation was
            # quicker; both go through the same code, and nothing is refused for the writer lock.
            assert "in use by another process" not in run.stderr, run.stderr
            assert "Traceback" not in run.stdout + run.stderr
            _wait_for(lambda: "imported" in run.stdout or "in sync" in _tool("sync_positions", config).stdout)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-2000:]
        assert not socket_path(db).exists()  # removed at shutdown
        assert ask(db, "ping") is None  # no daemon, no answer: the tool runs the operation itself


def test_an_unknown_operation_is_refused_with_one_line(tmp_path: Path) -> None:
    with live_simulator(seed=12) as (_sim, base_url):
        config = write_config(tmp_path, base_url)
        db = tmp_path / "registry.db"
        proc = daemon(config, duration=30)
        try:
            _wait_for(lambda: socket_path(db).exists())
            answer = ask(db, "drop_tables")
            assert answer is not None and answer.code == 2 and "unknown operation" in answer.lines[0]
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
