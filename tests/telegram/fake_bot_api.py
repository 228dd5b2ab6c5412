"""A fake Telegram Bot API on 127.0.0.1, enough for the real python-telegram-bot to poll and send.

Routes `/bot<token>/<method>`: getMe, deleteWebhook, getUpdates (long-polls a queue of updates), sendMessage
(recorded), setMyCommands. A wrong token gets 401 like the real API. `fail_next` injects a one-shot error
(e.g. 429 with retry_after) for a method; `break_down` makes every call fail from then on.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_ID = 424242
BOT_USERNAME = "fake_trader_bot"
MAX_LONG_POLL_S = 0.5  # the fake answers sooner than Telegram so that stopping a test is quick


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None


@dataclass
class FakeBotAPI:
    token: str
    path_prefix: str = ""  # as behind a reverse proxy: https://host/<prefix>/bot<token>/<method>
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._faults: dict[str, list[_Fault]] = {}
        self._down_status: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output stays about the bot, not the fake

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            self._lock.notify_all()

    @property
    def base_url(self) -> str:
        """What `telegram.api_base_url` is set to; the bot adds `/bot<token>/<method>`."""
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

    # --------------------------------------------------------------------------------------------- control

    def push_command(self, chat_id: int, user_id: int, text: str, chat_type: str = "private") -> int:
        command = text.split()[0]
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append(
                {
                    "update_id": update_id,
                    "message": {
                        "message_id": 1000 + update_id,
                        "date": 1_767_225_600,
                        "chat": {"id": chat_id, "type": chat_type, "title": "ops"}
                        if chat_type != "private"
                        else {"id": chat_id, "type": "private", "first_name": "Op"},
                        "from": {"id": user_id, "is_bot": False, "first_name": "Op"},
                        "text": text,
                        "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}],
                    },
                }
            )
            self._lock.notify_all()
        return update_id

    def fail_next(self, method: str, status: int, description: str, retry_after: int | None = None) -> None:
        with self._lock:
            self._faults.setdefault(method, []).append(_Fault(status, description, retry_after))

    def break_down(self, status: int = 500) -> None:
        """From now on every call fails with `status`, as a Bot API server in trouble answers."""
        with self._lock:
            self._down_status = status

    def methods(self) -> list[str]:
        with self._lock:
            return [m for m, _ in self.calls]

    def sent_to(self, chat_id: int) -> list[str]:
        with self._lock:
            return [str(p["text"]) for p in self.sent if int(p["chat_id"]) == chat_id]

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.02)
        with self._lock:
            return bool(predicate())

    # ---------------------------------------------------------------------------------------------- server

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        parts = path.removeprefix(self.path_prefix).strip("/").split("/")
        if not path.startswith(self.path_prefix + "/") or len(parts) != 2 or not parts[0].startswith("bot"):
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = parts[0][3:], parts[1]
        if token != self.token:
            self._reply(request, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        params = self._params(request)
        with self._lock:
            self.calls.append((method, params))
            faults = self._faults.get(method)
            fault = faults.pop(0) if faults else None
            if fault is None and self._down_status is not None:
                fault = _Fault(self._down_status, "Internal Server Error", None)
        if fault is not None:
            body: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": fault.description}
            if fault.retry_after is not None:
                body["parameters"] = {"retry_after": fault.retry_after}
            self._reply(request, fault.status, body)
            return
        result = self._result(method, params)
        if result is None:
            self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found: method"})
        else:
            self._reply(request, 200, {"ok": True, "result": result})

    def _params(self, request: BaseHTTPRequestHandler) -> dict[str, Any]:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else ""
        if request.headers.get("Content-Type", "").startswith("application/json"):
            loaded = json.loads(raw or "{}")
            return dict(loaded) if isinstance(loaded, dict) else {}
        return {k: _maybe_json(v) for k, v in urllib.parse.parse_qsl(raw)}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "FakeBot", "username": BOT_USERNAME}
        if method in ("deleteWebhook", "setMyCommands"):
            if params.get("drop_pending_updates") in (True, "true", "True"):
                with self._lock:
                    self._updates.clear()
            return True
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "sendMessage":
            with self._lock:
                self.sent.append(params)
                message_id = next(self._message_ids)
            return {
                "message_id": message_id,
                "date": 1_767_225_600,
                "text": params["text"],
                "chat": {"id": int(params["chat_id"]), "type": "private"},
            }
        return None

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), MAX_LONG_POLL_S)
        deadline = time.monotonic() + wait
        with self._lock:
            # Confirming an offset forgets the older updates, as Telegram does.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and self._server is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(self._updates)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a stopping bot); nothing to tell it
