"""Client-side token buckets for Kraken Futures' two REST budgets, fed with Kraken's published costs.

Kraken (rate-limit guide): `/derivatives` 500 cost units per 10 s, `/history` 100 tokens per 10 min; over budget
the venue answers `apiLimitExceeded` (or 429). ccxt's own limiter (a fixed spacing per call) knows none of this,
so `CcxtVenue` asks this module before every private request (ccxt's spacing stays underneath as the floor).

Priority decides who gets the last units when the bucket runs low: each priority may only draw its bucket down
to its reserve, so protective orders and cancels (reserve 0) still go out when reads have used their share, and
history lookups (the largest reserve) give way first. A call that cannot be afforded waits for the refill when the
wait is short (a derivatives bucket refills 50 units a second) and is otherwise deferred: `BudgetDeferred`, a
`VenueError` the daemon's jobs already treat as "try again next cycle". A refusal by the venue itself empties
the local bucket, so what follows defers instead of being refused too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

from exchange.errors import RateLimited
from lifecycle.clock import Clock


class Bucket(StrEnum):
    DERIVATIVES = "derivatives"
    HISTORY = "history"


class Priority(IntEnum):
    PROTECT = 0  # stops, take-profits, reduce-only exits, cancels, stop edits: never held back by a reserve
    TRADE = 1  # new entries
    READ = 2  # the reconciliation snapshot, margin, instruments
    HISTORY = 3  # evidence lookups in order/trigger history: the first to give way


# Kraken's costs, per endpoint (the guide's table). `fills` with `lastFillTime` costs 25, without it 2.
COST_SEND = 10
COST_EDIT = 10
COST_CANCEL = 10
COST_READ = 2  # accounts, openpositions, openorders, fills (no lastFillTime)
COST_FILLS_PAGED = 25
COST_ORDER_STATUS = 1
COST_HISTORY = 1  # history orders, triggers, executions (history bucket)


def cost_account_log(count: int) -> int:
    """The account log's cost in the history bucket grows with `count` (Kraken's guide: 1-25 → 1, 26-50 → 2,
    51-1000 → 3, 1001-5000 → 6, more → 10)."""
    for bound, cost in ((25, 1), (50, 2), (1000, 3), (5000, 6)):
        if count <= bound:
            return cost
    return 10


class BudgetDeferred(RateLimited):
    """The local budget cannot afford this call now without eating into a higher priority's reserve: nothing
    was sent; the caller retries next cycle."""


@dataclass(frozen=True)
class BudgetConfig:
    derivatives_units: int = 500
    derivatives_seconds: float = 10.0
    history_tokens: int = 100
    history_seconds: float = 600.0
    # the share of each bucket a priority must leave for the ones above it
    reserve: tuple[float, float, float, float] = (0.0, 0.1, 0.2, 0.3)
    max_wait_seconds: float = 2.0  # wait this long for a refill at most; longer -> defer (or, PROTECT: send)

    def capacity(self, bucket: Bucket) -> int:
        return self.derivatives_units if bucket is Bucket.DERIVATIVES else self.history_tokens

    def seconds(self, bucket: Bucket) -> float:
        return self.derivatives_seconds if bucket is Bucket.DERIVATIVES else self.history_seconds


@dataclass
class _Level:
    tokens: float
    stamp: datetime


class ClientBudget:
    """Thread-safety comes from the caller: `CcxtVenue` holds its lock around every venue call."""

    def __init__(
        self,
        clock: Clock,
        config: BudgetConfig | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.config = config or BudgetConfig()
        self._clock = clock
        self._sleep = sleep
        now = clock.now()
        self._levels = {b: _Level(float(self.config.capacity(b)), now) for b in Bucket}
        self.spent: dict[Bucket, int] = {b: 0 for b in Bucket}
        self.deferred: dict[Bucket, int] = {b: 0 for b in Bucket}

    def _refill(self, bucket: Bucket) -> _Level:
        level = self._levels[bucket]
        now = self._clock.now()
        elapsed = (now - level.stamp).total_seconds()
        if elapsed > 0:
            rate = self.config.capacity(bucket) / self.config.seconds(bucket)
            level.tokens = min(float(self.config.capacity(bucket)), level.tokens + elapsed * rate)
            level.stamp = now
        return level

    def available(self, bucket: Bucket) -> float:
        return self._refill(bucket).tokens

    def spend(self, bucket: Bucket, cost: int, priority: Priority, what: str) -> None:
        """Take `cost` from `bucket` for a call of `priority`, waiting briefly for a refill if that is enough;
        raise `BudgetDeferred` (nothing spent) otherwise. PROTECT is never deferred: the venue decides."""
        floor = self.config.reserve[priority] * self.config.capacity(bucket)
        level = self._refill(bucket)
        short = cost + floor - level.tokens
        if short > 0:
            rate = self.config.capacity(bucket) / self.config.seconds(bucket)
            if short / rate <= self.config.max_wait_seconds:
                self._sleep(short / rate)
                level = self._refill(bucket)
                short = cost + floor - level.tokens
            if short > 1e-9 and priority is not Priority.PROTECT:
                self.deferred[bucket] += 1
                raise BudgetDeferred(
                    f"{what}: deferred to the next cycle; the {bucket.value} rate budget needs {cost} units and "
                    f"{level.tokens:.0f} are left, {floor:.0f} of them kept for higher priorities"
                )
        level.tokens -= cost  # may go below zero for PROTECT: the venue's answer is the authority
        self.spent[bucket] += cost

    def exhausted(self, bucket: Bucket) -> None:
        """The venue refused a call as over budget: our estimate was too generous, start again from empty."""
        level = self._refill(bucket)
        level.tokens = min(level.tokens, 0.0)


__all__ = [
    "COST_CANCEL",
    "COST_EDIT",
    "COST_FILLS_PAGED",
    "COST_HISTORY",
    "COST_ORDER_STATUS",
    "COST_READ",
    "COST_SEND",
    "Bucket",
    "BudgetConfig",
    "BudgetDeferred",
    "ClientBudget",
    "Priority",
    "cost_account_log",
]
