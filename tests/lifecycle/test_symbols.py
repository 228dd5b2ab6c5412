"""Canonical symbol keys: fixed spellings, and property tests over generated instruments and junk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.errors import LifecycleError, MalformedSymbol, UnknownSymbol
from lifecycle.symbols import base_of, canonical_key, is_linear, resolve, unified_symbol

XBT_SPELLINGS = ["PF_XBTUSD", "pf_xbtusd", "BTC/USD:USD", "XBT/USD:USD", "btc/usd:usd", "XBTUSD", "BTCUSD", "xbtusd"]


@pytest.mark.parametrize("spelling", XBT_SPELLINGS)
def test_xbt_spellings(spelling: str) -> None:
    assert canonical_key(spelling) == "PF_XBTUSD"


@pytest.mark.parametrize("spelling", ["ETH/USD:USD", "PF_ETHUSD", "ethusd"])
def test_eth_spellings(spelling: str) -> None:
    assert canonical_key(spelling) == "PF_ETHUSD"


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("PI_XBTUSD", "PI_XBTUSD"),
        ("BTC/USD:BTC", "PI_XBTUSD"),
        ("XBT/USD:XBT", "PI_XBTUSD"),
        ("FF_XBTUSD_260925", "FF_XBTUSD_260925"),
        ("BTC/USD:USD-260925", "FF_XBTUSD_260925"),
        ("BTC/USD:BTC-260925", "FI_XBTUSD_260925"),
        ("fi_xbtusd_260925", "FI_XBTUSD_260925"),
    ],
)
def test_other_instrument_kinds_have_their_own_keys(spelling: str, key: str) -> None:
    assert canonical_key(spelling) == key


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "BTC/EUR:EUR", "PF_", "BTC/USD", "garbage", "PF_USD", "FF_XBTUSD", "PF_XBTUSD_260925",
     "FF_XBTUSD_261399", "BTC/USD:ETH", "PF_XBTUSDT", "PX_XBTUSD", "BTC/USD:USD-2609", "ßTCUSD", "123USD"],
)  # fmt: skip
def test_malformed(bad: str) -> None:
    with pytest.raises(MalformedSymbol) as exc:
        canonical_key(bad)
    msg = str(exc.value)
    assert repr(bad) in msg and "Accepted forms" in msg
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, LifecycleError)


def test_unified_and_base() -> None:
    assert unified_symbol("PF_XBTUSD") == "BTC/USD:USD"
    assert unified_symbol("PI_XBTUSD") == "BTC/USD:BTC"
    assert unified_symbol("FF_ETHUSD_260925") == "ETH/USD:USD-260925"
    assert base_of("PF_XBTUSD") == "BTC"
    assert base_of("PF_ETHUSD") == "ETH"
    with pytest.raises(MalformedSymbol, match="canonical form is PF_XBTUSD"):
        unified_symbol("BTC/USD:USD")


def test_resolve() -> None:
    known = {"PF_XBTUSD", "PF_ETHUSD"}
    assert resolve("btc/usd:usd", known) == "PF_XBTUSD"
    with pytest.raises(UnknownSymbol) as exc:
        resolve("PI_XBTUSD", known)
    assert "PI_XBTUSD" in str(exc.value) and "PF_XBTUSD" in str(exc.value)  # names the close match
    with pytest.raises(MalformedSymbol):
        resolve("BTC/USD", known)


BASES = st.one_of(
    st.sampled_from(["XBT", "BTC", "ETH", "SOL", "1INCH", "DOGE", "USDT"]),
    st.from_regex(r"[A-Z][A-Z0-9]{0,9}", fullmatch=True).filter(lambda b: b not in ("USD",)),
)
DATES = st.dates().filter(lambda d: 2000 <= d.year <= 2099).map(lambda d: d.strftime("%y%m%d"))


@st.composite
def keys(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["PF", "PI", "FF", "FI"]))
    base = draw(BASES)
    base = "XBT" if base == "BTC" else base
    suffix = f"_{draw(DATES)}" if kind in ("FF", "FI") else ""
    return f"{kind}_{base}USD{suffix}"


def _flip_case(data: st.DataObject, text: str) -> str:
    flags = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.lower() if f else c for c, f in zip(text, flags, strict=True))


@given(keys())
def test_round_trip_key_unified_key(key: str) -> None:
    assert canonical_key(key) == key
    assert canonical_key(unified_symbol(key)) == key
    assert canonical_key(unified_symbol(key).lower()) == key


@given(keys(), st.data())
def test_every_spelling_maps_to_its_key(key: str, data: st.DataObject) -> None:
    unified = unified_symbol(key)
    base = base_of(key)
    spellings = [key, unified]
    if base == "BTC":
        spellings.append(unified.replace("BTC", "XBT"))
    if key.startswith("PF_"):
        spellings += [f"{base}USD", key[3:]]
    for s in spellings:
        assert canonical_key(_flip_case(data, s)) == key


@given(keys())
def test_inverse_never_equals_linear(key: str) -> None:
    linear = key.replace("PI_", "PF_").replace("FI_", "FF_")
    inverse = key.replace("PF_", "PI_").replace("FF_", "FI_")
    assert canonical_key(linear) != canonical_key(inverse)
    assert canonical_key(unified_symbol(linear)) != canonical_key(unified_symbol(inverse))
    assert is_linear(linear) and not is_linear(inverse)


@given(st.one_of(st.text(max_size=30), st.from_regex(r"[A-Za-z0-9_/:\-]{0,25}", fullmatch=True)))
def test_junk_only_ever_raises_malformed(text: str) -> None:
    try:
        key = canonical_key(text)
    except MalformedSymbol as exc:
        assert repr(text) in str(exc)
        return
    # Anything accepted must be a fixed point and round-trip through ccxt's form.
    assert canonical_key(key) == key
    assert canonical_key(unified_symbol(key)) == key
