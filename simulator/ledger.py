"""The account log: the venue's own record of every fee, funding payment and realised PnL (Kraken's
`/api/history/v3/account-log`, schema `AccountLogEntry` in futures-rest/history/_schemas.yml).

The engine books here whenever money moves; `payloads.account_log_entry` renders an entry as Kraken's JSON. The
shape and the meaning of each field are in docs/simulator.md ("Account log").
"""

from __future__ import annotations

import random
import uuid
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

TRADE = "futures trade"
LIQUIDATION = "futures liquidation"
FUNDING = "funding rate change"


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    booking_uid: str
    time: datetime
    info: str
    asset: str  # "usd" (cash leg) or the contract in lower case (position leg)
    contract: str  # lower case, e.g. pf_xbtusd
    execution: str | None
    fee: Decimal | None
    realized_pnl: Decimal | None
    realized_funding: Decimal | None
    funding_rate: Decimal | None
    old_balance: Decimal
    new_balance: Decimal
    trade_price: Decimal | None
    mark_price: Decimal | None
    old_average_entry_price: Decimal | None
    new_average_entry_price: Decimal | None

    @property
    def is_cash(self) -> bool:
        return self.asset == "usd"


@dataclass(frozen=True)
class PositionChange:
    """A position before and after one fill (signed sizes; entry prices None when flat)."""

    old_size: Decimal
    new_size: Decimal
    old_entry: Decimal | None
    new_entry: Decimal | None
    realized_pnl: Decimal | None  # None when the fill only opened or increased the position


class AccountLog:
    def __init__(self, seed: int) -> None:
        self._ids = random.Random(f"{seed}:ledger")
        self.entries: list[LedgerEntry] = []
        self.dropped = 0  # entries dropped from the front by `drop_before` (ids keep counting)

    def drop_before(self, cutoff: datetime, *, batch: int = 64) -> None:
        """Drop the entries booked before `cutoff` once at least `batch` are (SimConfig.history_keep_s)."""
        if len(self.entries) < batch or self.entries[batch - 1].time >= cutoff:
            return
        old = bisect_left(self.entries, cutoff, key=lambda e: e.time)
        del self.entries[:old]
        self.dropped += old

    def after(self, after_id: int | None, limit: int) -> list[LedgerEntry]:
        """The first `limit` entries with an id above `after_id` (all when None), in id order. Ids count 1, 2, ...
        from the first entry ever booked, so the start is an index, not a scan (a backtest reads the log once a
        simulated day, a paper daemon every few minutes, over a log that only grows)."""
        start = 0 if after_id is None else max(after_id - self.dropped, 0)
        return self.entries[start : start + limit]

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _book(self, **fields: object) -> None:
        entry = LedgerEntry(id=self.dropped + len(self.entries) + 1, booking_uid=self._uid(), **fields)  # type: ignore[arg-type]
        self.entries.append(entry)

    def trade(
        self,
        *,
        time: datetime,
        symbol: str,
        fill_id: str,
        liquidation: bool,
        fee: Decimal,
        change: PositionChange,
        old_balance: Decimal,
        new_balance: Decimal,
        price: Decimal,
        mark: Decimal,
        funding_rate: Decimal,
    ) -> None:
        """Two entries per fill, as Kraken books them: the cash leg (USD) and the position leg (the contract)."""
        contract = symbol.lower()
        common = {
            "time": time,
            "info": LIQUIDATION if liquidation else TRADE,
            "contract": contract,
            "execution": fill_id,
            "realized_funding": None,
            "funding_rate": funding_rate,
            "trade_price": price,
            "mark_price": mark,
            "old_average_entry_price": change.old_entry,
            "new_average_entry_price": change.new_entry,
        }
        self._book(
            asset="usd",
            fee=fee,
            realized_pnl=change.realized_pnl,
            old_balance=old_balance,
            new_balance=new_balance,
            **common,
        )
        self._book(
            asset=contract,
            fee=None,
            realized_pnl=None,
            old_balance=change.old_size,
            new_balance=change.new_size,
            **common,
        )

    def funding(
        self,
        *,
        time: datetime,
        symbol: str,
        amount: Decimal,
        rate: Decimal,
        mark: Decimal,
        old_balance: Decimal,
        new_balance: Decimal,
    ) -> None:
        self._book(
            time=time,
            info=FUNDING,
            asset="usd",
            contract=symbol.lower(),
            execution=None,
            fee=Decimal(0),
            realized_pnl=None,
            realized_funding=amount,
            funding_rate=rate,
            old_balance=old_balance,
            new_balance=new_balance,
            trade_price=None,
            mark_price=mark,
            old_average_entry_price=None,
            new_average_entry_price=None,
        )
