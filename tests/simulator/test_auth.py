"""Authent verification: Kraken's published formula, ccxt's own vectors, and what a wrong key looks like."""

from __future__ import annotations

import base64
import os
from typing import Any

import ccxt
import pytest

from simulator.auth import check_secret, endpoint_path, sign, verify
from simulator.engine import Simulator
from simulator.server import SimulatorServer
from tests.simulator.conftest import make_client, signed

VECTOR_SECRET = "7zxMEF5p/Z8l2p2U7Ghv6x14Af+Fx+92tPgUdVQ748FOIrEoT9bgT+bTRfXc5pz8na+hL/QdrCVG7bh9KpT0eMTm"


@pytest.mark.parametrize(
    ("post_data", "path", "authent"),
    [
        (
            "symbol=PF_XBTUSD&side=buy&size=0.01&orderType=lmt&limitPrice=60000",
            "/api/v3/sendorder",
            "emEseMTYhSDNkam64vTkWcICYdeNSs1gIW+SQy/0h7AUBEzzlKC1Ccpxyhm4EfkRZMm+wqlrj/8/yQPUfiK3/Q==",
        ),
        (
            "",
            "/api/v3/accounts",
            "gF9iu/gh5ia5pNW4Ljh2bVCMh+kDiJcge73pOkpBG+c5eJUmWgHY0zMkMXkvOHb9RnCWKKfzg6lCzyYYI95+Jg==",
        ),
        (
            "count=10",
            "/api/history/v2/orders",
            "plaWS536GTECAOKL6P+1KPfgOqpuPs3rhjZPNNYw1hdN4+CHHXx3fl3usxfWJhp07Vr3Yq/jcQ2limEXj00DMA==",
        ),
    ],
)
def test_published_vectors(post_data: str, path: str, authent: str) -> None:
    assert sign(post_data, path, VECTOR_SECRET) == authent
    url_path = "/derivatives" + path if path.startswith("/api/v3") else path
    assert endpoint_path(url_path) == path
    assert verify(post_data, url_path, VECTOR_SECRET, authent)
    assert not verify(post_data + "&x=1", url_path, VECTOR_SECRET, authent)


def test_wrong_secret_is_authentication_error(server: SimulatorServer, sim: Simulator) -> None:
    other = base64.b64encode(os.urandom(64)).decode()
    client = make_client(server, other)
    client.load_markets()  # public: no auth needed
    with pytest.raises(ccxt.AuthenticationError):
        client.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        client.create_order("BTC/USD:USD", "market", "buy", 0.01)
    with pytest.raises(ccxt.AuthenticationError):
        client.fetch_closed_orders()  # history API: HTTP 401
    assert sim.order_log == []
    assert [r.status for r in sim.request_log[-3:]] == [401, 401, 401]


def test_wrong_key_is_authentication_error(server: SimulatorServer, secret: str) -> None:
    client = make_client(server, secret)
    client.apiKey = "someone-else"
    with pytest.raises(ccxt.AuthenticationError):
        client.fetch_positions()


def test_signature_covers_the_raw_encoded_query(ex: Any, sim: Simulator) -> None:
    weird = "my id/1+x:y&z=w"
    order = ex.create_order("BTC/USD:USD", "limit", "buy", 0.01, 1000, {"clientOrderId": weird})
    assert order["clientOrderId"] == weird
    assert sim.order_log[0].cli_ord_id == weird
    assert "cliOrdId=my%20id%2F1%2Bx%3Ay%26z%3Dw" in sim.request_log[-1].query


def test_nonce_header_is_optional_but_signed_when_present(server: SimulatorServer, secret: str) -> None:
    from urllib.request import Request, urlopen

    path = "/derivatives/api/v3/accounts"
    nonce = "1700000000000"
    headers = {"APIKey": "sim-key", "Nonce": nonce, "Authent": sign("", endpoint_path(path), secret, nonce)}
    with urlopen(Request(server.base_url + path, headers=headers), timeout=5) as resp:  # noqa: S310
        assert resp.status == 200
    assert signed(server, secret, "GET", path)[0] == 200


def test_non_base64_secret_is_refused_up_front(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="base64"):
        check_secret("not-base64!")
    with pytest.raises(ValueError, match="base64"):
        SimulatorServer(sim, api_key="k", api_secret="abcde")


def test_auth_disabled_without_a_secret(sim: Simulator) -> None:
    with SimulatorServer(sim) as srv:
        secret = base64.b64encode(b"x" * 64).decode()
        client = ccxt.krakenfutures({"apiKey": "any", "secret": secret, "enableRateLimit": False})
        client.urls["api"].update(srv.ccxt_urls())
        assert client.fetch_balance()["USD"]["total"] == float(sim.config.starting_usd)
