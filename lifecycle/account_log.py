"""The venue's account log as the accounting needs it: which entries are fees and funding, and whose they are.

Kraken books every movement of money in its account log (`/api/history/v3/account-log`): per fill a cash leg
(`asset` usd, `fee` paid, `realized_pnl`) and a position leg, per funding period a `funding rate change` cash leg
(`realized_funding`). Realised PnL we compute ourselves from the fill ledger (lifecycle.accounting); from the log we
take only what the ledger cannot know: fees and funding. Pure: the entries come in typed, the charges go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

FUNDING_INFO = "funding rate change"
PAGE = 500  # entries per account-log page (Kraken's default count)


@dataclass(frozen=True)
class AccountLogEntry:
    """One account-log entry, typed at the venue boundary."""

    entry_id: int
    time: datetime
    info: str  # futures trade | futures liquidation | funding rate change | ...
    cash: bool  # the USD leg (fees, PnL and funding are booked on it); position legs carry no money
    symbol: str | None  # canonical key of `contract`
    fill_id: str | None  # `execution`: the fill this entry books
    fee: Decimal | None  # positive = paid
    realized_funding: Decimal | None  # positive = received


@dataclass(frozen=True)
class ChargeRow:
    """A fee or funding entry to store: `amount` is the account's change (a fee of 0.5 is -0.5)."""

    entry_id: int
    kind: str  # fee | funding
    amount: Decimal
    time: datetime
    symbol: str | None
    fill_id: str | None


def charges(entries: list[AccountLogEntry]) -> list[ChargeRow]:
    """The fee and funding rows among `entries`; zero fees and every other kind of entry are left out."""
    out: list[ChargeRow] = []
    for e in entries:
        if not e.cash:
            continue
        if e.info == FUNDING_INFO and e.realized_funding:
            out.append(ChargeRow(e.entry_id, "funding", e.realized_funding, e.time, e.symbol, None))
        elif e.fee:
            out.append(ChargeRow(e.entry_id, "fee", -e.fee, e.time, e.symbol, e.fill_id))
    return out
