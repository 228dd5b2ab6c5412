"""Telegram: read-only operator commands and alerts (docs/telegram.md)."""

from scheduler.telegram.bridge import ALERT_EVENTS, AlertLogHandler
from scheduler.telegram.notifier import TelegramConfigError, TelegramNotifier
from scheduler.telegram.views import PositionLine, StatusProvider, StatusView

__all__ = [
    "ALERT_EVENTS",
    "AlertLogHandler",
    "PositionLine",
    "StatusProvider",
    "StatusView",
    "TelegramConfigError",
    "TelegramNotifier",
]
