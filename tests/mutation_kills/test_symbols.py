"""Symbol behaviours no test pinned (found by `make mutate`): a dated contract's expiry is validated as a real
calendar date in this century (leap days included), and an unknown symbol suggests up to three close keys."""

from __future__ import annotations

import pytest

from lifecycle.errors import MalformedSymbol, UnknownSymbol
from lifecycle.symbols import canonical_key, resolve


@pytest.mark.parametrize("date", ["240229", "280229", "000229"])
def test_a_leap_day_expiry_in_a_leap_year_is_accepted(date: str) -> None:
    assert canonical_key(f"FF_XBTUSD_{date}") == f"FF_XBTUSD_{date}"


@pytest.mark.parametrize("date", ["250229", "260229", "270229"])
def test_a_leap_day_expiry_in_a_common_year_is_refused(date: str) -> None:
    with pytest.raises(MalformedSymbol, match="is not a YYMMDD date"):
        canonical_key(f"FF_XBTUSD_{date}")


def test_an_unknown_symbol_suggests_the_three_closest_keys() -> None:
    known = ["FF_XBTUSD_260925", "FF_XBTUSD_261225", "FI_XBTUSD_261225", "FI_XBTUSD_250925", "FI_XBTUSD_260926"]
    with pytest.raises(UnknownSymbol) as exc:
        resolve("FI_XBTUSD_260925", known)
    assert len(exc.value.close) == 3
    assert set(exc.value.close) <= set(known)
