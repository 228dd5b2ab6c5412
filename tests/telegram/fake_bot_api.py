"""A fake Telegram Bot API on 127.0.0.1, enough for the real python-telegram-bot to poll and send.

Routes `/bot<token>/<method>`: getMe, deleteWebhook, getUpdates (long-polls a queue of updates), sendMessage
and sendPhoto (recorded; a photo arrives as multipart/form-data, as python-telegram-bot uploads it), setMyCommands
(the command list recorded). A wrong token gets 401 like the real API. `fail_next` injects a one-shot error
(e.g. 429 with retry_after) for a method; `break_down` makes every call fail from then on.
"""

from __future__ import annotations

import email.parser
import email.policy
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


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart/form-data body: file parts as bytes, the other fields as JSON-or-text like a form post."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    out: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        out[name] = payload if part.get_filename() else _maybe_json(payload.decode())
    return out


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
    photos: list[dict[str, Any]] = field(default_factory=list)
    """sendPhoto calls: chat_id, caption and the uploaded bytes under `photo`."""
    commands: list[list[dict[str, str]]] = field(default_factory=list)
    """Each setMyCommands call's command list."""

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
        body = request.rfile.read(length) if length else b""
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            return _multipart(content_type, body)
        raw = body.decode()
        if content_type.startswith("application/json"):
            loaded = json.loads(raw or "{}")
            return dict(loaded) if isinstance(loaded, dict) else {}
        return {k: _maybe_json(v) for k, v in urllib.parse.parse_qsl(raw)}

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "FakeBot", "username": BOT_USERNAME}
        if method == "setMyCommands":
            with self._lock:
                self.commands.append(list(params.get("commands") or []))
            return True
        if method == "sendPhoto":
            photo = params.get("photo")
            if not isinstance(photo, bytes):
                return None  # a photo by URL or file id is not something the daemon sends
            with self._lock:
                self.photos.append(params)
                message_id = next(self._message_ids)
            return {
                "message_id": message_id,
                "date": 1_767_225_600,
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "photo": [{"file_id": f"photo{message_id}", "file_unique_id": f"u{message_id}", "width": 1000,
                           "height": 500, "file_size": len(photo)}],
            }  # fmt: skip
        if method == "deleteWebhook":
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
