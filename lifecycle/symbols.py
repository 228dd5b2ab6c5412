"""Canonical symbol keys: the only way symbols are compared anywhere in the project.

Kraken, ccxt and operators spell one instrument many ways (`PF_XBTUSD`, `BTC/USD:USD`, `xbtusd`). Comparing
raw strings let one position hide behind another spelling, so every comparison goes through `canonical_key`.
The key is Kraken's own id (`PF_XBTUSD`) because that is what the venue echoes back in fills and positions.

Instrument kinds are kept apart on purpose: a linear perpetual (`PF_`), an inverse perpetual (`PI_`), a dated
linear future (`FF_..._YYMMDD`) and a dated inverse future (`FI_..._YYMMDD`) are different contracts with
different margin, so they never share a key.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Collection

from lifecycle.errors import MalformedSymbol, UnknownSymbol

QUOTE = "USD"

# Kraken writes bitcoin as XBT, ccxt (and most people) as BTC. The key keeps Kraken's spelling.
_TO_KRAKEN = {"BTC": "XBT"}
_TO_CCXT = {v: k for k, v in _TO_KRAKEN.items()}

_BASE = r"[A-Z0-9]{1,16}"
_KRAKEN_ID = re.compile(rf"(?P<kind>PF|PI|FF|FI)_(?P<base>{_BASE}?)USD(?:_(?P<date>\d{{6}}))?", re.ASCII)
_UNIFIED = re.compile(rf"(?P<base>{_BASE})/(?P<quote>[A-Z0-9]+):(?P<settle>[A-Z0-9]+)(?:-(?P<date>\d{{6}}))?", re.ASCII)
_BARE = re.compile(rf"(?P<base>{_BASE}?)USD", re.ASCII)


def _kraken_base(base: str) -> str:
    return _TO_KRAKEN.get(base, base)


def _check_base(symbol: str, base: str) -> str:
    if not base:
        raise MalformedSymbol(symbol, "no base currency before USD")
    if not any(c.isalpha() for c in base):
        raise MalformedSymbol(symbol, f"base currency {base!r} has no letter")
    if base == QUOTE:
        raise MalformedSymbol(symbol, "base and quote are both USD")
    return _kraken_base(base)


def _check_date(symbol: str, date: str) -> str:
    try:
        dt.date(2000 + int(date[:2]), int(date[2:4]), int(date[4:]))
    except ValueError:
        raise MalformedSymbol(symbol, f"expiry {date!r} is not a YYMMDD date") from None
    return date


def _key(kind: str, base: str, date: str | None) -> str:
    return f"{kind}_{base}USD" + (f"_{date}" if date else "")


def canonical_key(symbol: str) -> str:
    """Return the canonical key of any accepted spelling; raise MalformedSymbol for anything else."""
    if not isinstance(symbol, str):
        raise MalformedSymbol(symbol, "not a string")
    text = symbol.strip()
    if not text:
        raise MalformedSymbol(symbol, "empty")
    if not text.isascii():
        raise MalformedSymbol(symbol, "non-ASCII characters")
    up = text.upper()

    m = _KRAKEN_ID.fullmatch(up)
    if m:
        kind, date = m["kind"], m["date"]
        if kind in ("FF", "FI") and not date:
            raise MalformedSymbol(symbol, f"a dated {kind}_ future needs an expiry suffix _YYMMDD")
        if kind in ("PF", "PI") and date:
            raise MalformedSymbol(symbol, f"a perpetual {kind}_ contract has no expiry")
        return _key(kind, _check_base(symbol, m["base"]), _check_date(symbol, date) if date else None)

    m = _UNIFIED.fullmatch(up)
    if m:
        if m["quote"] != QUOTE:
            raise MalformedSymbol(symbol, f"quote {m['quote']} is not USD")
        base = _check_base(symbol, m["base"])
        settle = _kraken_base(m["settle"])
        if settle == QUOTE:
            linear = True
        elif settle == base:
            linear = False
        else:
            raise MalformedSymbol(symbol, f"settle currency {m['settle']} is neither USD nor the base")
        date = _check_date(symbol, m["date"]) if m["date"] else None
        kind = ("FF" if linear else "FI") if date else ("PF" if linear else "PI")
        return _key(kind, base, date)

    if "/" in up:
        raise MalformedSymbol(symbol, "spot-style pair without a settle currency (futures need BASE/USD:SETTLE)")

    m = _BARE.fullmatch(up)
    if m:
        return _key("PF", _check_base(symbol, m["base"]), None)
    raise MalformedSymbol(symbol, "not a recognised spelling")


def _parts(key: str) -> tuple[str, str, str | None]:
    """(kind, kraken base, date) of a canonical key; raises MalformedSymbol when `key` is not canonical."""
    if canonical_key(key) != key:
        raise MalformedSymbol(key, f"not a canonical key (the canonical form is {canonical_key(key)})")
    m = _KRAKEN_ID.fullmatch(key)
    assert m is not None  # a canonical key always matches the Kraken id form
    return m["kind"], m["base"], m["date"]


def base_of(key: str) -> str:
    """The base currency of a canonical key in ccxt's spelling (`BTC` for `PF_XBTUSD`)."""
    _, base, _ = _parts(key)
    return _TO_CCXT.get(base, base)


def is_linear(key: str) -> bool:
    kind, _, _ = _parts(key)
    return kind in ("PF", "FF")


def unified_symbol(key: str) -> str:
    """ccxt's unified symbol for a canonical key (`PF_XBTUSD` -> `BTC/USD:USD`)."""
    kind, base, date = _parts(key)
    ccxt_base = _TO_CCXT.get(base, base)
    settle = QUOTE if kind in ("PF", "FF") else ccxt_base
    return f"{ccxt_base}/{QUOTE}:{settle}" + (f"-{date}" if date else "")


def resolve(symbol: str, known: Collection[str]) -> str:
    """The canonical key of `symbol`, which must be one of `known` (canonical keys); else UnknownSymbol."""
    key = canonical_key(symbol)
    if key in known:
        return key
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    raise UnknownSymbol(symbol, key, close)
