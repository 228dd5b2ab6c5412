"""Canary runs at DEBUG: the real ccxt and httpx clients against stubs on 127.0.0.1 must not leak secrets.

ccxt logs every signed request's `APIKey` and `Authent` headers at DEBUG and puts the venue's error body into
its exception message; the stub reflects the headers it received into that body, the worst case. httpx logs
the full URL at INFO, which for Telegram contains `bot<token>`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import ccxt
import httpx
import pytest

from scheduler.logsetup import configure_logging

API_KEY = "CANARYKEY_pub_0123456789abcdef"
API_SECRET = base64.b64encode(b"CANARY-private-secret-bytes-0123456789" * 2).decode()
BOT_TOKEN = "987654321:CANARYtokenABCDEFGHIJKLMNOPQRSTUVW"
INSTRUMENTS = {
    "result": "success",
    "instruments": [
        {
            "symbol": "PF_XBTUSD",
            "type": "flexible_futures",
            "tickSize": 1,
            "contractSize": 1,
            "contractValueTradePrecision": 4,
            "tradeable": True,
        }
    ],
}
ALL_LOGGERS = {
    name: "DEBUG" for name in ("ccxt", "ccxt.base.exchange", "httpx", "httpcore", "urllib3", "telegram", "apscheduler")
}


class _Stub(BaseHTTPRequestHandler):
    seen_auth: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass  # the stub's access log is not under test

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/derivatives/api/v3/instruments"):
            self._reply(200, INSTRUMENTS)
            return
        authent = self.headers.get("Authent", "")
        _Stub.seen_auth.append(authent)
        echo = {"APIKey": self.headers.get("APIKey", ""), "Authent": authent, "path": self.path}
        self._reply(400, {"result": "error", "error": "unexpected", "echo": echo, "note": f"key {API_KEY}"})


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Stub.seen_auth = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    }


def _assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, f"leaked a form of a secret: {form[:6]}..."


def _ccxt_client(base: str) -> ccxt.krakenfutures:
    client = ccxt.krakenfutures({"apiKey": API_KEY, "secret": API_SECRET, "enableRateLimit": False, "timeout": 5000})
    client.urls["api"].update(
        {
            "public": f"{base}/derivatives/api/",
            "private": f"{base}/derivatives/api/",
            "charts": f"{base}/api/charts/",
            "history": f"{base}/api/history/",
        }
    )
    return client


@pytest.mark.parametrize("fmt", ["kv", "json"])
def test_ccxt_at_debug_leaks_nothing(
    fmt: str, stub: str, log_state: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(
        "kv" if fmt == "kv" else "json",
        "DEBUG",
        stream=log_state,
        secrets=[API_KEY, API_SECRET],
        library_levels=ALL_LOGGERS,
    )
    log = logging.getLogger("canary")
    client = _ccxt_client(stub)
    with pytest.raises(ccxt.BaseError) as raised:
        client.fetch_balance()
    # The exception carries the reflected headers; log it the way a job wrapper would.
    log.exception("fetch_balance failed: %s", raised.value)
    log.debug("encoded forms: %s %s", urllib.parse.quote(API_SECRET, safe=""), base64.b64encode(API_KEY.encode()))
    log.error("header dump %s", {"APIKey": API_KEY, "Authent": "c2lnbmF0dXJl+/=="})
    out = log_state.getvalue()
    captured = capsys.readouterr()
    assert "Request:" in out and "/derivatives/api/v3/accounts" in out  # ccxt's DEBUG header line did run
    assert API_KEY in str(raised.value)  # the raw exception would have leaked; the log must not
    assert _Stub.seen_auth and all(_Stub.seen_auth)
    everything = out + captured.out + captured.err
    _assert_clean(everything, [API_KEY, API_SECRET, *_Stub.seen_auth, "c2lnbmF0dXJl+/=="])
    if fmt == "json":
        for line in out.splitlines():
            json.loads(line)


def test_ccxt_request_lines_are_silent_at_the_default_pin(stub: str, log_state: io.StringIO) -> None:
    configure_logging("kv", "DEBUG", stream=log_state, secrets=[API_KEY, API_SECRET])
    with pytest.raises(ccxt.BaseError):
        _ccxt_client(stub).fetch_balance()
    assert "Request:" not in log_state.getvalue()
    assert logging.getLogger("ccxt").level == logging.WARNING


def test_httpx_bot_token_url_is_redacted(stub: str, log_state: io.StringIO) -> None:
    # The token is deliberately NOT registered: the bot<token> URL pattern alone must catch it.
    configure_logging("kv", "DEBUG", stream=log_state, library_levels=ALL_LOGGERS)
    with httpx.Client() as client:
        response = client.get(f"{stub}/bot{BOT_TOKEN}/getUpdates")
    logging.getLogger("tg").warning("failed url %s", response.request.url)
    out = log_state.getvalue()
    assert "HTTP Request: GET" in out and "/bot***/getUpdates" in out
    _assert_clean(out, [BOT_TOKEN, BOT_TOKEN.split(":", 1)[1]])


def test_httpx_info_line_suppressed_by_default(stub: str, log_state: io.StringIO) -> None:
    configure_logging("kv", "INFO", stream=log_state)
    with httpx.Client() as client:
        client.get(f"{stub}/bot{BOT_TOKEN}/getMe")
    assert "HTTP Request" not in log_state.getvalue()
