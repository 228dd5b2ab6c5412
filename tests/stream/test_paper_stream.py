"""`make run` (`python -m scheduler --paper`) uses the order stream: a real paper daemon, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_paper_run_connects_the_stream_and_reports_it_every_cycle(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "scheduler", "--paper", "--duration", "8", "--db", str(tmp_path / "r.db"),
         "--log-format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("{")]
    events = [(d.get("event"), d) for d in lines]
    connected = [d for e, d in events if e == "STREAM_CONNECTED"]
    assert len(connected) == 1 and str(connected[0]["url"]).endswith("/ws/v1")
    cycles = [d for e, d in events if e == "CYCLE_SUMMARY"]
    assert cycles and cycles[-1]["stream"] == "connected"
    assert not [d for e, d in events if e in ("STREAM_DISCONNECTED", "JOB_FAILED")]
