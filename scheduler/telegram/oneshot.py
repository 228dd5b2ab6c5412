"""One alert without a running bot: the daemon is refusing to start and about to exit.

The notifier (`scheduler.telegram.notifier`) starts only once startup has succeeded, because its /status needs a
running daemon. A refused startup (exit 3 on a failed registry audit, which systemd does not restart) is exactly
when the operator must be paged, so `__main__` sends that one line directly: every allowed chat, bounded in time,
best effort, never raising.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Bot
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from scheduler.logsetup import redact, register_secret
from scheduler.telegram.notifier import bot_api_urls
from scheduler.telegram.views import MAX_MESSAGE_CHARS
from settings.config import TelegramSettings

log = logging.getLogger(__name__)


def send_once(settings: TelegramSettings, text: str, *, timeout_s: float = 10.0) -> int:
    """Send `text` to every allowed chat; return how many received it. Failures are logged, never raised."""
    token = settings.token.get_secret_value()
    register_secret(token)
    clean = redact(text)[:MAX_MESSAGE_CHARS]

    async def deliver() -> int:
        request = HTTPXRequest(connect_timeout=5.0, read_timeout=5.0, write_timeout=5.0)
        base_url, base_file_url = bot_api_urls(settings.api_base_url)
        bot = Bot(token, base_url=base_url, base_file_url=base_file_url, request=request)
        delivered = 0
        async with bot:
            for chat_id in settings.allowed_chat_ids:
                try:
                    await bot.send_message(chat_id, clean)
                    delivered += 1
                except TelegramError as exc:
                    log.warning(
                        "TELEGRAM_ALERT_FAILED chat_id=%s error=%s", chat_id, redact(f"{type(exc).__name__}: {exc}")
                    )
        return delivered

    try:
        return asyncio.run(asyncio.wait_for(deliver(), timeout_s))
    except Exception as exc:  # Telegram down or slow must never change how the daemon exits
        log.warning("TELEGRAM_ALERT_FAILED chat_id=all error=%s", redact(f"{type(exc).__name__}: {exc}"))
        return 0
