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

from lifecycle import db as registry_db
from lifecycle.clock import FakeClock, to_ms
from lifecycle.killswitch import KillSwitch
from lifecycle.models import ALL_MODELS, Position
from lifecycle.units import qty_to_units
from scheduler.config import TelegramSettings
from scheduler.logsetup import PINNED_LOGGERS, configure_logging
from scheduler.telegram.notifier import TelegramNotifier
from scheduler.telegram.registry_status import RegistryStatusProvider
from scheduler.telegram.views import StatusProvider
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
def settings() -> TelegramSettings:
    return TelegramSettings(
        token=SecretStr(TOKEN), allowed_chat_ids=(OPERATOR_CHAT, OPS_GROUP), allowed_user_ids=(OPERATOR,)
    )


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The daemon's own root handler (kv, DEBUG, library pins, redaction) writing into a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = (*PINNED_LOGGERS, "events", "scheduler.telegram")
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


def _position(uid: str, symbol: str, side: str, state: str, qty: str, **prices: str | None) -> None:
    ms = to_ms(NOW)
    Position.create(
        uid=uid,
        symbol_key=symbol,
        venue_symbol=symbol,
        side=side,
        state=state,
        origin="strategy",
        target_qty_units=qty_to_units(Decimal(qty)),
        remaining_qty_units=qty_to_units(Decimal(qty)) if state not in ("CLOSED",) else 0,
        entry_price=prices.get("entry"),
        stop_price=prices.get("stop"),
        take_profit_price=prices.get("tp"),
        sl_order_id=prices.get("sl_order_id"),
        created_ms=ms,
        updated_ms=ms,
        closed_ms=ms if state == "CLOSED" else None,
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "position_registry.db"
    database = registry_db.connect(path)
    registry_db.bind(database)
    database.create_tables(ALL_MODELS)
    _position("p1", "PF_XBTUSD", "long", "PROTECTED", "0.5", entry="91234.5", stop="89000", sl_order_id="sl-1")
    _position("p2", "PF_ETHUSD", "short", "OPEN", "3", entry="3050.25", stop="3150")
    _position("p3", "PF_SOLUSD", "long", "CLOSED", "10", entry="140", stop="130")
    yield path
    database.close()


@pytest.fixture
def provider(registry: Path) -> RegistryStatusProvider:
    kill_switch = KillSwitch(Decimal("80"), Decimal("5"), 2)
    kill_switch.observe_margin(Decimal("85"))
    return RegistryStatusProvider(
        mode="paper",
        clock=FakeClock(NOW),
        kill_switch=kill_switch,
        equity_usd=lambda: Decimal("12345.67"),
        margin_util_pct=lambda: Decimal("85.04"),
    )


@pytest.fixture
def make_notifier(settings: TelegramSettings, fake_api: FakeBotAPI) -> Iterator[Callable[..., TelegramNotifier]]:
    started: list[TelegramNotifier] = []

    def make(
        provider: StatusProvider, *, queue_size: int = 100, flush_s: float = 3.0, base_url: str | None = None
    ) -> TelegramNotifier:
        notifier = TelegramNotifier(
            settings,
            provider,
            base_url=base_url or fake_api.base_url,
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
