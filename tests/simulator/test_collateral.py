"""Non-USD collateral in the flex account (Kraken's `accounts` example: XBT valued at its mark, counted as
collateral less a haircut), read through the real ccxt client."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from tests.simulator.conftest import API_KEY, START, make_client

XBT = "PF_XBTUSD"


@pytest.fixture
def sim() -> Simulator:
    config = SimConfig(seed=9, history_minutes=10, starting_usd=Decimal(0), collateral={"XBT": Decimal("0.1")})
    return Simulator(config, clock=FakeClock(START))


@pytest.fixture
def ex(sim: Simulator, secret: str) -> Iterator[Any]:
    with SimulatorServer(sim, api_key=API_KEY, api_secret=secret) as srv:
        client = make_client(srv, secret)
        client.load_markets()
        yield client


def test_a_coin_counts_at_its_mark_less_the_haircut(ex: Any, sim: Simulator) -> None:
    mark = sim.quote(XBT).mark
    flex = ex.privateGetAccounts()["accounts"]["flex"]
    xbt = flex["currencies"]["XBT"]
    assert xbt["quantity"] == 0.1 and xbt["value"] == pytest.approx(float(mark) * 0.1)
    assert xbt["collateral"] == pytest.approx(float(mark) * 0.1 * 0.97)
    assert flex["balanceValue"] == pytest.approx(xbt["value"])
    assert flex["collateralValue"] == pytest.approx(xbt["collateral"])
    assert ex.fetch_balance()["BTC"]["total"] == 0.1


def test_a_position_can_be_margined_by_the_coin_alone(ex: Any, sim: Simulator) -> None:
    order = ex.create_order("ETH/USD:USD", "market", "buy", 0.5)
    assert order["status"] == "closed"
    flex = ex.privateGetAccounts()["accounts"]["flex"]
    assert flex["initialMargin"] > 0 and flex["availableMargin"] < flex["collateralValue"]


def test_collateral_needs_an_instrument_to_value_it() -> None:
    with pytest.raises(ValueError, match="PF_<currency>USD"):
        Simulator(SimConfig(seed=1, history_minutes=1, collateral={"NOPE": Decimal(1)}), clock=FakeClock(START))
