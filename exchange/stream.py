"""The order stream: Kraken Futures' private websocket feeds through `ccxt.pro.krakenfutures`, on a thread of
its own running an asyncio loop (docs/stream.md).

What it does, and no more: it turns each fill (`fills` feed, snapshot then deltas) and each order update
(`open_orders`) into `lifecycle.values` types and hands them to a `StreamHandler` from a worker thread, so the
handler may block on the daemon's job lock without stalling the loop (heartbeats keep being read meanwhile).
It never decides anything: the handler calls the one door for fills (`operations.fills.ingest`). Idempotency
comes from the fill ids (the ledger ignores one it holds), so a snapshot replayed on reconnect, a duplicate or a
reordered message changes nothing.

Health: `STREAM_CONNECTED` when the fills snapshot has arrived; `STREAM_DISCONNECTED` with the reason, the age of
the last message and the next retry; `STREAM_LAG` when no message (heartbeats included) came for
`max_silence_s` (`state=silent`: the connection is then dropped and opened again), when a fill arrives later
than that after the venue's timestamp (`state=late`), or once per outage when the stream has been down for
`degraded_after_s` (`state=degraded`). Every gap (a reconnect, a silence, a fill `seq` that skips one, a failed
delivery) calls
`handler.on_gap(reason)`: the daemon answers with an immediate REST reconciliation, which stays the truth.

Reconnects back off exponentially from `backoff_initial_s`, capped at `backoff_max_s`, with full jitter.
Secrets: ccxt is never verbose here (its verbose mode prints frames, the signed challenge included), and
every reason we log passes through a redactor holding the key, the secret and the current signed challenge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import ccxt.pro

import lifecycle.symbols as symbols
from exchange import stream_parse as sp
from exchange.ccxt_venue import LIVE_BASE_URL, api_urls
from exchange.errors import MalformedResponse
from lifecycle.clock import Clock, SystemClock
from lifecycle.events import Ev, emit
from lifecycle.redaction import Redactor
from lifecycle.values import VenueFill, VenueOrder

log = logging.getLogger(__name__)
WS_PATH = "/ws/v1"
AUTH_REFUSED = "Failed to subscribe to authenticated feed"


def ws_url(base_url: str | None) -> str:
    """Kraken's websocket URL for a REST base URL (live, demo or the simulator): http -> ws, https -> wss."""
    base = (base_url or LIVE_BASE_URL).rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            return ws + base.removeprefix(http) + WS_PATH
    raise ValueError(f"venue.base_url must start with http:// or https://, got {base_url!r}")


class StreamHandler(Protocol):
    """What the daemon does with the stream. Called from a worker thread, one call at a time per feed."""

    def on_fills(self, fills: Sequence[VenueFill]) -> bool:
        """Record the fills (through the one door); False when that failed (the stream then reports a gap)."""
        ...

    def on_orders(self, orders: Sequence[VenueOrder], venue_cancels: int) -> None:
        """Order updates; `venue_cancels` counts removals the venue made (not a user cancel, not a fill)."""
        ...

    def on_gap(self, reason: str) -> None:
        """The stream may have missed something: reconcile from REST now."""
        ...


@dataclass
class StreamStats:
    """Counters for CYCLE_SUMMARY, /status and the metrics endpoint. Written by the stream thread only."""

    state: str = "stopped"  # connecting | connected | down | stopped
    connects: int = 0
    disconnects: int = 0
    fills_received: int = 0
    order_updates: int = 0
    heartbeats: int = 0
    gaps: int = 0
    seq_gaps: int = 0
    delivery_failures: int = 0
    last_lag_ms: int | None = None
    last_message_monotonic: float | None = None
    down_since_monotonic: float | None = field(default_factory=time.monotonic)

    def last_message_age_s(self, now: float | None = None) -> float | None:
        if self.last_message_monotonic is None:
            return None
        return round((now if now is not None else time.monotonic()) - self.last_message_monotonic, 3)

    def down_for_s(self, now: float | None = None) -> float:
        if self.state == "connected" or self.down_since_monotonic is None:
            return 0.0
        return round((now if now is not None else time.monotonic()) - self.down_since_monotonic, 3)


class _Silent(Exception):
    pass


class _KrakenFuturesStream(ccxt.pro.krakenfutures):  # type: ignore[misc]
    """ccxt.pro's client plus what it leaves out: the `heartbeat` feed (ccxt 4.5.90 ignores it) and a hook on
    every inbound message, so silence can be measured."""

    on_any_message: Any = None

    def handle_message(self, client: Any, message: Any) -> Any:
        if self.on_any_message is not None:
            self.on_any_message(message)
        if isinstance(message, dict) and message.get("feed") == "heartbeat" and "event" not in message:
            client.resolve(message, "heartbeat")
            return None
        return super().handle_message(client, message)


class OrderStream:
    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        base_url: str | None,
        handler: StreamHandler,
        clock: Clock | None = None,
        max_silence_s: float = 15.0,
        degraded_after_s: float = 120.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self._base_url = base_url or LIVE_BASE_URL
        self.url = ws_url(base_url)
        self._handler = handler
        self._clock = clock or SystemClock()
        self.max_silence_s = max_silence_s
        self.degraded_after_s = degraded_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._timeout_s = timeout_s
        self._rng = rng or random.Random()
        self._redact = Redactor()
        self._redact.register(api_key)
        self._redact.register(api_secret)
        self.stats = StreamStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._degraded_reported = False

    # ------------------------------------------------------------------ thread control
    def start(self) -> OrderStream:
        if self._thread is not None:
            raise RuntimeError("the order stream is already running")
        self._stopping.clear()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._main = loop.create_task(self._run())
                ready.set()
                loop.run_until_complete(self._main)
            except asyncio.CancelledError:
                pass
            finally:
                # ccxt leaves tasks behind (its throttler, a send in flight): cancel and await them before closing
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                with contextlib.suppress(Exception):
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                self.stats.state = "stopped"

        self._thread = threading.Thread(target=run, name="order-stream", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("order stream thread did not stop within %.0f s", timeout_s)
            self._thread = None

    def __enter__(self) -> OrderStream:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def degraded(self) -> bool:
        return self.stats.state != "connected" and self.stats.down_for_s() >= self.degraded_after_s

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        # Deliveries run beside the feeds: a watch loop that waited for the job lock would miss the next message
        # (ccxt resolves a future only if one is waiting; an update meanwhile stays in its cache until another
        # arrives). The queue outlives a reconnect, so what was received is delivered whatever the socket does.
        self._outbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        deliverer = asyncio.ensure_future(self._deliveries())
        try:
            await self._connect_forever()
        finally:
            deliverer.cancel()
            await asyncio.gather(deliverer, return_exceptions=True)

    async def _deliveries(self) -> None:
        while True:
            items = [await self._outbox.get()]
            while not self._outbox.empty():
                items.append(self._outbox.get_nowait())  # a burst: one ingest, one lock acquisition
            fills = [f for kind, item in items if kind == "fills" for f in item]
            if fills and not await asyncio.to_thread(self._deliver, fills):
                self.stats.delivery_failures += 1
                self._gap("delivery_failed")
            for kind, item in items:
                if kind != "orders":
                    continue
                orders, venue_cancels = item
                try:
                    await asyncio.to_thread(self._handler.on_orders, orders, venue_cancels)
                except Exception:
                    log.exception("order stream: the order-updates handler failed")

    async def _connect_forever(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            self.stats.state = "connecting"
            reason = "closed"
            ex = self._client()
            connected_before = self.stats.connects
            try:
                await self._session(ex)
            except asyncio.CancelledError:
                reason = "stopped"
                raise
            except _Silent:
                reason = "silent"
            except Exception as exc:
                reason = self._reason(exc)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(ex.close())
                if self.stats.state == "connected" or reason == "stopped":
                    self.stats.down_since_monotonic = time.monotonic()
                if reason == "stopped":
                    self.stats.state = "stopped"
            if self.stats.connects > connected_before:
                attempt = 0  # it worked for a while: start the backoff again from the bottom
            delay = self._backoff(attempt, auth=reason == "auth_refused")
            attempt += 1
            self.stats.state = "down"
            self.stats.disconnects += 1
            emit(
                Ev.STREAM_DISCONNECTED,
                reason=reason,
                last_message_age_s=self.stats.last_message_age_s(),
                retry_in_s=round(delay, 2),
            )
            self._gap(reason if reason != "closed" else "reconnect")
            await self._wait_down(delay)

    def _backoff(self, attempt: int, *, auth: bool) -> float:
        """Full jitter over a capped exponential; a refused key waits the cap (retrying fast cannot help)."""
        cap = self.backoff_max_s
        ceiling = cap if auth else min(cap, self.backoff_initial_s * (2**attempt))
        return float(ceiling * (0.5 + 0.5 * self._rng.random()))

    async def _wait_down(self, delay: float) -> None:
        end = time.monotonic() + delay
        while not self._stopping.is_set():
            left = end - time.monotonic()
            self._check_degraded()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.25))

    def _check_degraded(self) -> None:
        if self._degraded_reported or not self.degraded:
            return
        self._degraded_reported = True
        emit(
            Ev.STREAM_LAG,
            state="degraded",
            last_message_age_s=self.stats.last_message_age_s(),
            lag_ms=self.stats.last_lag_ms,
            detail=f"stream down for {self.stats.down_for_s():.0f} s; trading goes on with REST polling",
        )

    def _client(self) -> _KrakenFuturesStream:
        ex = make_client(self._key, self._secret, self._base_url, self._timeout_s)
        ex.on_any_message = self._touch
        return ex

    def _touch(self, _message: Any) -> None:
        self.stats.last_message_monotonic = time.monotonic()

    def _reason(self, exc: BaseException) -> str:
        text = str(exc)
        if AUTH_REFUSED in text:
            return "auth_refused"
        return self._redact(f"{type(exc).__name__}: {text}")[:160]

    def _gap(self, reason: str) -> None:
        self.stats.gaps += 1
        try:
            self._handler.on_gap(reason)
        except Exception:
            log.exception("order stream: the gap handler failed (reason %s)", reason)

    async def _session(self, ex: _KrakenFuturesStream) -> None:
        await asyncio.wait_for(ex.load_markets(), self._timeout_s)
        tasks = [
            asyncio.ensure_future(self._fills(ex)),
            asyncio.ensure_future(self._orders(ex)),
            asyncio.ensure_future(self._heartbeats(ex)),
            asyncio.ensure_future(self._watchdog()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises what ended the session
            raise ConnectionError("a feed ended")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            signed = ex.options.get("signedChallenge")
            if isinstance(signed, str) and signed:
                self._redact.register(signed)

    async def _fills(self, ex: _KrakenFuturesStream) -> None:
        first = True
        last_seq: int | None = None
        while True:
            trades = await ex.watch_my_trades()
            signed = ex.options.get("signedChallenge")
            if first and isinstance(signed, str) and signed:
                self._redact.register(signed)
            fills = self._parse_fills(trades)
            is_snapshot = first
            if first:
                first = False
                self.stats.connects += 1
                self.stats.state = "connected"
                self.stats.down_since_monotonic = None
                self._degraded_reported = False
                emit(Ev.STREAM_CONNECTED, url=self.url, snapshot_fills=len(fills), connects=self.stats.connects)
            seqs = sorted(_seqs(trades))
            if seqs:
                if not is_snapshot and last_seq is not None and seqs[0] > last_seq + 1:
                    # a fill's sequence number skipped: one was lost or is late; REST tells which
                    self.stats.seq_gaps += 1
                    self._gap("missed_sequence")
                last_seq = max(seqs[-1], last_seq if last_seq is not None else seqs[-1])
            if not fills:
                continue
            self.stats.fills_received += len(fills)
            newest = max(f.time for f in fills)
            if not is_snapshot:  # a snapshot's fills are old by nature; a delta's age is the stream's lag
                lag_ms = int((self._clock.now() - newest).total_seconds() * 1000)
                self.stats.last_lag_ms = lag_ms
                if lag_ms > self.max_silence_s * 1000:
                    emit(
                        Ev.STREAM_LAG,
                        state="late",
                        last_message_age_s=self.stats.last_message_age_s(),
                        lag_ms=lag_ms,
                        detail=f"a fill arrived {lag_ms} ms after the venue's timestamp",
                    )
            self._outbox.put_nowait(("fills", fills))

    def _deliver(self, fills: Sequence[VenueFill]) -> bool:
        try:
            return bool(self._handler.on_fills(fills))
        except Exception:
            log.exception("order stream: the fills handler failed")
            return False

    def _parse_fills(self, trades: Sequence[Any]) -> list[VenueFill]:
        out: list[VenueFill] = []
        for trade in trades:
            info = trade.get("info") if isinstance(trade, dict) else None
            if not isinstance(info, dict):
                continue
            try:
                out.append(sp.fill(info, _key))
            except (MalformedResponse, ValueError) as exc:
                log.warning("order stream: a fill was unreadable and is left to REST: %s", exc)
        return out

    async def _orders(self, ex: _KrakenFuturesStream) -> None:
        while True:
            orders = await ex.watch_orders()
            parsed: list[VenueOrder] = []
            venue_cancels = 0
            for o in orders:
                try:
                    vo = sp.order(o, _key)
                except (MalformedResponse, ValueError) as exc:
                    log.warning("order stream: an order update was unreadable and is left to REST: %s", exc)
                    continue
                reason = sp.cancel_reason(o)
                if reason is not None and reason not in ("cancelled_by_user", "full_fill"):
                    venue_cancels += 1
                if vo is not None:
                    parsed.append(vo)
            self.stats.order_updates += len(orders)
            if parsed or venue_cancels:
                self._outbox.put_nowait(("orders", (parsed, venue_cancels)))

    async def _heartbeats(self, ex: _KrakenFuturesStream) -> None:
        while True:
            beat = await ex.watch(self.url, "heartbeat", {"event": "subscribe", "feed": "heartbeat"}, "heartbeat")
            self.stats.heartbeats += 1
            when = beat.get("time") if isinstance(beat, dict) else None
            if isinstance(when, int | float):
                self.stats.last_lag_ms = int(self._clock.now().timestamp() * 1000 - when)

    async def _watchdog(self) -> None:
        """Silence past `max_silence_s` (no frame at all, heartbeats included) is a gap: report, then reconnect."""
        while True:
            await asyncio.sleep(min(0.25, self.max_silence_s / 4))
            if self.stats.state != "connected":
                continue
            age = self.stats.last_message_age_s()
            if age is not None and age > self.max_silence_s:
                emit(
                    Ev.STREAM_LAG,
                    state="silent",
                    last_message_age_s=age,
                    lag_ms=self.stats.last_lag_ms,
                    detail=f"no message for {age:.1f} s (max_silence_s={self.max_silence_s:g}); reconnecting",
                )
                raise _Silent()


def make_client(api_key: str, api_secret: str, base_url: str | None, timeout_s: float) -> _KrakenFuturesStream:
    ex = _KrakenFuturesStream(
        {
            "apiKey": api_key,
            "secret": api_secret,
            "timeout": int(timeout_s * 1000),
            "verbose": False,
            # ccxt would space every send by krakenfutures' REST rateLimit (600 ms), the subscribes included;
            # a connection sends five frames (Kraken allows 100 per second) and one public REST read
            "enableRateLimit": False,
        }
    )
    ex.verbose = False  # never: ccxt's verbose mode prints every frame, the signed challenge included
    ex.urls["api"].update(api_urls(base_url or LIVE_BASE_URL))  # update, never replace: the dict also holds `ws`
    ex.urls["api"]["ws"] = ws_url(base_url)
    ex.options["maxRetriesOnFailure"] = 0
    return ex


def probe(*, api_key: str, api_secret: str, base_url: str | None, timeout_s: float = 10.0) -> tuple[bool, str]:
    """One connection as the daemon's stream makes it: challenge, signed subscribe to `fills`, its snapshot.
    For `pre_flight_check`; the detail never carries the secret or the signed challenge."""
    url = ws_url(base_url)
    redact = Redactor()
    redact.register(api_key)
    redact.register(api_secret)

    async def attempt() -> tuple[bool, str]:
        ex = make_client(api_key, api_secret, base_url, timeout_s)
        started = time.monotonic()
        try:
            await asyncio.wait_for(ex.watch_my_trades(), timeout_s)
            ms = int((time.monotonic() - started) * 1000)
            return True, f"{url}: challenge signed, subscribed to fills, snapshot in {ms} ms"
        except Exception as exc:
            text = str(exc)
            if AUTH_REFUSED in text:
                return False, f"{url}: the venue refused the signed challenge (auth_refused)"
            signed = ex.options.get("signedChallenge")
            if isinstance(signed, str) and signed:
                redact.register(signed)
            detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
            return False, redact(f"{url}: {detail}")[:240]
        finally:
            with contextlib.suppress(Exception):
                await ex.close()

    return asyncio.run(attempt())


def _seqs(trades: Sequence[Any]) -> list[int]:
    """The `seq` of each fill element (Kraken numbers the account's fills; the simulator contiguously)."""
    out: list[int] = []
    for trade in trades:
        info = trade.get("info") if isinstance(trade, dict) else None
        seq = info.get("seq") if isinstance(info, dict) else None
        if isinstance(seq, int) and not isinstance(seq, bool):
            out.append(seq)
    return out


def _key(venue_symbol: str) -> str:
    try:
        return str(symbols.canonical_key(venue_symbol))
    except ValueError as exc:
        raise MalformedResponse(f"the stream sent a symbol we cannot canonicalise: {venue_symbol!r} ({exc})") from None
