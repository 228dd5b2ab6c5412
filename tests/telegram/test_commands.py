"""Operator commands through the real python-telegram-bot against the fake Bot API, over a real registry file."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime

from operations.money import MoneyView
from scheduler.telegram.money_views import BalanceView
from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from scheduler.telegram.views import PositionLine, StatusView
from store.registry import Registry
from tests.telegram.conftest import NOW, OPERATOR, OPERATOR_CHAT, OPS_GROUP
from tests.telegram.fake_bot_api import BOT_USERNAME, FakeBotAPI

MakeNotifier = Callable[..., TelegramNotifier]


def _ready(make_notifier: MakeNotifier, provider: object) -> TelegramNotifier:
    notifier = make_notifier(provider)
    assert notifier.wait_ready(10), "the bot did not start polling the fake Bot API"
    return notifier


def test_status_positions_help_answer_the_operator_from_the_registry(
    make_notifier: MakeNotifier,
    fake_api: FakeBotAPI,
    provider: RegistryStatusProvider,
    registry: Registry,
    log_buffer: io.StringIO,
) -> None:
    _ready(make_notifier, provider)
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/status")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/positions")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, f"/help@{BOT_USERNAME}")
    assert fake_api.wait_for(lambda: len(fake_api.sent_to(OPERATOR_CHAT)) >= 3), fake_api.methods()

    status, positions, help_text = fake_api.sent_to(OPERATOR_CHAT)
    assert "Status at 2026-11-25T09:30:00Z" in status
    assert "Mode: paper" in status
    assert "Kill switch: ACTIVE (margin_critical)" in status
    assert "Open positions: 2" in status  # the CLOSED row is not counted
    assert "Equity: 12,345.67 USD" in status
    assert "Margin utilisation: 85.0 %" in status

    assert positions.startswith("Open positions (2):")
    btc, eth = sorted(registry.active_positions(), key=lambda v: v.symbol_key, reverse=True)
    assert f"PF_XBTUSD LONG 0.5 [PROTECTED] entry 91234.5 stop 89000 tp - id {btc.uid}" in positions
    assert f"id {eth.uid}" in positions
    assert "PF_ETHUSD SHORT 3 [OPEN] entry 3050.25 stop 3150 (NO STOP ORDER)" in positions
    assert "PF_SOLUSD" not in positions

    assert "/status" in help_text and "/positions" in help_text and "/help" in help_text
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage"} <= set(fake_api.methods())
    assert fake_api.sent_to(OPS_GROUP) == []  # replies go to the asking chat only
    assert "TELEGRAM_UNAUTHORIZED" not in log_buffer.getvalue()


def test_strangers_get_no_reply_and_one_log_line_each(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, provider: RegistryStatusProvider, log_buffer: io.StringIO
) -> None:
    _ready(make_notifier, provider)
    fake_api.push_command(9999, 9999, "/status")  # foreign chat, foreign user
    fake_api.push_command(9998, OPERATOR, "/positions")  # the operator, but from a chat not on the list
    fake_api.push_command(OPS_GROUP, 666, "/status secret-words", chat_type="supergroup")  # stranger in our group
    # Updates are handled in order, so the operator's reply proves the three before it were processed.
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/help")
    assert fake_api.wait_for(lambda: len(fake_api.sent) >= 1)

    assert [int(p["chat_id"]) for p in fake_api.sent] == [OPERATOR_CHAT]
    lines = [line for line in log_buffer.getvalue().splitlines() if "TELEGRAM_UNAUTHORIZED" in line]
    found = [re.search(r"chat_id=(-?\d+) user_id=(\d+)", line) for line in lines]
    assert [(m.group(1), m.group(2)) for m in found if m] == [
        ("9999", "9999"),
        ("9998", str(OPERATOR)),
        (str(OPS_GROUP), "666"),
    ]
    assert len(lines) == 3
    assert "secret-words" not in log_buffer.getvalue()  # ids only, never what a stranger typed


class _BrokenProvider:
    def status(self) -> StatusView:
        raise OSError("disk I/O error")

    def positions(self) -> list[PositionLine]:
        return []

    def now(self) -> datetime:
        return NOW

    def money(self, days: int | None = None) -> MoneyView:
        raise OSError("disk I/O error")

    def balance(self) -> BalanceView:
        raise OSError("disk I/O error")

    def chart(self) -> bytes | None:
        raise OSError("disk I/O error")

    def set_entries_paused(self, paused: bool, *, by: str) -> bool:
        raise OSError("disk I/O error")


def test_a_failing_provider_gets_a_plain_answer_and_the_bot_keeps_serving(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, log_buffer: io.StringIO
) -> None:
    _ready(make_notifier, _BrokenProvider())
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/status")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/positions")
    for command in ("/profit", "/balance", "/chart", "/pause"):
        fake_api.push_command(OPERATOR_CHAT, OPERATOR, command)
    assert fake_api.wait_for(lambda: len(fake_api.sent_to(OPERATOR_CHAT)) >= 6)
    status, positions, profit, balance, chart, pause = fake_api.sent_to(OPERATOR_CHAT)
    assert status.startswith("Status unavailable") and "OSError" in status
    assert positions == "No open positions."
    for answer, what in ((profit, "Profit"), (balance, "Balance"), (chart, "Chart"), (pause, "Pause")):
        assert answer.startswith(f"{what} unavailable") and "OSError" in answer
    log = log_buffer.getvalue()
    for command in ("status", "profit", "balance", "chart", "pause"):
        assert f"TELEGRAM_COMMAND_FAILED command={command}" in log
