"""The simulator's websocket feeds, read by the real `ccxt.pro.krakenfutures` client (no stub on either side)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
import pytest

from exchange.ccxt_venue import api_urls
from exchange.stream import _KrakenFuturesStream, probe, ws_url
from simulator.server import SimulatorServer
from simulator.ws import sign_challenge
from tests.stream.conftest import API_KEY, API_SECRET, XBT, market

T = TypeVar("T")


def client(srv: SimulatorServer, key: str = API_KEY, secret: str = API_SECRET) -> _KrakenFuturesStream:
    ex = _KrakenFuturesStream({"apiKey": key, "secret": secret, "timeout": 5000})
    ex.urls["api"].update(api_urls(srv.base_url))
    ex.urls["api"]["ws"] = ws_url(srv.base_url)
    return ex


async def within(aw: Awaitable[T], seconds: float = 5.0) -> T:
    return await asyncio.wait_for(aw, seconds)


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_ws_url_is_derived_from_the_base_url() -> None:
    assert ws_url("https://futures.kraken.com") == "wss://futures.kraken.com/ws/v1"
    assert ws_url("https://demo-futures.kraken.com/") == "wss://demo-futures.kraken.com/ws/v1"
    assert ws_url("http://127.0.0.1:8765") == "ws://127.0.0.1:8765/ws/v1"
    assert ws_url(None) == "wss://futures.kraken.com/ws/v1"
    with pytest.raises(ValueError):
        ws_url("ftp://x")


def test_signed_challenge_matches_krakens_published_example() -> None:
    secret = "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"
    want = "4JEpF3ix66GA2B+ooK128Ift4XQVtc137N9yeg4Kqsn9PI0Kpzbysl9M1IeCEdjg0zl00wkVqcsnG4bmnlMb3A=="
    assert sign_challenge("c100b894-1729-464d-ace1-52dbce11db42", secret) == want


def test_challenge_then_fills_snapshot_then_deltas_with_client_order_ids(server: SimulatorServer) -> None:
    sim = server.sim
    before = market(sim, coid="before-1")

    async def scenario() -> None:
        ex = client(server)
        try:
            snapshot = await within(ex.watch_my_trades())
            assert [t["id"] for t in snapshot] == [before]
            assert "cli_ord_id" not in snapshot[0]["info"]  # Kraken leaves it out of the snapshot
            assert len(server.ws.challenges_issued) == 1  # the subscribe was signed over the challenge we issued
            after = await asyncio.to_thread(market, sim, "sell", "0.01", "after-1")
            delta = await within(ex.watch_my_trades())
            assert [(t["id"], t["info"]["cli_ord_id"], t["side"]) for t in delta] == [(after, "after-1", "sell")]
        finally:
            await ex.close()

    run(scenario())
    assert server.ws.auth_refused == 0


def test_order_updates_placed_then_cancelled(server: SimulatorServer) -> None:
    sim = server.sim
    out = sim.place_order(
        symbol=XBT, side="buy", order_type="lmt", size=Decimal("0.01"), limit_price=Decimal(1000), cli_ord_id="rest-1"
    )
    assert out.order is not None
    resting = out.order.order_id

    async def scenario() -> None:
        ex = client(server)
        try:
            snap = await within(ex.watch_orders())
            assert [(o["id"], o["price"]) for o in snap] == [(resting, 1000)]
            await asyncio.to_thread(sim.cancel_order, resting)
            update = await within(ex.watch_orders())
            assert [(o["id"], o["status"], o["info"]["reason"]) for o in update] == [
                (resting, "canceled", "cancelled_by_user")
            ]
            stop = await asyncio.to_thread(
                lambda: sim.place_order(
                    symbol=XBT, side="sell", order_type="stp", size=Decimal("0.01"), stop_price=Decimal(1000)
                )
            )
            assert stop.order is not None
            placed = await within(ex.watch_orders())
            assert [(o["id"], o["type"], o["triggerPrice"]) for o in placed] == [(stop.order.order_id, "stop", 1000)]
        finally:
            await ex.close()

    run(scenario())


def test_heartbeats_and_ping_frames(server: SimulatorServer) -> None:
    async def scenario() -> None:
        ex = client(server)
        ex.streaming["keepAlive"] = 100  # ccxt sends a ping frame every 0.1 s; the server must answer each
        url = ws_url(server.base_url)
        try:
            beats = []
            for _ in range(3):
                beats.append(await within(ex.watch(url, "heartbeat", {"event": "subscribe", "feed": "heartbeat"})))
            assert all(b["feed"] == "heartbeat" and isinstance(b["time"], int) for b in beats)
            await asyncio.sleep(0.35)
            assert ex.clients[url].lastPong is not None  # pongs came back for ccxt's pings
            assert not ex.clients[url].closed()  # and the keepalive did not time the connection out
        finally:
            await ex.close()

    run(scenario())


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_a_wrong_key_or_secret_is_refused(server: SimulatorServer, wrong: str) -> None:
    other = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ="
    key, secret = (API_KEY, other) if wrong == "secret" else ("someone-else", API_SECRET)

    async def scenario() -> None:
        ex = client(server, key, secret)
        try:
            with pytest.raises(ccxt.ExchangeError, match="Failed to subscribe to authenticated feed"):
                await within(ex.watch_my_trades())
        finally:
            await ex.close()

    run(scenario())
    assert server.ws.auth_refused == 1


def test_faults_duplicate_and_drop_act_on_the_wire(server: SimulatorServer) -> None:
    sim = server.sim
    frames: list[str] = []  # fill ids of every `fills` delta frame the client read

    def count(message: Any) -> None:
        if isinstance(message, dict) and message.get("feed") == "fills" and "event" not in message:
            frames.extend(str(f["fill_id"]) for f in message["fills"])

    async def scenario() -> None:
        ex = client(server)
        ex.on_any_message = count
        try:
            await within(ex.watch_my_trades())
            server.ws.faults.add("duplicate", "fills")
            fid = await asyncio.to_thread(market, sim)
            await within(ex.watch_my_trades())
            for _ in range(100):
                if frames.count(fid) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert frames.count(fid) == 2  # the same delta, twice on the wire
        finally:
            await ex.close()
        ex = client(server)
        try:
            await within(ex.watch_my_trades())
            server.ws.faults.add("drop", "fills")
            await asyncio.to_thread(market, sim)
            with pytest.raises(ccxt.NetworkError):
                await within(ex.watch_my_trades())
        finally:
            await ex.close()

    run(scenario())
    assert [k.value for k, _ in server.ws.faults.fired] == ["duplicate", "drop"]


def test_server_stop_ends_every_connection_thread(server: SimulatorServer) -> None:
    started = threading.Event()

    async def scenario() -> None:
        ex = client(server)
        try:
            await within(ex.watch_my_trades())
            started.set()
            server.ws.drop_all()
            with pytest.raises(ccxt.NetworkError):
                await within(ex.watch_my_trades())
        finally:
            await ex.close()

    run(scenario())
    assert started.is_set()
    assert server.ws.accepted == 1


def test_probe_for_pre_flight_check(server: SimulatorServer) -> None:
    ok, detail = probe(api_key=API_KEY, api_secret=API_SECRET, base_url=server.base_url, timeout_s=5)
    assert ok and "subscribed to fills" in detail
    wrong = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ="
    ok, detail = probe(api_key=API_KEY, api_secret=wrong, base_url=server.base_url, timeout_s=5)
    assert not ok and "auth_refused" in detail and wrong not in detail
    ok, detail = probe(api_key=API_KEY, api_secret=API_SECRET, base_url="http://127.0.0.1:9", timeout_s=2)
    assert not ok and detail.startswith("ws://127.0.0.1:9/ws/v1: ") and API_SECRET not in detail
