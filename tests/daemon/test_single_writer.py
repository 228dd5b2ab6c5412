"""Two daemons on one registry would each trade (duplicate orders): the second is refused at its database step,
before it reads the registry or sends anything, and the first goes on."""

from __future__ import annotations

import time
from pathlib import Path

from tests.daemon.procs import daemon, live_simulator, write_config


def test_a_second_daemon_on_the_same_registry_is_refused_and_the_first_goes_on(tmp_path: Path) -> None:
    with live_simulator(seed=3) as (_sim, base_url):
        config = write_config(tmp_path, base_url)
        first = daemon(config, duration=12)
        try:
            deadline = time.monotonic() + 30
            lock = tmp_path / "registry.db.lock"
            while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
                time.sleep(0.1)
            assert lock.read_text().strip() == f"pid {first.pid} (daemon)"
            second = daemon(config, duration=5)
            out, _ = second.communicate(timeout=30)
            assert second.returncode == 1, out[-2000:]
            assert "startup refused at step database" in out and f"pid {first.pid} (daemon)" in out
            assert "REGISTRY_AUDIT_REPORT" not in out and "ORDER_SUBMITTED" not in out
            assert "Traceback" not in out
            assert "step=venue" not in out and "step=database" not in out  # refused before either step
            first_out, _ = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == 0, first_out[-2000:]
        assert "DAEMON_STOPPED" in first_out
        third, _ = daemon(config, duration=1).communicate(timeout=60)  # released at exit: the next start works
        assert "DAEMON_STARTED" in third
