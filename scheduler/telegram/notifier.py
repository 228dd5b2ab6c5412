"""The Telegram side of the daemon: operator commands by polling, and alerts pushed from any thread.

python-telegram-bot is asyncio; the daemon is threaded. `TelegramNotifier` owns one event loop in its own daemon
thread. `alert()` is the only call other threads make: it never blocks and never raises, and a bounded queue
means a dead Telegram costs at most `queue_size` strings of memory, never a stalled trading cycle.

Deny by default: an update is served only when its chat id AND its user id are both allowlisted (in a group the
chat id matches every member). Anything else gets no reply and at most one `TELEGRAM_UNAUTHORIZED` line per sender
per minute, with ids only (`scheduler.telegram.throttle`).

The commands read (status, positions, the money view, the chart); /pause and /resume are the only ones that change
anything, and only whether new entries may open (docs/telegram.md says why nothing else can).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Any

from telegram import BotCommand, Update
from telegram.error import Conflict, InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from lifecycle.events import Ev, emit
from scheduler.logsetup import redact, register_secret
from scheduler.telegram.money_views import (
    CommandProvider,
    render_balance,
    render_daily,
    render_performance,
    render_profit,
    render_trades,
)
from scheduler.telegram.throttle import Sender, SenderThrottle
from scheduler.telegram.views import (
    COMMANDS,
    HELP_TEXT,
    MAX_MESSAGE_CHARS,
    render_positions,
    render_status,
)
from settings.config import TelegramSettings

log = logging.getLogger("scheduler.telegram")

MAX_RETRY_S = 60.0
UNAVAILABLE = "{what} unavailable: the daemon could not read it ({error}). See the daemon log."
UNKNOWN_COMMAND = "unknown command - /help"
THROTTLE_FLUSH_S = 5.0
# (default, upper bound) of each command's count argument
COUNT_ARGS: dict[str, tuple[int | None, int]] = {"profit": (None, 3650), "daily": (7, 90), "trades": (10, 50)}

_App = Application[Any, Any, Any, Any, Any, Any]
# python-telegram-bot loggers that log whole tracebacks for ordinary network failures, e.g. the Updater's last
# getUpdates at shutdown when Telegram is down.
LIBRARY_LOGGERS = ("telegram.ext.Updater", "telegram.ext.Application", "telegram.ext.AIORateLimiter")


class OneLineErrors(logging.Filter):
    """Turns a library record's traceback into `error=<type>: <message>` on the same line: a Telegram outage is
    an operational event, and a 60-line traceback in the daemon log reads like a crash. Redaction still applies
    (the daemon's handler redacts every record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            record.msg = f"{record.getMessage()} error={type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def bot_api_urls(api_base_url: str) -> tuple[str, str]:
    """python-telegram-bot's base_url and base_file_url for a Bot API server (it appends the token itself)."""
    return f"{api_base_url}/bot", f"{api_base_url}/file/bot"


class TelegramConfigError(ValueError):
    """The Telegram settings cannot be used safely."""


class TelegramNotifier:
    def __init__(
        self,
        settings: TelegramSettings,
        provider: CommandProvider,
        *,
        queue_size: int = 100,
        poll_timeout_s: float = 10.0,
        retry_s: float = 5.0,
        flush_s: float = 3.0,
        max_retries: int = 2,
    ) -> None:
        # TelegramSettings already refuses empty lists; checked again because an empty allowlist must never
        # reach a running bot, whoever builds the settings object.
        if not settings.allowed_chat_ids or not settings.allowed_user_ids:
            raise TelegramConfigError(
                "telegram.allowed_chat_ids and telegram.allowed_user_ids must each list at least one id; "
                "an empty allowlist would obey anyone (see docs/telegram.md for finding your ids)"
            )
        if queue_size < 1:
            raise TelegramConfigError(f"queue_size must be at least 1, got {queue_size}")
        self._token = settings.token.get_secret_value()
        register_secret(self._token)  # even if the daemon configured logging before reading the token
        self._chats = tuple(settings.allowed_chat_ids)
        self._users = tuple(settings.allowed_user_ids)
        self._provider = provider
        self._api_base_url = settings.api_base_url
        self._queue_size = queue_size
        self._poll_timeout_s = poll_timeout_s
        self._retry_s = retry_s
        self._flush_s = flush_s
        self._max_retries = max_retries
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._pending = 0
        self._dropped = 0
        self._dropped_reported = 0
        self._sent = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: asyncio.Queue[str] | None = None
        self._stopping: asyncio.Event | None = None
        self._one_line = OneLineErrors()
        self._strangers = SenderThrottle()

    def __repr__(self) -> str:
        return f"TelegramNotifier(chats={len(self._chats)}, users={len(self._users)})"

    # ------------------------------------------------------------------------------------------- any thread

    @property
    def dropped(self) -> int:
        """Alerts refused because the queue was full or the notifier was not running."""
        with self._lock:
            return self._dropped

    @property
    def sent(self) -> int:
        """Alerts delivered to every allowed chat."""
        with self._lock:
            return self._sent

    def start(self) -> None:
        """Start the bot thread and return at once; Telegram being down is retried there, never raised here.

        Alerts are accepted from this call on (queued until the bot is connected); before it they are dropped.
        """
        if self._thread is not None:
            raise RuntimeError("TelegramNotifier.start() was called twice; build a new notifier instead")
        # The loop exists before its thread runs, so an alert raised right after start() is queued, not lost.
        loop = asyncio.new_event_loop()
        with self._lock:
            if self._closed:
                loop.close()
                raise RuntimeError("TelegramNotifier was stopped; build a new notifier instead")
            self._loop = loop
            self._queue = asyncio.Queue()
            self._stopping = asyncio.Event()
        self._thread = threading.Thread(target=self._run, args=(loop,), name="telegram", daemon=True)
        self._quiet_library_errors(attach=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """True once the bot answers commands (after getMe and the start of polling)."""
        return self._ready.wait(timeout)

    def alert(self, text: str) -> bool:
        """Queue `text` for every allowed chat. Never blocks, never raises; False when the alert was dropped."""
        try:
            with self._lock:
                loop = self._loop
                if loop is None or self._closed or self._pending >= self._queue_size:
                    self._dropped += 1
                    return False
                self._pending += 1
            clean = redact(text)[:MAX_MESSAGE_CHARS]
            try:
                loop.call_soon_threadsafe(self._enqueue, clean)
            except RuntimeError:  # the loop closed between the check and the call
                with self._lock:
                    self._pending -= 1
                    self._dropped += 1
                return False
            return True
        except Exception:  # an alert is never worth crashing the caller (often a trading job)
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Flush queued alerts for up to `flush_s`, stop polling and join the thread (at most `timeout`)."""
        with self._lock:
            self._closed = True
            loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with suppress(RuntimeError):  # the loop already closed: nothing left to stop
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("TELEGRAM_STOP_TIMEOUT seconds=%s (a daemon thread; the exit goes on)", timeout)

    # -------------------------------------------------------------------------------------- the bot's thread

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            with asyncio.Runner(loop_factory=lambda: loop) as runner:
                runner.run(self._main())
        except Exception as exc:  # the bot must never take the daemon down
            log.error("TELEGRAM_STOPPED error=%s", redact(f"{type(exc).__name__}: {exc}"))
        finally:
            with self._lock:
                self._loop = None
                self._closed = True
                self._dropped += self._pending
                self._pending = 0
            self._quiet_library_errors(attach=False)

    def _quiet_library_errors(self, *, attach: bool) -> None:
        for name in LIBRARY_LOGGERS:
            library = logging.getLogger(name)
            if attach:
                library.addFilter(self._one_line)
            else:
                library.removeFilter(self._one_line)

    def _enqueue(self, text: str) -> None:
        assert self._queue is not None
        self._queue.put_nowait(text)

    def _build(self) -> _App:
        base_url, base_file_url = bot_api_urls(self._api_base_url)
        app: _App = (
            ApplicationBuilder()
            .token(self._token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .rate_limiter(AIORateLimiter(max_retries=self._max_retries))
            .connect_timeout(5.0)
            .read_timeout(10.0)
            .write_timeout(10.0)
            .build()
        )
        allowed = filters.Chat(chat_id=self._chats) & filters.User(user_id=self._users)
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        app.add_handler(CommandHandler("status", self._status, filters=allowed))
        app.add_handler(CommandHandler("positions", self._positions, filters=allowed))
        app.add_handler(CommandHandler(["help", "start"], self._help, filters=allowed))
        app.add_handler(CommandHandler("profit", self._profit, filters=allowed))
        app.add_handler(CommandHandler("daily", self._daily, filters=allowed))
        app.add_handler(CommandHandler("balance", self._balance, filters=allowed))
        app.add_handler(CommandHandler("trades", self._trades, filters=allowed))
        app.add_handler(CommandHandler("performance", self._performance, filters=allowed))
        app.add_handler(CommandHandler("chart", self._chart, filters=allowed))
        app.add_handler(CommandHandler("pause", self._pause, filters=allowed))
        app.add_handler(CommandHandler("resume", self._resume, filters=allowed))
        # Last in the group: only a command none of the handlers above took gets here.
        app.add_handler(MessageHandler(filters.COMMAND & allowed, self._unknown))
        app.add_error_handler(self._on_handler_error)
        return app

    async def _main(self) -> None:
        with self._lock:
            queue, stopping = self._queue, self._stopping
        assert queue is not None and stopping is not None
        app = self._build()
        initialized = asyncio.Event()
        sender = asyncio.create_task(self._send_loop(app, queue, initialized))
        polling = False
        try:
            attempt = 0
            while not stopping.is_set():
                try:
                    await app.initialize()
                    break
                except InvalidToken:
                    # Retrying cannot help; PTB's message quotes the token, so it is not logged at all.
                    log.error(
                        "TELEGRAM_TOKEN_REFUSED Telegram rejected telegram.token (401); the bot is off until "
                        "the daemon restarts with the token BotFather shows for this bot"
                    )
                    return
                except TelegramError as exc:
                    # Doubling up to a minute keeps an hour-long outage to a few dozen log lines.
                    delay = min(self._retry_s * 2**attempt, MAX_RETRY_S)
                    attempt += 1
                    log.warning(
                        "TELEGRAM_UNREACHABLE error=%s retry_s=%s", redact(f"{type(exc).__name__}: {exc}"), delay
                    )
                    await _wait(stopping, delay)
            if stopping.is_set():
                return
            initialized.set()
            await self._register_commands(app)
            flusher = asyncio.create_task(self._flush_strangers(stopping))
            await app.start()
            updater = app.updater
            assert updater is not None
            await updater.start_polling(
                poll_interval=0.0,
                timeout=timedelta(seconds=self._poll_timeout_s),
                drop_pending_updates=True,  # commands typed while the daemon was down are stale
                error_callback=self._on_poll_error,
            )
            polling = True
            self._ready.set()
            await stopping.wait()
            flusher.cancel()
        finally:
            with self._lock:
                self._closed = True
            self._log_strangers(self._strangers.drain())
            if initialized.is_set():
                try:
                    await asyncio.wait_for(queue.join(), self._flush_s)
                except TimeoutError:
                    log.warning("TELEGRAM_ALERTS_UNSENT count=%s at shutdown", queue.qsize())
            sender.cancel()
            with suppress(asyncio.CancelledError):
                await sender
            await self._shutdown(app, polling=polling, initialized=initialized.is_set())

    async def _shutdown(self, app: _App, *, polling: bool, initialized: bool) -> None:
        # Each step on its own: a failure stopping the poller must not leave the HTTP clients open.
        steps = [
            ("updater", app.updater.stop if polling and app.updater is not None else None),
            ("application", app.stop if app.running else None),
            ("shutdown", app.shutdown if initialized else None),
        ]
        for name, step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception as exc:
                log.warning("TELEGRAM_SHUTDOWN_STEP_FAILED step=%s error=%s", name, redact(f"{type(exc).__name__}"))

    async def _send_loop(self, app: _App, queue: asyncio.Queue[str], initialized: asyncio.Event) -> None:
        await initialized.wait()
        while True:
            text = await queue.get()
            with self._lock:
                self._pending -= 1
            try:
                if await self._send_all(app, text):
                    await self._report_drops(app)
            finally:
                queue.task_done()

    async def _send_all(self, app: _App, text: str) -> bool:
        delivered = 0
        for chat_id in self._chats:
            try:
                await app.bot.send_message(chat_id=chat_id, text=text)
                delivered += 1
            except Exception as exc:  # whatever the cause, the sender must live on for the next alert
                log.warning(
                    "TELEGRAM_ALERT_FAILED chat_id=%s error=%s", chat_id, redact(f"{type(exc).__name__}: {exc}")
                )
        if delivered == len(self._chats):
            with self._lock:
                self._sent += 1
        return delivered > 0

    async def _report_drops(self, app: _App) -> None:
        with self._lock:
            missed = self._dropped - self._dropped_reported
            self._dropped_reported = self._dropped
        if missed:
            log.warning("TELEGRAM_ALERTS_DROPPED count=%s", missed)
            await self._send_all(app, f"{missed} alert(s) were dropped while Telegram was slow or down; see the log.")

    async def _register_commands(self, app: _App) -> None:
        """The command menu Telegram shows the operator; best effort, the commands work without it."""
        try:
            await app.bot.set_my_commands([BotCommand(name, text[:256]) for name, text in COMMANDS])
        except Exception as exc:
            log.warning("TELEGRAM_SET_COMMANDS_FAILED error=%s", redact(f"{type(exc).__name__}: {exc}"))

    async def _flush_strangers(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await _wait(stopping, THROTTLE_FLUSH_S)
            self._log_strangers(self._strangers.due())

    @staticmethod
    def _log_strangers(lines: Sequence[tuple[Sender, int]]) -> None:
        for (chat_id, user_id), messages in lines:
            emit(Ev.TELEGRAM_UNAUTHORIZED, chat_id=chat_id, user_id=user_id, messages=messages)

    def _on_poll_error(self, exc: TelegramError) -> None:
        if isinstance(exc, Conflict):
            log.error(
                "TELEGRAM_POLL_CONFLICT another process polls this bot token (HTTP 409); run one daemon per token "
                "and use send-only tools elsewhere"
            )
        else:
            log.warning("TELEGRAM_POLL_ERROR error=%s", redact(f"{type(exc).__name__}: {exc}"))

    async def _on_handler_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        error = context.error
        log.warning("TELEGRAM_HANDLER_ERROR error=%s", redact(f"{type(error).__name__}: {error}"))

    # -------------------------------------------------------------------------------------------- handlers

    async def _gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is not None and user is not None and chat.id in self._chats and user.id in self._users:
            return
        sender = (chat.id if chat is not None else None, user.id if user is not None else None)
        self._log_strangers(self._strangers.seen(sender))
        raise ApplicationHandlerStop

    async def _reply(self, update: Update, text: str) -> None:
        message = update.effective_message
        if message is not None:
            await message.reply_text(redact(text)[:MAX_MESSAGE_CHARS])

    async def _serve(self, update: Update, command: str, render: Callable[[], str]) -> None:
        """Run `render` off the event loop (it reads SQLite); a failure is one log line and a plain answer."""
        try:
            text = await asyncio.to_thread(render)
        except Exception as exc:
            log.warning("TELEGRAM_COMMAND_FAILED command=%s error=%s", command, redact(f"{type(exc).__name__}: {exc}"))
            text = UNAVAILABLE.format(what=command.capitalize(), error=type(exc).__name__)
        await self._reply(update, text)

    async def _status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._serve(update, "status", lambda: render_status(self._provider.status()))

    async def _positions(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._serve(update, "positions", lambda: render_positions(self._provider.positions()))

    async def _help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, HELP_TEXT)

    async def _count(self, update: Update, context: ContextTypes.DEFAULT_TYPE, command: str) -> tuple[bool, int | None]:
        """The command's optional count argument; (False, None) after replying with the usage when it is bad."""
        default, most = COUNT_ARGS[command]
        args = list(context.args or [])
        if not args:
            return True, default
        if len(args) == 1 and args[0].isdigit() and 1 <= int(args[0]) <= most:
            return True, int(args[0])
        await self._reply(update, f"usage: /{command} [n], n a whole number from 1 to {most}")
        return False, None

    async def _profit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ok, days = await self._count(update, context, "profit")
        if ok:
            await self._serve(update, "profit", lambda: render_profit(self._provider.money(days), days))

    async def _daily(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ok, n = await self._count(update, context, "daily")
        if ok and n is not None:
            await self._serve(update, "daily", lambda: render_daily(self._provider.money(n), n, self._provider.now()))

    async def _balance(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._serve(update, "balance", lambda: render_balance(self._provider.balance()))

    async def _trades(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ok, n = await self._count(update, context, "trades")
        if ok and n is not None:
            await self._serve(update, "trades", lambda: render_trades(self._provider.money(), n))

    async def _performance(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._serve(update, "performance", lambda: render_performance(self._provider.money()))

    async def _chart(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            png = await asyncio.to_thread(self._provider.chart)
        except Exception as exc:
            log.warning("TELEGRAM_COMMAND_FAILED command=chart error=%s", redact(f"{type(exc).__name__}: {exc}"))
            await self._reply(update, UNAVAILABLE.format(what="Chart", error=type(exc).__name__))
            return
        message = update.effective_message
        if png is None:
            await self._reply(update, "No realised PnL yet: nothing to draw.")
        elif message is not None:
            await message.reply_photo(photo=png, caption="Realised equity (USD); shaded: drawdown; dots: trades")

    async def _set_pause(self, update: Update, paused: bool) -> None:
        chat, user = update.effective_chat, update.effective_user
        by = f"telegram user {user.id if user else '?'} in chat {chat.id if chat else '?'}"

        def change() -> str:
            if self._provider.set_entries_paused(paused, by=by):
                if paused:
                    return "New entries paused. Exits, stops and reconciliation go on. /resume to allow entries."
                return "New entries allowed again."
            return "New entries were already paused." if paused else "New entries were not paused."

        await self._serve(update, "pause" if paused else "resume", change)

    async def _pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._set_pause(update, True)

    async def _resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._set_pause(update, False)

    async def _unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        first = (message.text or "").split(maxsplit=1)[0] if message is not None and message.text else ""
        addressee = first.partition("@")[2].lower()
        if addressee and addressee != (context.bot.username or "").lower():
            return  # in a group, a command for another bot is none of ours
        await self._reply(update, UNKNOWN_COMMAND)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
