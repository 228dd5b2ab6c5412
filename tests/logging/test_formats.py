"""Line formats (kv, json), the redactor's encodings, handler idempotence and the library pins."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import urllib.parse
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.events import Ev, emit
from lifecycle.redaction import REDACTED, Redactor
from scheduler.logsetup import PINNED_LOGGERS, configure_logging, redact

TS_LEVEL = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARNING|ERROR|CRITICAL) "


def test_kv_event_name_follows_timestamp_and_level(log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=log_state)
    line = str(emit(Ev.JOB_FAILED, job="tick", error="venue down"))
    logging.getLogger("some.module").info("plain %s", "text")
    first, second = log_state.getvalue().splitlines()
    assert re.fullmatch(TS_LEVEL + re.escape(line), first)
    assert re.fullmatch(TS_LEVEL + r'LOG logger=some\.module msg="plain text"', second)


def test_kv_exception_stays_on_one_line(log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=log_state)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("x").exception("job died")
    (line,) = log_state.getvalue().splitlines()
    assert 'msg="job died" exc="Traceback' in line and "RuntimeError: boom" in line


def test_json_lines_parse_and_keep_fields(log_state: io.StringIO) -> None:
    configure_logging("json", "DEBUG", stream=log_state)
    emit(Ev.RECONCILIATION_REPORT, orphaned=1, phantom=0, level="warning", complete=True)
    emit(Ev.QTY_SYNCED, position=7, symbol="PF_XBTUSD", fills=2, registry_qty=Decimal("0.10"), venue_qty=None)
    logging.getLogger("lib").debug("multi\nline")
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("lib").exception("oops")
    rows = [json.loads(line) for line in log_state.getvalue().splitlines()]
    assert len(rows) == 4
    assert all({"ts", "level", "event"} <= row.keys() for row in rows)
    report, synced, plain, failed = rows
    # RECONCILIATION_REPORT has its own `level` field: it must not overwrite the record's level.
    assert report["event"] == "RECONCILIATION_REPORT" and report["level"] == "INFO" and report["level_"] == "warning"
    assert report["orphaned"] == 1 and report["complete"] is True
    assert synced["registry_qty"] == "0.10" and synced["venue_qty"] is None  # Decimal stays exact, as text
    assert plain == {**plain, "event": "LOG", "logger": "lib", "msg": "multi\nline", "level": "DEBUG"}
    assert failed["level"] == "ERROR" and "ValueError: bad" in failed["exc"]


def test_configuring_twice_replaces_the_handler(log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=io.StringIO())
    configure_logging("json", "INFO", stream=log_state)
    logging.getLogger("x").warning("once")
    assert len(log_state.getvalue().splitlines()) == 1


def test_library_loggers_pinned_unless_overridden(log_state: io.StringIO) -> None:
    configure_logging("kv", "DEBUG", stream=log_state, library_levels={"httpx": "info", "my.lib": "ERROR"})
    levels = {name: logging.getLogger(name).level for name in PINNED_LOGGERS}
    assert levels.pop("httpx") == logging.INFO
    assert set(levels.values()) == {logging.WARNING}
    assert logging.getLogger("my.lib").level == logging.ERROR
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.parametrize(("fmt", "level"), [("xml", "INFO"), ("kv", "LOUD")])
def test_bad_arguments_raise(fmt: str, level: str, log_state: io.StringIO) -> None:
    with pytest.raises(ValueError, match="log"):
        configure_logging(fmt, level, stream=log_state)  # type: ignore[arg-type]


def test_secret_in_event_field_is_redacted_in_both_formats(log_state: io.StringIO) -> None:
    secret = "S3cr3t/with+chars=="
    for fmt in ("kv", "json"):
        configure_logging(fmt, "INFO", stream=log_state, secrets=[secret])
        emit(Ev.JOB_FAILED, job="tick", error=f"auth failed for {secret}")
    out = log_state.getvalue()
    assert secret not in out and urllib.parse.quote(secret, safe="") not in out
    assert out.count(REDACTED) >= 2


def test_redact_helper_uses_registered_secrets(log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=log_state, secrets=["helper-secret-value"])
    assert redact("failed: helper-secret-value") == "failed: ***"


def test_short_strings_are_not_treated_as_secrets() -> None:
    redact = Redactor()
    redact.register("abc")
    assert redact("abc abc") == "abc abc"


def test_header_and_bot_patterns() -> None:
    redact = Redactor()
    line = "{'APIKey': 'PUBKEY_x', 'Authent': 'QUJD+/=='} authent=zzz https://api.telegram.org/bot1:AAx_-y/getMe"
    assert redact(line) == "{'APIKey': '***', 'Authent': '***'} authent=*** https://api.telegram.org/bot***/getMe"
    assert redact("bot42%3AAAAAbbbb") == "bot***"


_alphabet = st.characters(codec="ascii", exclude_characters="*", min_codepoint=33, max_codepoint=126)


@given(
    secret=st.text(_alphabet, min_size=6, max_size=40),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    form=st.sampled_from(["raw", "quote", "quote_plus", "b64", "b64url", "b64_nopad", "json"]),
)
def test_every_registered_form_is_removed(secret: str, prefix: str, suffix: str, form: str) -> None:
    raw = secret.encode()
    encoded = {
        "raw": secret,
        "quote": urllib.parse.quote(secret, safe=""),
        "quote_plus": urllib.parse.quote_plus(secret),
        "b64": base64.b64encode(raw).decode(),
        "b64url": base64.urlsafe_b64encode(raw).decode(),
        "b64_nopad": base64.b64encode(raw).decode().rstrip("="),
        "json": json.dumps(secret)[1:-1],
    }[form]
    redact = Redactor()
    redact.register(secret)
    assert encoded not in redact(prefix + encoded + suffix)
    assert secret not in redact(prefix + secret + suffix)
