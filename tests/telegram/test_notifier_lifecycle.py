"""Starting and stopping the notifier, and polling conflicts."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from settings.config import TelegramSettings
from tests.telegram.conftest import OPERATOR, OPERATOR_CHAT
from tests.telegram.fake_bot_api import FakeBotAPI

MakeNotifier = Callable[..., TelegramNotifier]


def test_alert_before_start_is_dropped_and_counted(
    settings: TelegramSettings, provider: RegistryStatusProvider, fake_api: FakeBotAPI
) -> None:
    notifier = TelegramNotifier(settings, provider)
    assert notifier.alert("too early") is False
    assert notifier.dropped == 1
    notifier.stop()  # never started: returns at once
    with pytest.raises(RuntimeError, match="was stopped"):
        notifier.start()
    assert fake_api.calls == []


def test_start_twice_is_refused_and_stop_before_connecting_is_quick(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, provider: RegistryStatusProvider
) -> None:
    fake_api.stop()  # nothing answers: the notifier is stuck retrying getMe
    notifier = make_notifier(provider, flush_s=5.0)
    with pytest.raises(RuntimeError, match="called twice"):
        notifier.start()
    started = time.monotonic()
    notifier.stop(timeout=5)
    # No flush wait: nothing can be sent before the bot is connected.
    assert time.monotonic() - started < 2


def test_a_second_poller_on_the_token_is_reported(
    make_notifier: MakeNotifier, fake_api: FakeBotAPI, provider: RegistryStatusProvider, log_buffer: io.StringIO
) -> None:
    notifier = make_notifier(provider)
    assert notifier.wait_ready(10)
    fake_api.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    assert fake_api.wait_for(lambda: "TELEGRAM_POLL_CONFLICT" in log_buffer.getvalue())
    # Polling goes on after the conflict: a command is still answered.
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/help")
    assert fake_api.wait_for(lambda: len(fake_api.sent_to(OPERATOR_CHAT)) == 1, timeout=10)


def test_a_refused_token_turns_the_bot_off_without_logging_the_token(
    fake_api: FakeBotAPI, provider: RegistryStatusProvider, log_buffer: io.StringIO
) -> None:
    wrong = "987654321:ZZWRONG_TOKEN_abcdefghijklmnopq"
    settings = TelegramSettings(
        token=SecretStr(wrong),
        allowed_chat_ids=(OPERATOR_CHAT,),
        allowed_user_ids=(OPERATOR,),
        api_base_url=fake_api.base_url,
    )
    notifier = TelegramNotifier(settings, provider, retry_s=0.05)
    notifier.start()
    try:
        assert fake_api.wait_for(lambda: "TELEGRAM_TOKEN_REFUSED" in log_buffer.getvalue())
        assert fake_api.wait_for(lambda: not notifier.alert("nobody will read this"))  # the bot is off
        assert fake_api.methods() == []  # the fake saw no call with its own token; the wrong one got 401
    finally:
        notifier.stop(timeout=5)
    assert wrong not in log_buffer.getvalue() and wrong.split(":")[1] not in log_buffer.getvalue()
