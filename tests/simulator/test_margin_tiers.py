"""Margin tiers from the instrument data (Kraken's `marginLevels`, spec example PF_XBTUSD: six tiers by USD of
position): served to ccxt, and applied band by band to positions and to orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from simulator.engine import Simulator
from tests.simulator.conftest import make_sim

XBT = "PF_XBTUSD"
D = Decimal


def test_instruments_carry_the_tiers_and_ccxt_reads_them(ex: Any) -> None:
    raw = {i["symbol"]: i for i in ex.publicGetInstruments()["instruments"]}
    levels = raw[XBT]["marginLevels"]
    assert [lv["numNonContractUnits"] for lv in levels] == [0, 500000, 2000000, 5000000, 10000000, 30000000]
    assert [lv["initialMargin"] for lv in levels] == [0.02, 0.04, 0.1, 0.2, 0.3, 0.5]
    assert [lv["maintenanceMargin"] for lv in levels] == [0.01, 0.02, 0.05, 0.1, 0.15, 0.25]
    assert raw[XBT]["retailMarginLevels"] == levels
    tiers = ex.fetch_leverage_tiers(["BTC/USD:USD"])["BTC/USD:USD"]
    assert len(tiers) == 6 and tiers[1]["maintenanceMarginRate"] == 0.02


def test_a_position_pays_each_band_at_its_rate() -> None:
    sim = make_sim(starting_usd=D(200_000))
    mark = sim.quote(XBT).mark
    size = (D(1_000_000) / mark).quantize(D("0.0001"))
    sim.open_position_direct(XBT, "long", size, mark)
    notional = size * mark
    account = sim.account()
    assert account.initial_margin == pytest.approx(D(500_000) * D("0.02") + (notional - 500_000) * D("0.04"))
    assert account.maintenance_margin == pytest.approx(D(500_000) * D("0.01") + (notional - 500_000) * D("0.02"))


def test_an_order_into_a_higher_tier_needs_that_tiers_margin() -> None:
    sim: Simulator = make_sim(starting_usd=D(12_000))
    mark = sim.quote(XBT).mark
    # 550k USD at a flat 2 % would need 11k; the band above 500k costs 4 %: 12k needed, plus the taker fee
    size = (D(550_000) / mark).quantize(D("0.0001"))
    refused = sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=size)
    assert refused.status == "insufficientAvailableFunds"
    small = (D(400_000) / mark).quantize(D("0.0001"))
    assert sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=small).status == "placed"


def test_too_many_orders_and_max_position_are_refused_with_krakens_statuses() -> None:
    from dataclasses import replace

    from simulator.engine import SimConfig
    from simulator.instruments import DEFAULT_INSTRUMENTS

    small_cap = replace(DEFAULT_INSTRUMENTS[0], max_position_size=D("0.05"))
    sim = make_sim(max_open_orders=2, instruments=(small_cap, *DEFAULT_INSTRUMENTS[1:]))
    assert isinstance(sim.config, SimConfig)
    bid = sim.quote(XBT).bid
    for i in range(2):
        placed = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=bid - 900)
        assert placed.status == "placed", i
    third = sim.place_order(symbol=XBT, side="buy", order_type="lmt", size=D("0.01"), limit_price=bid - 900)
    assert third.status == "tooManyOrders"
    sim.cancel_all()
    assert sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=D("0.06")).status == "maxPositionViolation"
    assert sim.place_order(symbol=XBT, side="buy", order_type="mkt", size=D("0.05")).status == "placed"
    assert sim.place_order(symbol=XBT, side="sell", order_type="mkt", size=D("0.05")).status == "placed"
