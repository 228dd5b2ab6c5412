"""The money commands, /pause and /resume, the unknown-command reply, the command menu and the stranger flood:
the real python-telegram-bot against the fake Bot API, over a real registry file with real trades in it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from matplotlib import image

from lifecycle.clock import FakeClock
from lifecycle.escalation import Escalator
from lifecycle.killswitch import KillSwitch
from operations.pause import EntryPause
from operations.safety import Safety
from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from scheduler.telegram.views import COMMANDS
from store import pause as pause_store
from store.registry import Registry
from tests.accounting.test_trades_registry import _book, write_book
from tests.telegram.conftest import NOW, OPERATOR, OPERATOR_CHAT, OPS_GROUP
from tests.telegram.fake_bot_api import BOT_USERNAME, FakeBotAPI

MakeNotifier = Callable[..., TelegramNotifier]
START = NOW - timedelta(days=3)  # trades on three UTC days before "now" (2026-11-25 09:30Z)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[Registry, FakeClock]]:
    clock = FakeClock(START)
    reg = Registry.open(tmp_path / "money.db", clock)
    days = 24 * 60
    # +30 (PF_XBTUSD, day -3), -20 (PF_ETHUSD, day -2), +15 (PF_XBTUSD, day 0), one PF_SOLUSD still open
    for symbol, side, fills, stop in (
        ("PF_XBTUSD", "long", [("buy", True, "1", "100", 0), ("sell", False, "1", "130", 5)], "90"),
        ("PF_ETHUSD", "short", [("sell", True, "2", "100", days), ("buy", False, "2", "110", days + 30)], "105"),
        ("PF_XBTUSD", "long", [("buy", True, "0.5", "200", 3 * days - 60), ("sell", False, "0.5", "230",
                                                                           3 * days - 30)], "180"),
        ("PF_SOLUSD", "long", [("buy", True, "1", "100", 3 * days - 10)], "90"),
    ):  # fmt: skip
        write_book(reg, clock, _book(side, fills, stop, start=START, symbol=symbol))
    clock.set(NOW)
    yield reg, clock
    reg.close()


def _provider(reg: Registry, clock: FakeClock) -> RegistryStatusProvider:
    return RegistryStatusProvider(
        reg,
        mode="paper",
        kill_switch=KillSwitch(Decimal("80"), Decimal("5"), 2),
        equity_usd=lambda: Decimal("10025.5"),
        margin_util_pct=lambda: Decimal("12.5"),
        available_margin_usd=lambda: Decimal("8000"),
        entry_pause=EntryPause(reg.db, clock),
    )


def _ask(fake_api: FakeBotAPI, *commands: str) -> list[str]:
    before = len(fake_api.sent_to(OPERATOR_CHAT))
    for command in commands:
        fake_api.push_command(OPERATOR_CHAT, OPERATOR, command)
    assert fake_api.wait_for(lambda: len(fake_api.sent_to(OPERATOR_CHAT)) >= before + len(commands), 10)
    return fake_api.sent_to(OPERATOR_CHAT)[before:]


def test_money_commands_answer_from_the_ledger(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, ledger: tuple[Registry, FakeClock]
) -> None:
    notifier = make_notifier(_provider(*ledger))
    assert notifier.wait_ready(10)
    profit, profit_1d, daily, balance, trades, performance = _ask(
        fake_api, "/profit", "/profit 1", "/daily 4", "/balance", "/trades 2", f"/performance@{BOT_USERNAME}"
    )
    assert profit.startswith("Profit (all time, USD)")
    assert "Trades closed: 3 (2 won, 1 lost, win rate 66.7 %)" in profit
    assert "Net PnL: 25.00 (trades closed: 25.00)" in profit
    # R: 30 / 10, -20 / 10, 15 / 10 -> (3 - 2 + 1.5) / 3
    assert "Profit factor 2.25, average R 0.83" in profit and "Max drawdown: 20.00" in profit
    assert "none recorded yet" in profit  # no fee rows: said, not hidden
    assert "Trades closed: 1 (1 won" in profit_1d and "Net PnL: 15.00" in profit_1d
    assert daily.splitlines()[1:5] == [
        "2026-11-25         15.00",
        "2026-11-24          0.00",
        "2026-11-23        -20.00",
        "2026-11-22         30.00",
    ]
    assert "Total: 25.00" in daily
    assert "Equity (venue): 10,025.50 USD" in balance and "margin use 12.5 %" in balance
    assert "Realised net: today 15.00, 7 days 25.00, all time 25.00" in balance
    assert "Open positions: 1" in balance
    lines = trades.splitlines()
    assert lines[0] == "Last 2 closed trades (newest first, USD):"
    assert lines[1].startswith("11-25 ") and "PF_XBTUSD LONG 0.5 200->230 net 15.00 1.50R strategy_exit 30m" in lines[1]
    assert "PF_ETHUSD SHORT 2 100->110 net -20.00 -2.00R" in lines[2]
    assert performance.splitlines()[1:3] == [
        "PF_XBTUSD: 45.00 over 2 trades, won 100 %",
        "PF_ETHUSD: -20.00 over 1 trade, won 0 %",
    ]


def test_chart_sends_a_png_and_help_menu_unknown_and_usage(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, ledger: tuple[Registry, FakeClock]
) -> None:
    notifier = make_notifier(_provider(*ledger))
    assert notifier.wait_ready(10)
    assert fake_api.commands, "setMyCommands was not called"
    assert [c["command"] for c in fake_api.commands[-1]] == [name for name, _ in COMMANDS]
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/chart")
    assert fake_api.wait_for(lambda: len(fake_api.photos) == 1, 15)
    [photo] = fake_api.photos
    assert int(photo["chat_id"]) == OPERATOR_CHAT and "drawdown" in str(photo["caption"])
    pixels = image.imread(io.BytesIO(photo["photo"]), format="png")
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800
    help_text, unknown, usage = _ask(fake_api, "/help", "/frobnicate", "/trades 0")
    assert all(f"/{name}" in help_text for name, _ in COMMANDS)
    assert unknown == "unknown command - /help"
    assert usage == "usage: /trades [n], n a whole number from 1 to 50"
    # a command for another bot in a shared group gets no answer at all
    fake_api.push_command(OPS_GROUP, OPERATOR, "/status@some_other_bot", chat_type="supergroup")
    assert _ask(fake_api, "/help") == [help_text]
    assert fake_api.sent_to(OPS_GROUP) == []


def test_pause_and_resume_are_logged_with_who_asked_and_survive_a_restart(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, ledger: tuple[Registry, FakeClock], log_buffer: io.StringIO
) -> None:
    reg, clock = ledger
    first = make_notifier(_provider(reg, clock))
    assert first.wait_ready(10)
    paused, again, status = _ask(fake_api, "/pause", "/pause", "/status")
    assert paused.startswith("New entries paused.") and again == "New entries were already paused."
    who = f"telegram user {OPERATOR} in chat {OPERATOR_CHAT}"
    assert f"Operator pause: ON since 2026-11-25T09:30:00Z by {who}" in status
    assert len(re.findall(rf"ENTRIES_PAUSED by=\"{who}\"", log_buffer.getvalue())) == 1
    first.stop(timeout=10)

    # A restart: the file opened afresh, a new pause, a new bot. Still paused; the daemon's safety refuses entries.
    later = FakeClock(NOW + timedelta(hours=1))
    reopened = Registry.open(Path(str(reg.db.database)), later)
    try:
        restarted = _provider(reopened, later)
        assert make_notifier(restarted).wait_ready(10)
        [status_after_restart] = _ask(fake_api, "/status")
        assert f"Operator pause: ON since 2026-11-25T09:30:00Z by {who}" in status_after_restart
        safety = Safety(KillSwitch(Decimal("80"), Decimal("5"), 2), Escalator())
        safety.entry_pause = EntryPause(reopened.db, later)
        assert not safety.allows_new_entries and safety.state == "paused_operator"
        resumed, status_resumed = _ask(fake_api, "/resume", "/status")
        assert resumed == "New entries allowed again." and "Operator pause: off" in status_resumed
        assert "ENTRIES_RESUMED" in log_buffer.getvalue()
        assert not EntryPause(reopened.db, later).paused
        assert [(r.paused, r.by) for r in pause_store.history(reopened.db)] == [(True, who), (False, who)]
    finally:
        reopened.close()


def test_a_strangers_flood_is_one_line_per_sender_per_minute(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, ledger: tuple[Registry, FakeClock], log_buffer: io.StringIO
) -> None:
    notifier = make_notifier(_provider(*ledger))
    assert notifier.wait_ready(10)
    for i in range(2000):
        fake_api.push_command(9999, 9999, f"/status flood {i}")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/help")  # handled after the 2,000 before it
    assert fake_api.wait_for(lambda: len(fake_api.sent) >= 1, 60)
    notifier.stop(timeout=10)  # the rest of the window is counted in one line at shutdown
    lines = [line for line in log_buffer.getvalue().splitlines() if "TELEGRAM_UNAUTHORIZED" in line]
    counts = [
        int(m.group(1)) for m in (re.search(r"chat_id=9999 user_id=9999 messages=(\d+)", ln) for ln in lines) if m
    ]
    assert len(lines) == 2 and counts == [1, 1999], lines
    assert [int(p["chat_id"]) for p in fake_api.sent] == [OPERATOR_CHAT]
    assert "flood" not in log_buffer.getvalue()
