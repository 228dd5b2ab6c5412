"""The daemon and its registry key (issue 9 §2): created 0600 at the first start, required afterwards."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from store.keys import default_key_path
from tests.daemon.procs import daemon, live_simulator, write_config
from tests.failfast.helpers import closed_history


def test_first_start_creates_the_key_then_a_start_without_it_refuses_with_exit_3(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db", positions=5)  # a legacy (unkeyed) history
    key_path = default_key_path(path)
    with live_simulator(seed=11) as (sim, base_url):
        config = write_config(tmp_path, base_url)
        first, _ = daemon(config, duration=2).communicate(timeout=60)
        assert "DAEMON_STARTED" in first, first[-3000:]
        assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
        [step] = [x for x in first.splitlines() if "STARTUP_STEP step=key" in x]
        assert "created=0600" in step and key_path.read_text().strip() not in first
        key_path.rename(tmp_path / "elsewhere.key")
        before = len(sim.order_log)
        proc = daemon(config, duration=2)
        second, _ = proc.communicate(timeout=60)
        sent_by_refused_start = len(sim.order_log) - before
    assert proc.returncode == 3, second[-3000:]
    [line] = [x for x in second.splitlines() if x.startswith("trading daemon:")]
    assert f"expected at {key_path}" in line and "registry_key_file" in line
    assert "DAEMON_STARTED" not in second and "Traceback" not in second
    assert not key_path.exists()  # never silently replaced by a new key
    assert sent_by_refused_start == 0
