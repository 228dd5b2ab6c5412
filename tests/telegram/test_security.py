"""Deny by default and the token: an empty allowlist refuses to start; the token never reaches any output."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest
from pydantic import SecretStr, ValidationError

from lifecycle.events import Ev, emit
from scheduler.logsetup import configure_logging
from scheduler.telegram.bridge import AlertLogHandler
from scheduler.telegram.notifier import TelegramConfigError, TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from settings.config import TelegramSettings
from tests.telegram.conftest import OPERATOR, OPERATOR_CHAT, OPS_GROUP, TOKEN
from tests.telegram.fake_bot_api import FakeBotAPI

MakeNotifier = Callable[..., TelegramNotifier]


@pytest.mark.parametrize(("chats", "users"), [((), (OPERATOR,)), ((OPERATOR_CHAT,), ()), ((), ())])
def test_an_empty_allowlist_refuses_to_start(
    chats: tuple[int, ...], users: tuple[int, ...], provider: RegistryStatusProvider
) -> None:
    with pytest.raises(ValidationError, match="empty allowlist would obey anyone"):
        TelegramSettings(token=SecretStr(TOKEN), allowed_chat_ids=chats, allowed_user_ids=users)
    # A settings object built around validation (model_construct) is refused by the notifier itself.
    unchecked = TelegramSettings.model_construct(token=SecretStr(TOKEN), allowed_chat_ids=chats, allowed_user_ids=users)
    with pytest.raises(TelegramConfigError, match="must each list at least one id") as caught:
        TelegramNotifier(unchecked, provider)
    assert TOKEN not in str(caught.value)


def _exercise(notifier: TelegramNotifier, fake_api: FakeBotAPI) -> None:
    """Commands, a stranger, an alert with the token in it, and a Bot API error: every path that logs."""
    assert notifier.wait_ready(10)
    fake_api.fail_next("sendMessage", 400, f"Bad Request: chat not found for bot{TOKEN}")
    notifier.alert(f"ESCALATION detail=url https://api.telegram.org/bot{TOKEN}/getMe")
    # The first chat refused it (the fault), the second got it: the failure path has been logged.
    assert fake_api.wait_for(lambda: len(fake_api.sent_to(OPS_GROUP)) == 1)
    fake_api.push_command(9999, 9999, "/status")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/status")
    fake_api.push_command(OPERATOR_CHAT, OPERATOR, "/positions")
    emit(Ev.KILL_SWITCH_ACTIVATED, reason="invariant_violation", detail=f"token {TOKEN} leaked into a detail")
    assert fake_api.wait_for(
        lambda: len(fake_api.sent_to(OPERATOR_CHAT)) >= 3 and len(fake_api.sent_to(OPS_GROUP)) >= 2
    )
    notifier.stop()


@pytest.mark.parametrize("httpx_level", ["WARNING", "DEBUG"], ids=["daemon-pins", "httpx-unpinned-at-debug"])
def test_the_token_appears_in_no_output(
    httpx_level: str,
    make_notifier: MakeNotifier,
    fake_api: FakeBotAPI,
    provider: RegistryStatusProvider,
    log_buffer: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Everything at DEBUG, as the daemon's handler formats it; `httpx-unpinned` lets httpx log every URL.
    levels = {name: "DEBUG" for name in ("telegram", "telegram.ext", "httpcore")} | {"httpx": httpx_level}
    configure_logging("kv", "DEBUG", stream=log_buffer, library_levels=levels)
    notifier = make_notifier(provider)
    handler = AlertLogHandler(notifier)
    logging.getLogger().addHandler(handler)
    try:
        _exercise(notifier, fake_api)
    finally:
        logging.getLogger().removeHandler(handler)
    output = log_buffer.getvalue()
    captured = capfd.readouterr()
    sent = "\n".join(str(p["text"]) for p in fake_api.sent)
    for where, text in (("log", output), ("stdout", captured.out), ("stderr", captured.err), ("messages", sent)):
        assert TOKEN not in text, f"the bot token leaked into {where}"
        assert TOKEN.split(":")[1] not in text, f"the secret half of the token leaked into {where}"
    assert "TELEGRAM_UNAUTHORIZED" in output and "TELEGRAM_ALERT_FAILED" in output  # the capture is real
    if httpx_level == "DEBUG":
        assert "HTTP Request: POST http://127.0.0.1" in output and "/bot***/getUpdates" in output
    else:
        assert "HTTP Request" not in output
