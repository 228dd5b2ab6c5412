"""The account log (`/api/history/v3/account-log`) read through the real ccxt client: fees per fill at the
configured rates, realised PnL on the reducing fill, hourly funding, and balances that add up to the account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from lifecycle.clock import FakeClock
from simulator.engine import SimConfig, Simulator
from simulator.server import SimulatorServer
from tests.simulator.conftest import API_KEY, make_client

XBT = "PF_XBTUSD"
BEFORE_THE_HOUR = datetime(2026, 3, 2, 12, 59, 50, tzinfo=UTC)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimConfig(seed=11, history_minutes=5), clock=FakeClock(BEFORE_THE_HOUR))


@pytest.fixture
def ex(sim: Simulator, secret: str) -> Iterator[Any]:
    with SimulatorServer(sim, api_key=API_KEY, api_secret=secret) as srv:
        client = make_client(srv, secret)
        client.load_markets()
        yield client


def _round_trip(ex: Any, sim: Simulator) -> None:
    ex.create_order("BTC/USD:USD", "market", "buy", 0.05)
    sim.advance(20)  # crosses 13:00: the open long pays one hour of funding
    ex.create_order("BTC/USD:USD", "market", "sell", 0.05, None, {"reduceOnly": True})


def test_fees_pnl_and_funding_add_up_to_the_balance(ex: Any, sim: Simulator) -> None:
    _round_trip(ex, sim)
    raw = ex.historyGetAccountLog({"sort": "asc"})
    logs = raw["logs"]
    cash = [e for e in logs if e["asset"] == "usd"]
    fills = {f.fill_id: f for f in sim.all_fills()}

    trades = [e for e in cash if e["info"] == "futures trade"]
    assert {e["execution"] for e in trades} == set(fills)
    for entry in trades:
        fill = fills[entry["execution"]]
        rate = sim.config.taker_fee if fill.fill_type == "taker" else sim.config.maker_fee
        assert Decimal(str(entry["fee"])) == pytest.approx(fill.size * fill.price * rate)
    opening = [e for e in trades if e["realized_pnl"] is None]
    closing = [e for e in trades if e["realized_pnl"] is not None]
    assert opening and closing
    entry_price = Decimal(str(closing[0]["old_average_entry_price"]))
    exit_fills = [fills[e["execution"]] for e in closing]
    expected_pnl = sum((f.size * (f.price - entry_price) for f in exit_fills), Decimal(0))
    assert sum(Decimal(str(e["realized_pnl"])) for e in closing) == pytest.approx(expected_pnl)

    [funding] = [e for e in cash if e["info"] == "funding rate change"]
    assert funding["date"] == "2026-03-02T13:00:00.000Z"
    assert funding["realized_funding"] < 0  # a long pays a positive rate
    assert funding["realized_funding"] == pytest.approx(-0.05 * funding["funding_rate"])

    moved = sum(Decimal(str(e["new_balance"])) - Decimal(str(e["old_balance"])) for e in cash)
    assert moved == pytest.approx(sim.balance - sim.config.starting_usd)
    legs = [e for e in logs if e["asset"] == "pf_xbtusd"]
    assert len(legs) == len(trades) and Decimal(str(legs[-1]["new_balance"])) == 0  # flat again
    assert [e["id"] for e in logs] == list(range(1, len(logs) + 1))


def test_ccxt_ledger_and_funding_history(ex: Any, sim: Simulator) -> None:
    _round_trip(ex, sim)
    ledger = ex.fetch_ledger()
    assert ledger and all(e["currency"] == "USD" for e in ledger)  # ccxt keeps the cash legs only
    assert {e["type"] for e in ledger} == {"trade", "fee"}
    history = ex.fetch_funding_history()
    assert len(history) == 1 and history[0]["symbol"] == "BTC/USD:USD" and history[0]["amount"] < 0


def test_filters_by_kind_id_and_time(ex: Any, sim: Simulator) -> None:
    _round_trip(ex, sim)
    every = ex.historyGetAccountLog({"sort": "asc"})["logs"]
    only_funding = ex.historyGetAccountLog({"info": "funding rate change"})["logs"]
    assert [e["info"] for e in only_funding] == ["funding rate change"]
    assert [e["id"] for e in ex.historyGetAccountLog({"from": 2, "to": 3, "sort": "asc"})["logs"]] == [2, 3]
    newest_first = ex.historyGetAccountLog({"count": 2})["logs"]
    assert [e["id"] for e in newest_first] == [every[-1]["id"], every[-2]["id"]]
    the_hour = int(datetime(2026, 3, 2, 13, tzinfo=UTC).timestamp() * 1000)
    since_funding = ex.historyGetAccountLog({"since": the_hour, "sort": "asc"})
    assert since_funding["logs"][0]["info"] == "funding rate change"
