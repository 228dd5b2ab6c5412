"""Telegram: read-only operator commands and alerts (docs/telegram.md).

The package imports nothing of python-telegram-bot by itself: the bot lives in `scheduler.telegram.notifier` (and
the one-shot sender in `scheduler.telegram.oneshot`), which only a daemon with `[telegram]` configured imports.
"""

from scheduler.telegram.bridge import ALERT_EVENTS, AlertLogHandler
from scheduler.telegram.views import PositionLine, StatusProvider, StatusView

__all__ = [
    "ALERT_EVENTS",
    "AlertLogHandler",
    "PositionLine",
    "StatusProvider",
    "StatusView",
]
