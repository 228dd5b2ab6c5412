"""The operator is told (issue 9 §2): a registry damaged while the daemon runs reaches Telegram as an
INVARIANT_VIOLATION alert naming registry_damaged, and the exit as TRADING DAEMON NOT RUNNING (exit 3), through
the daemon's own alert path (the one CORRUPTED_POSITION takes) against the fake Bot API."""

from __future__ import annotations

from pathlib import Path

from tests.daemon.procs import live_simulator
from tests.failfast.helpers import closed_history, flip_bytes_mid_file
from tests.telegram.conftest import OPERATOR_CHAT, TOKEN
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.test_daemon_e2e import running_daemon


def test_a_registry_damaged_at_run_time_is_pushed_to_telegram_and_the_exit_too(tmp_path: Path) -> None:
    path = closed_history(tmp_path / "registry.db")
    fake = FakeBotAPI(token=TOKEN)
    fake.start()
    try:
        with live_simulator(seed=9) as (_sim, venue_url), running_daemon(tmp_path, venue_url, fake) as run:
            flip_bytes_mid_file(path, count=4096)
            code = run.proc.wait(60)
            run._reader.join(10)
        out = run.output
        assert code == 3, out[-3000:]
        assert fake.wait_for(lambda: any("TRADING DAEMON NOT RUNNING" in t for t in fake.sent_to(OPERATOR_CHAT)), 10)
        sent = fake.sent_to(OPERATOR_CHAT)
        assert any("INVARIANT_VIOLATION" in t and "registry_damaged" in t for t in sent), sent
        assert any("TRADING DAEMON NOT RUNNING (exit 3)" in t and "halted" in t for t in sent), sent
        assert TOKEN not in out
    finally:
        fake.stop()
