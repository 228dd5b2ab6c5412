"""The margin auction: ranking, the utilisation cap, and a property that the cap is never exceeded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.values import MarginSnapshot
from strategy.auction import AuctionConfigError, Candidate, allocate
from strategy.base import Decision, Verdict

T = datetime(2026, 1, 1, tzinfo=UTC)


def margin(equity: str = "10000", used: str = "1000") -> MarginSnapshot:
    return MarginSnapshot(Decimal(equity), Decimal(equity), Decimal(used), Decimal(0), Decimal(equity), T)


def cand(symbol: str, strength: str, notional: str, verdict: Verdict = Verdict.ENTER_LONG) -> Candidate:
    d = Decision(
        symbol, verdict, "test", entry_price=Decimal(100), size=Decimal(notional) / 100, strength=Decimal(strength)
    )
    return Candidate(d)


def test_admits_by_strength_until_the_cap() -> None:
    # equity 10 000, 1 000 in use (10 %), leverage 5, cap 50 %: each 10 000 notional needs 2 000 (20 pp)
    out = allocate(
        [cand("C", "1", "5000"), cand("A", "3", "10000"), cand("B", "2", "10000")], margin(), Decimal(50), Decimal(5)
    )
    assert [(a.symbol, a.admitted) for a in out] == [("A", True), ("B", True), ("C", False)]
    assert out[1].projected_util_pct == Decimal(50)  # exactly at the cap is admitted
    assert out[2].reason == "projected utilisation 60.00% > cap 50%"


def test_ties_break_by_symbol_and_smaller_ones_can_still_fit() -> None:
    # 10 % in use; A takes 30 pp (→ 40 %), B would reach 70 %, C needs 5 pp (→ 45 %, at the cap)
    out = allocate(
        [cand("B", "1", "15000"), cand("A", "1", "15000"), cand("C", "0.5", "2500")], margin(), Decimal(45), Decimal(5)
    )
    assert [(a.symbol, a.admitted) for a in out] == [("A", True), ("B", False), ("C", True)]


def test_holds_are_never_admitted() -> None:
    hold = Decision("X", Verdict.HOLD, "inside")
    [a] = allocate([Candidate(hold)], margin(), Decimal(50), Decimal(5))
    assert not a.admitted


def test_one_admission_per_symbol() -> None:
    out = allocate([cand("A", "2", "1000"), cand("A", "1", "1000")], margin(), Decimal(90), Decimal(5))
    assert [a.admitted for a in out] == [True, False]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(AuctionConfigError, match="leverage"):
        allocate([], margin(), Decimal(50), Decimal(0))
    with pytest.raises(AuctionConfigError, match="THRESHOLD_MISMATCH"):
        allocate([], margin(), Decimal(150), Decimal(5))


@given(
    notionals=st.lists(
        st.tuples(st.sampled_from("ABCDEFG"), st.decimals(0, 5, places=2), st.decimals(0, 50000, places=2)),
        max_size=12,
    ),
    equity=st.decimals(1, 100000, places=2),
    used_pct=st.decimals(0, 100, places=1),
    cap=st.decimals("0.1", 100, places=1),
    leverage=st.decimals(1, 50, places=0),
)
def test_admitted_never_exceed_the_cap(
    notionals: list[tuple[str, Decimal, Decimal]], equity: Decimal, used_pct: Decimal, cap: Decimal, leverage: Decimal
) -> None:
    m = margin(str(equity), str(equity * used_pct / 100))
    out = allocate([cand(s, str(k), str(n)) for s, k, n in notionals], m, cap, leverage)
    admitted = [a for a in out if a.admitted]
    total = m.initial_margin + sum((a.margin_required for a in admitted), Decimal(0))
    if admitted:
        assert total / m.margin_equity * 100 <= cap
    assert len(out) == len(notionals)
    assert len({a.symbol for a in admitted}) == len(admitted)
    keys = [(-a.decision.strength, a.symbol) for a in out]
    assert keys == sorted(keys)
