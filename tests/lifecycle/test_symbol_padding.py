"""Spellings copied from a terminal or a config file carry stray whitespace: it is not part of the symbol."""

from __future__ import annotations

import pytest

from lifecycle.errors import MalformedSymbol
from lifecycle.symbols import canonical_key


@pytest.mark.parametrize("spelling", [" PF_XBTUSD", "pf_xbtusd ", "\tBTC/USD:USD\n", "  xbtusd  "])
def test_surrounding_whitespace_maps_to_the_same_key(spelling: str) -> None:
    assert canonical_key(spelling) == "PF_XBTUSD"


@pytest.mark.parametrize("spelling", ["PF_ XBTUSD", "BTC / USD:USD", "XBT USD"])
def test_whitespace_inside_a_symbol_is_malformed(spelling: str) -> None:
    with pytest.raises(MalformedSymbol) as exc:
        canonical_key(spelling)
    assert repr(spelling) in str(exc.value)
