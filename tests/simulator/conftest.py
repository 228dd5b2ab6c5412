"""Fixtures: a small seeded simulator, its HTTP server on an ephemeral port, and a real ccxt client on it."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import ccxt
import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
API_KEY = "sim-key"


def make_sim(seed: int = 7, **overrides: Any) -> Simulator:
    config = SimConfig(seed=seed, history_minutes=overrides.pop("history_minutes", 30), **overrides)
    return Simulator(config, clock=FakeClock(START))


def make_client(server: SimulatorServer, secret: str, *, timeout_ms: int = 3000) -> Any:
    ex = ccxt.krakenfutures({"apiKey": API_KEY, "secret": secret, "enableRateLimit": False, "timeout": timeout_ms})
    ex.urls["api"].update(server.ccxt_urls())
    return ex


@pytest.fixture
def secret() -> str:
    return base64.b64encode(os.urandom(64)).decode()


@pytest.fixture
def sim() -> Simulator:
    return make_sim()


@pytest.fixture
def server(sim: Simulator, secret: str) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim, api_key=API_KEY, api_secret=secret) as srv:
        yield srv


@pytest.fixture
def ex(server: SimulatorServer, secret: str) -> Any:
    client = make_client(server, secret)
    client.load_markets()
    return client


def signed(
    server: SimulatorServer, secret: str, method: str, path: str, query: str = "", body: str = ""
) -> tuple[int, bytes]:
    """A raw signed request (for what ccxt never sends, e.g. POST orders/status), returning (status, body)."""
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    from simulator.auth import endpoint_path, sign

    post_data = body if body and not query else query
    headers = {"APIKey": API_KEY, "Authent": sign(post_data, endpoint_path(path), secret)}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    url = server.base_url + path + (f"?{query}" if query else "")
    req = Request(url, data=body.encode() if body else None, method=method, headers=headers)  # noqa: S310
    try:
        with urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except HTTPError as err:
        return err.code, err.read()
