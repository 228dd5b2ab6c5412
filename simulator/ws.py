"""Kraken Futures' private websocket feeds, served by the simulator's HTTP server on the same port under Kraken's
path `/ws/v1` (the real `ccxt.pro.krakenfutures` client connects to `ws://127.0.0.1:PORT/ws/v1`).

Protocol, as Kraken documents it: on connect `{"event":"info","version":1}`; `{"event":"challenge","api_key":K}`
is answered `{"event":"challenge","message":<uuid>}`; every private `subscribe` carries `api_key`,
`original_challenge` and `signed_challenge = base64(HMAC-SHA512(b64decode(secret), SHA256(challenge)))`, is
answered `{"event":"subscribed","feed":...}` and then a snapshot (`fills_snapshot`, `open_orders_snapshot`,
`open_positions`, `balances_snapshot`) followed by deltas (`fills`, `open_orders`, `open_positions`, `balances`).
A subscribe whose key or signature is wrong gets `{"event":"alert","message":"Failed to subscribe to
authenticated feed"}` (ccxt raises ExchangeError on it). The public `heartbeat` feed sends
`{"feed":"heartbeat","time":ms}` every `heartbeat_s`. Client ping frames are answered with pong frames.

Deltas come from the engine's history (every order placed, triggered, filled, edited or cancelled, and every
execution), read by a pump thread every `poll_s`; a subscribe first flushes what is pending so its snapshot and
the deltas after it neither overlap nor leave a gap. Faults (`simulator.ws_faults`) act on outgoing messages.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from lifecycle.clock import to_ms
from simulator import ws_frames as F
from simulator import ws_payloads as W
from simulator.engine import Simulator
from simulator.models import HistoryKind
from simulator.ws_faults import WsFaultKind, WsFaultPlan

WS_PATH = "/ws/v1"
PRIVATE_FEEDS = frozenset({"fills", "open_orders", "open_positions", "balances"})
PUBLIC_FEEDS = frozenset({"heartbeat"})
AUTH_REFUSED = "Failed to subscribe to authenticated feed"


def ws_url(base_url: str) -> str:
    """The websocket URL for a REST base URL: http -> ws, https -> wss, plus Kraken's path."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + WS_PATH
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://") + WS_PATH
    raise ValueError(f"base URL must start with http:// or https://, got {base_url!r}")


def sign_challenge(challenge: str, secret_b64: str) -> str:
    digest = hashlib.sha256(challenge.encode()).digest()
    return base64.b64encode(hmac.new(base64.b64decode(secret_b64), digest, hashlib.sha512).digest()).decode()


def is_upgrade(path: str, headers: Any) -> bool:
    return path.split("?", 1)[0] == WS_PATH and str(headers.get("Upgrade", "")).lower() == "websocket"


class Connection:
    """One client: its challenges, its subscriptions and its outgoing queue (faults delay or reorder items)."""

    def __init__(self, hub: FeedHub, sock: socket.socket) -> None:
        self.hub = hub
        self.sock = sock
        self.challenges: set[str] = set()
        self.feeds: set[str] = set()
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._stalled_until = 0.0
        self.closed = False

    def enqueue(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        feed = f"event:{event}" if event else str(message.get("feed", ""))
        frame = F.encode(F.OP_TEXT, json.dumps(message, separators=(",", ":")).encode())
        fault = self.hub.faults.draw(feed)
        now = time.monotonic()
        with self._lock:
            due = max(now, self._stalled_until)
            copies = 1
            if fault is not None:
                if fault.kind is WsFaultKind.DROP:
                    self._drop_locked()
                    return
                if fault.kind is WsFaultKind.STALL:
                    self._stalled_until = now + fault.delay
                    due = self._stalled_until
                elif fault.kind is WsFaultKind.DUPLICATE:
                    copies = 2
                else:  # reorder, delay: later messages overtake this one
                    due = now + fault.delay
            for _ in range(copies):
                self._seq += 1
                self._queue.append((due, self._seq, frame))

    def flush(self) -> None:
        """Send every queued message that is due, in (due, arrival) order."""
        now = time.monotonic()
        with self._lock:
            if self.closed or not self._queue:
                return
            ready = sorted(item for item in self._queue if item[0] <= now)
            if not ready:
                return
            self._queue = [item for item in self._queue if item[0] > now]
            try:
                for _, _, frame in ready:
                    self.sock.sendall(frame)
            except OSError:
                self._drop_locked()

    def send_control(self, opcode: int, payload: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.sock.sendall(F.encode(opcode, payload))
            except OSError:
                self._drop_locked()

    def drop(self) -> None:
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # the reader sees EOF; the client sees the stream end


class FeedHub:
    """The simulator's websocket side: connections, the pump thread, heartbeats and faults."""

    def __init__(
        self,
        sim: Simulator,
        *,
        api_key: str | None,
        api_secret: str | None,
        heartbeat_s: float = 5.0,
        poll_s: float = 0.005,
    ) -> None:
        self.sim = sim
        self.api_key = api_key
        self._secret = api_secret
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        self.faults = WsFaultPlan()
        self.lock = threading.RLock()
        self.connections: set[Connection] = set()
        self.accepted = 0  # connections ever accepted (tests read reconnects from it)
        self.auth_refused = 0
        self.challenges_issued: list[str] = []  # for tests: what a signed challenge must never leak from
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor: int | None = None
        self._last_heartbeat = 0.0
        self._positions_seq = 0

    # ------------------------------------------------------------------ lifecycle
    def attach(self, conn: Connection) -> None:
        with self.lock:
            if self._cursor is None:
                with self.sim.lock:
                    self._cursor = self.sim.history_end()  # the engine's history, read by sequence number
            self.connections.add(conn)
            self.accepted += 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="kraken-simulator-ws", daemon=True)
                self._thread.start()

    def detach(self, conn: Connection) -> None:
        conn.drop()
        with self.lock:
            self.connections.discard(conn)

    def drop_all(self) -> None:
        """Close every connection abruptly (a venue-side disconnect, as a test or a fault script wants it)."""
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            conn.drop()

    def close(self) -> None:
        self._stop.set()
        self.drop_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._stop.clear()  # a server started again serves again

    # ------------------------------------------------------------------ the pump
    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.pump()
            except Exception:  # the pump must outlive one bad tick (a test stops the engine mid-way)
                time.sleep(self.poll_s)

    def pump(self) -> None:
        with self.lock:
            self._publish_pending()
            now = time.monotonic()
            if now - self._last_heartbeat >= self.heartbeat_s:
                self._last_heartbeat = now
                beat = {"feed": "heartbeat", "time": to_ms(self.sim.now())}
                for conn in self.connections:
                    if "heartbeat" in conn.feeds:
                        conn.enqueue(beat)
            for conn in list(self.connections):
                conn.flush()

    def _publish_pending(self) -> None:
        sim = self.sim
        with sim.lock:
            start = self._cursor if self._cursor is not None else sim.history_end()
            events = sim.history_from(start)
            self._cursor = sim.history_end()
            if not events:
                return
            messages: list[tuple[str, dict[str, Any]]] = []
            executed = False
            for event in events:
                if event.kind is HistoryKind.EXECUTION and event.fill is not None:
                    executed = True
                    element = W.fill_element(event.fill, event.order, update=True)
                    messages.append(("fills", {"feed": "fills", "username": W.ACCOUNT, "fills": [element]}))
                    continue
                update = W.order_update(event)
                if update is not None:
                    messages.append(("open_orders", update))
            if executed:
                messages.append(("open_positions", self._positions_message()))
                self._positions_seq += 1
                account = sim.account()
                messages.append(
                    ("balances", W.balances(account, snapshot=False, seq=self._positions_seq, now_ms=to_ms(sim.now())))
                )
        for conn in self.connections:
            for feed, message in messages:
                if feed in conn.feeds:
                    conn.enqueue(message)

    def _positions_message(self) -> dict[str, Any]:
        sim = self.sim
        positions = [W.position_element(p, sim.quote(p.symbol).mark) for p in sim.positions()]
        return {
            "feed": "open_positions",
            "account": W.ACCOUNT,
            "positions": positions,
            "seq": self._positions_seq,
            "timestamp": to_ms(sim.now()),
        }

    # ------------------------------------------------------------------ requests
    def on_request(self, conn: Connection, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            conn.enqueue({"event": "error", "message": "Json Error"})
            conn.flush()
            return
        if not isinstance(msg, dict):
            conn.enqueue({"event": "error", "message": "Json Error"})
        elif msg.get("event") == "challenge":
            challenge = str(uuid.uuid4())
            conn.challenges.add(challenge)
            self.challenges_issued.append(challenge)
            conn.enqueue({"event": "challenge", "message": challenge})
        elif msg.get("event") == "ping":
            conn.enqueue({"event": "pong"})
        elif msg.get("event") in ("subscribe", "unsubscribe"):
            self._subscription(conn, msg)
        else:
            conn.enqueue({"event": "error", "message": "Json Error"})
        conn.flush()

    def _authorised(self, conn: Connection, msg: dict[str, Any]) -> bool:
        if self._secret is None:
            return True
        challenge = msg.get("original_challenge")
        signed = msg.get("signed_challenge")
        if msg.get("api_key") != self.api_key or not isinstance(challenge, str) or not isinstance(signed, str):
            return False
        if challenge not in conn.challenges:
            return False
        try:
            want = sign_challenge(challenge, self._secret)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(want.encode(), signed.encode())

    def _subscription(self, conn: Connection, msg: dict[str, Any]) -> None:
        feed = str(msg.get("feed", ""))
        if feed not in PRIVATE_FEEDS | PUBLIC_FEEDS:
            conn.enqueue({"event": "alert", "message": f"Unsupported feed {feed}"[:80]})
            return
        if feed in PRIVATE_FEEDS and not self._authorised(conn, msg):
            self.auth_refused += 1
            conn.enqueue({"event": "alert", "message": AUTH_REFUSED})
            return
        answer: dict[str, Any] = {
            "event": "subscribed" if msg["event"] == "subscribe" else "unsubscribed",
            "feed": feed,
        }
        if feed in PRIVATE_FEEDS:
            answer["api_key"] = msg.get("api_key")  # Kraken echoes the request; the challenges are not echoed here
        with self.lock:
            self._publish_pending()  # what happened before this subscribe goes out first, to the others
            if msg["event"] == "unsubscribe":
                conn.feeds.discard(feed)
                conn.enqueue(answer)
                return
            conn.enqueue(answer)
            snapshot = self._snapshot(feed)
            if snapshot is not None:
                conn.enqueue(snapshot)
            conn.feeds.add(feed)

    def _snapshot(self, feed: str) -> dict[str, Any] | None:
        sim = self.sim
        with sim.lock:
            now_ms = to_ms(sim.now())
            if feed == "fills":
                fills = [W.fill_element(f, sim.order(f.order_id), update=False) for f in sim.fills()]
                return {"feed": "fills_snapshot", "account": W.ACCOUNT, "fills": fills}
            if feed == "open_orders":
                orders = [W.order_element(o) for o in sim.open_orders()]
                return {"feed": "open_orders_snapshot", "account": W.ACCOUNT, "orders": orders}
            if feed == "open_positions":
                return self._positions_message()
            if feed == "balances":
                return W.balances(sim.account(), snapshot=True, seq=self._positions_seq, now_ms=now_ms)
        return None  # heartbeat: no snapshot


def serve_ws(handler: BaseHTTPRequestHandler, hub: FeedHub) -> None:
    """Answer the upgrade and run the connection in this (the request's) thread until either side closes."""
    key = handler.headers.get("Sec-WebSocket-Key")
    if not key or handler.headers.get("Sec-WebSocket-Version") != "13":
        handler.send_response(400, "Bad Request")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", F.accept_key(key))
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    conn = Connection(hub, handler.connection)
    hub.attach(conn)
    try:
        conn.enqueue({"event": "info", "version": 1})
        conn.flush()

        def control(opcode: int, payload: bytes) -> None:
            if opcode == F.OP_PING:
                conn.send_control(F.OP_PONG, payload)
            elif opcode == F.OP_CLOSE:
                conn.send_control(F.OP_CLOSE, payload[:2] or F.close_payload(1000))
                raise F.FrameError("closed by the client")

        while not conn.closed:
            _, data = F.read_message(handler.rfile, control)
            hub.on_request(conn, data)
    except (F.FrameError, OSError):
        pass
    finally:
        hub.detach(conn)
