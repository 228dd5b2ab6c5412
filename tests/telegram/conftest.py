"""Fixtures: a fake Bot API on loopback, a real registry file, a provider over it, and captured log output."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from lifecycle.clock import FakeClock
from lifecycle.killswitch import KillSwitch
from scheduler.logsetup import PINNED_LOGGERS, configure_logging
from scheduler.telegram.money_views import CommandProvider
from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from settings.config import TelegramSettings
from specs.lifecycle import Event
from store.registry import Registry
from tests.telegram.fake_bot_api import FakeBotAPI

TOKEN = "123456789:AAFAKE_TELEGRAM_TOKEN_abcdefghijklmn"
OPERATOR_CHAT = 1111
OPS_GROUP = -100222
OPERATOR = 7
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture
def fake_api() -> Iterator[FakeBotAPI]:
    fake = FakeBotAPI(token=TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(fake_api: FakeBotAPI) -> TelegramSettings:
    return TelegramSettings(
        token=SecretStr(TOKEN),
        allowed_chat_ids=(OPERATOR_CHAT, OPS_GROUP),
        allowed_user_ids=(OPERATOR,),
        api_base_url=fake_api.base_url,
    )


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The daemon's own root handler (kv, DEBUG, library pins, redaction) writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    # telegram.ext too: test_security lifts it to DEBUG, and left there it would log later tests' update texts
    names = (*PINNED_LOGGERS, "telegram.ext", "events", "scheduler.telegram")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    configure_logging("kv", "DEBUG", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A real registry file: one PROTECTED long, one OPEN short without a stop order, one CLOSED position."""
    reg = Registry.open(tmp_path / "position_registry.db", FakeClock(NOW))
    btc = reg.import_position(symbol="PF_XBTUSD", side="long", qty=Decimal("0.5"), entry_price=Decimal("91234.5"),
                              cause="test")  # fmt: skip
    reg.update_prices(btc.uid, stop_price=Decimal("89000"))
    reg.set_protection(btc.uid, sl_order_id="sl-1")
    reg.apply(btc.uid, Event.PROTECTION_CONFIRMED, cause="test")
    eth = reg.import_position(symbol="PF_ETHUSD", side="short", qty=Decimal("3"), entry_price=Decimal("3050.25"),
                              cause="test")  # fmt: skip
    reg.update_prices(eth.uid, stop_price=Decimal("3150"))
    sol = reg.import_position(symbol="PF_SOLUSD", side="long", qty=Decimal("10"), entry_price=Decimal("140"),
                              cause="test")  # fmt: skip
    reg.close_external(sol.uid, cause="test")
    yield reg
    reg.close()


@pytest.fixture
def provider(registry: Registry) -> RegistryStatusProvider:
    kill_switch = KillSwitch(Decimal("80"), Decimal("5"), 2)
    kill_switch.observe_margin(Decimal("85"))
    return RegistryStatusProvider(
        registry,
        mode="paper",
        kill_switch=kill_switch,
        equity_usd=lambda: Decimal("12345.67"),
        margin_util_pct=lambda: Decimal("85.04"),
    )


@pytest.fixture
def make_notifier(settings: TelegramSettings) -> Iterator[Callable[..., TelegramNotifier]]:
    started: list[TelegramNotifier] = []

    def make(provider: CommandProvider, *, queue_size: int = 100, flush_s: float = 3.0) -> TelegramNotifier:
        notifier = TelegramNotifier(
            settings,
            provider,
            queue_size=queue_size,
            flush_s=flush_s,
            poll_timeout_s=1.0,
            retry_s=0.2,
        )
        started.append(notifier)
        notifier.start()
        return notifier

    yield make
    for notifier in started:
        notifier.stop(timeout=10)
