"""Root logging: one line per record (kv or JSON), secrets redacted, leaky library loggers pinned.

kv:   `2026-11-24T19:46:22.123Z INFO  CYCLE_SUMMARY cycle=3 ...` (timestamp, level, then the event name, so
      `grep CYCLE_SUMMARY` works); a non-event record is `... INFO  LOG logger=ccxt msg="..."`.
json: `{"ts": ..., "level": ..., "event": ..., <fields>}`; a field whose name collides with ts/level/event/
      logger gets a trailing underscore (POSITION_TRANSITION's `event` becomes `event_`).

Redaction happens twice: a filter rewrites each record (message, arguments, traceback) before any handler
formats it, and the formatter scrubs its final text again, because a secret can also arrive through `extra`
fields or a library's exception text. It holds at DEBUG: ccxt logs the `APIKey` and `Authent` headers of every
signed request, and httpx logs Telegram URLs containing `bot<token>`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import IO, Literal

from lifecycle.events import render_kv, render_value
from lifecycle.redaction import Redactor
from scheduler.quiet import QuietRoutine

PINNED_LOGGERS = ("ccxt", "ccxt.base.exchange", "httpx", "httpcore", "urllib3", "telegram", "apscheduler")
_RESERVED = frozenset({"ts", "level", "event", "logger"})


REDACT = Redactor()


def redact(text: str) -> str:
    """For text that bypasses logging (a last-resort `print` to stderr, a report file, a Telegram message)."""
    return REDACT(text)


def register_secret(secret: str) -> None:
    """Add a secret after logging is configured (e.g. a token read later)."""
    REDACT.register(secret)


class RedactionFilter(logging.Filter):
    """Rewrites a record in place so every handler, including ones added later by others, sees it redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not take the log down; keep the raw template
            message = str(record.msg)
        record.msg, record.args = REDACT(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = REDACT(record.exc_text)
        record.exc_info = None  # the redacted exc_text replaces it; formatters would re-render the raw one
        if record.stack_info:
            record.stack_info = REDACT(record.stack_info)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_of(record: logging.LogRecord) -> tuple[str | None, dict[str, object]]:
    event = getattr(record, "event", None)
    fields = getattr(record, "event_fields", None)
    if isinstance(event, str) and isinstance(fields, dict):
        return event, fields
    return None, {}


class KvFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, _ = _event_of(record)
        body = record.getMessage() if event else render_kv("LOG", {"logger": record.name, "msg": record.getMessage()})
        if record.exc_text:
            body += f" exc={render_value(record.exc_text)}"
        if record.stack_info:
            body += f" stack={render_value(record.stack_info)}"
        return REDACT(f"{_timestamp(record)} {record.levelname:<5} {body}")


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)  # exact; a JSON number would be read back as a float
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return REDACT(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, fields = _event_of(record)
        out: dict[str, object] = {"ts": _timestamp(record), "level": record.levelname, "event": event or "LOG"}
        if event:
            for name, value in fields.items():
                out[f"{name}_" if name in _RESERVED else name] = _json_value(value)
        else:
            out["logger"] = record.name
            out["msg"] = REDACT(record.getMessage())
        if record.exc_text:
            out["exc"] = REDACT(record.exc_text)
        if record.stack_info:
            out["stack"] = REDACT(record.stack_info)
        return REDACT(json.dumps(out, ensure_ascii=False, default=str))


class _OurHandler(logging.StreamHandler[IO[str]]):
    """Marks the handler we installed, so configuring twice replaces it instead of doubling every line."""


def configure_logging(
    fmt: Literal["kv", "json"],
    level: str,
    stream: IO[str] | None = None,
    secrets: Iterable[str] = (),
    library_levels: Mapping[str, str] | None = None,
    quiet_cycles: int | None = None,
) -> logging.Handler:
    """Install the root handler; returns it. `library_levels` overrides the WARNING pin of PINNED_LOGGERS;
    `quiet_cycles` prints routine report lines only on change or every that many (scheduler.quiet)."""
    if fmt not in ("kv", "json"):
        raise ValueError(f"log format must be 'kv' or 'json', not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}")
    for secret in secrets:
        REDACT.register(secret)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _OurHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KvFormatter())
    handler.addFilter(RedactionFilter())
    if quiet_cycles is not None:
        handler.addFilter(QuietRoutine(quiet_cycles))
    # The level on the handler too: a logger set lower for its own readers (the metrics endpoint reads every
    # event) must not print more than the operator asked for.
    handler.setLevel(numeric)
    root.addHandler(handler)
    root.setLevel(numeric)
    overrides = {k: v.upper() for k, v in (library_levels or {}).items()}
    for name in PINNED_LOGGERS:
        logging.getLogger(name).setLevel(overrides.get(name, "WARNING"))
    for name, value in overrides.items():
        if name not in PINNED_LOGGERS:
            logging.getLogger(name).setLevel(value)
    return handler


def _one_line_crash(where: str, exc_type: type[BaseException], exc: BaseException | None) -> None:
    """An uncaught exception: one redacted line (through the configured log handler, else on stderr); the
    traceback only at DEBUG, redacted too. Never the interpreter's raw traceback, which can carry secrets."""
    line = redact(f"trading daemon: uncaught {exc_type.__name__} in {where}: {exc}")
    crash = logging.getLogger("scheduler.crash")
    if logging.getLogger().handlers:
        crash.critical("%s", line)
        if crash.isEnabledFor(logging.DEBUG):
            crash.debug("traceback", exc_info=(exc_type, exc or exc_type(), exc.__traceback__ if exc else None))
        return
    with contextlib.suppress(OSError, ValueError):  # stderr itself may be gone (a closed pipe)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    _one_line_crash(f"thread {name}", args.exc_type, args.exc_value)


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _one_line_crash("the main thread", exc_type, exc)


def install_excepthooks() -> None:
    """Redacting `sys.excepthook` and `threading.excepthook` (a crashed clock or notifier thread, say)."""
    sys.excepthook = _sys_hook
    threading.excepthook = _thread_hook
