"""Sizing behaviours no test pinned (found by `make mutate`): every other sizing test uses contract_size 1, the
exact minimum size, and the refusal reasons."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from strategy.sizing import position_size, take_profit_at
from tests.strategy.builders import BTC


def test_the_contract_size_scales_the_loss_per_contract() -> None:
    # 1% of 10 000 = 100 at risk; a 1 000 stop distance on a contract worth 10 units loses 10 000 per contract,
    # so 0.01 contracts; on a contract worth 0.1 units it loses 100 per contract, so 1 contract.
    ten = replace(BTC, contract_size=Decimal(10))
    tenth = replace(BTC, contract_size=Decimal("0.1"))
    assert position_size(Decimal(10000), Decimal(1), Decimal(50000), Decimal(49000), ten).size == Decimal("0.01")
    assert position_size(Decimal(10000), Decimal(1), Decimal(50000), Decimal(49000), tenth).size == Decimal(1)


@given(
    equity=st.decimals(min_value=1, max_value=10**7, places=2),
    risk=st.decimals(min_value="0.01", max_value=5, places=2),
    distance=st.decimals(min_value="0.1", max_value=1000, places=1),
    contract=st.sampled_from([Decimal("0.001"), Decimal("0.1"), Decimal(1), Decimal(10), Decimal(100)]),
)
def test_the_loss_at_the_stop_stays_within_budget_for_any_contract_size(
    equity: Decimal, risk: Decimal, distance: Decimal, contract: Decimal
) -> None:
    inst = replace(BTC, contract_size=contract)
    result = position_size(equity, risk, Decimal(100000), Decimal(100000) - distance, inst)
    budget = equity * risk / 100
    if result.size is not None:
        assert result.size * distance * contract <= budget
        assert (result.size + inst.size_increment) * distance * contract > budget


def test_a_size_of_exactly_the_minimum_is_accepted() -> None:
    # 100 at risk over 1 000: 0.1 contracts, and the venue minimum is 0.1.
    result = position_size(
        Decimal(10000), Decimal(1), Decimal(50000), Decimal(49000), replace(BTC, min_size=Decimal("0.1"))
    )
    assert result.size == Decimal("0.1")


def test_a_size_rounding_to_zero_is_refused_even_when_the_venue_states_no_minimum() -> None:
    result = position_size(
        Decimal(1), Decimal("0.01"), Decimal(50000), Decimal(49000), replace(BTC, min_size=Decimal(0))
    )
    assert result.size is None
    assert "below the minimum" in result.reason


def test_no_equity_is_refused_as_no_equity() -> None:
    assert position_size(Decimal(0), Decimal(1), Decimal(10), Decimal(9), BTC).reason == "no equity"
    assert position_size(Decimal(-5), Decimal(1), Decimal(10), Decimal(9), BTC).reason == "no equity"


def test_a_zero_stop_distance_is_refused_as_such() -> None:
    assert position_size(Decimal(1000), Decimal(1), Decimal(10), Decimal(10), BTC).reason == "stop distance is zero"


def test_the_accepted_reason_states_the_risk_and_the_distance() -> None:
    result = position_size(Decimal(10000), Decimal(1), Decimal(50000), Decimal(49000), BTC)
    assert result.reason == "risk 100.00 over stop distance 1000"


def test_take_profit_is_r_times_the_risk_beyond_the_entry_rounded_toward_it() -> None:
    tick = Decimal("0.5")
    assert take_profit_at(Decimal(100), Decimal(90), Decimal(2), tick, long=True) == Decimal(120)
    assert take_profit_at(Decimal(100), Decimal(110), Decimal(2), tick, long=False) == Decimal(80)
    # 100 + 1.5 * 3.3 = 104.95 -> 104.5 for a long; 100 - 4.95 = 95.05 -> 95.5 for a short (toward the entry)
    assert take_profit_at(Decimal(100), Decimal("96.7"), Decimal("1.5"), tick, long=True) == Decimal("104.5")
    assert take_profit_at(Decimal(100), Decimal("103.3"), Decimal("1.5"), tick, long=False) == Decimal("95.5")


def test_a_short_take_profit_at_or_below_zero_is_none() -> None:
    assert take_profit_at(Decimal(10), Decimal(15), Decimal(2), Decimal("0.5"), long=False) is None  # exactly 0
    assert take_profit_at(Decimal(10), Decimal(16), Decimal(2), Decimal("0.5"), long=False) is None  # below 0
    assert take_profit_at(Decimal(10), Decimal(14), Decimal(2), Decimal("0.5"), long=False) == Decimal(2)
    assert take_profit_at(Decimal(10), Decimal("14.75"), Decimal(2), Decimal("0.5"), long=False) == Decimal("0.5")
