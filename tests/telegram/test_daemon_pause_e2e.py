"""/pause through the real daemon process: the jobs stop entering (CYCLE_SUMMARY state=paused_operator
entries_allowed=false), the pause outlives a restart of the process, /resume lifts it; the money commands and the
chart are answered by the running daemon. The real python-telegram-bot against the fake Bot API, the simulator
through the real ccxt client."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib import image

from tests.daemon.procs import live_simulator
from tests.telegram.conftest import OPERATOR, OPERATOR_CHAT
from tests.telegram.fake_bot_api import FakeBotAPI
from tests.telegram.test_daemon_e2e import command, running_daemon

PAUSED = "state=paused_operator"


def test_pause_stops_entries_survives_a_restart_and_resume_lifts_it(tmp_path: Path, fake_api: FakeBotAPI) -> None:
    with live_simulator(seed=3) as (_sim, venue_url):
        with running_daemon(tmp_path, venue_url, fake_api) as run:
            assert run.wait_for("CYCLE_SUMMARY"), run.tail()
            paused = command(fake_api, OPERATOR_CHAT, OPERATOR, "/pause", replies_before=0)
            assert paused.startswith("New entries paused."), paused
            assert run.wait_for(PAUSED, timeout=20), run.tail()
            profit = command(fake_api, OPERATOR_CHAT, OPERATOR, "/profit", replies_before=1)
            balance = command(fake_api, OPERATOR_CHAT, OPERATOR, "/balance", replies_before=2)
            fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/chart")
            assert fake_api.wait_for(lambda: len(fake_api.photos) + len(fake_api.sent_to(OPERATOR_CHAT)) > 3, 30)
            code, _ = run.stop()
        assert code == 0, run.tail()
        first = run.output
        assert f'ENTRIES_PAUSED by="telegram user {OPERATOR} in chat {OPERATOR_CHAT}"' in first
        paused_cycles = [line for line in first.splitlines() if "CYCLE_SUMMARY" in line and PAUSED in line]
        assert paused_cycles and all("entries_allowed=false" in line for line in paused_cycles)
        after_pause = first.split("ENTRIES_PAUSED", 1)[1]
        assert "purpose=entry" not in after_pause  # no entry order was sent while paused
        assert profit.startswith("Profit (all time"), profit  # a short run may not have closed a trade yet
        assert balance.startswith("Balance at ") and "Equity (venue): unknown" not in balance, balance
        if fake_api.photos:  # a trade was realised during the run: the picture must decode
            pixels = image.imread(io.BytesIO(fake_api.photos[-1]["photo"]), format="png")
            assert pixels.shape[1] >= 800
        else:
            assert fake_api.sent_to(OPERATOR_CHAT)[-1] == "No realised PnL yet: nothing to draw."

        # The same registry, a new process: paused from its first cycle, until /resume.
        replies = len(fake_api.sent_to(OPERATOR_CHAT))
        calls_before = len(fake_api.methods())
        with running_daemon(tmp_path, venue_url, fake_api) as again:
            # the new bot drops pending updates when it starts: wait until it polls before asking
            assert fake_api.wait_for(lambda: "getUpdates" in fake_api.methods()[calls_before:], 20)
            assert again.wait_for("CYCLE_SUMMARY"), again.tail()
            first_cycle = next(line for line in again.output.splitlines() if "CYCLE_SUMMARY" in line)
            assert PAUSED in first_cycle and "entries_allowed=false" in first_cycle, first_cycle
            status = command(fake_api, OPERATOR_CHAT, OPERATOR, "/status", replies_before=replies)
            resumed = command(fake_api, OPERATOR_CHAT, OPERATOR, "/resume", replies_before=replies + 1)
            assert again.wait_for("state=trading", timeout=20), again.tail()
            code, _ = again.stop()
        assert code == 0, again.tail()
        assert "Operator pause: ON since" in status and f"telegram user {OPERATOR}" in status, status
        assert resumed == "New entries allowed again."
        assert "ENTRIES_RESUMED" in again.output
