"""Kraken Futures' REST rate budgets, as Kraken's rate-limit guide documents them (docs.kraken.com, "Futures Rate
Limits"; summarised in /work/shared/reference/kraken-futures.md).

Two buckets per account, each refilling continuously:
- `/derivatives` endpoints: 500 cost units per 10 s; `sendorder`/`editorder`/`cancelorder` 10, `accounts`,
  `openpositions`, `openorders`, `fills` 2, **`fills` with `lastFillTime` 25**, `cancelallorders(after)` 25,
  `orders/status` 1, `batchorder` 9 + the number of instructions, leverage preferences 2 (GET) / 10 (PUT).
  Over budget: HTTP 200 `{"result":"error","error":"apiLimitExceeded"}`.
- `/history` endpoints: 100 tokens per 10 min; orders, triggers, executions 1 each; the account log by `count`
  (1-25: 1, 26-50: 2, 51-1000: 3, 1001-5000: 6, more: 10; default 500). Over budget: HTTP 429 `text/plain` with
  `rate-limit-reset: <seconds>` (the spec's `RateLimited` response, history/_responses.yml).
Public endpoints cost nothing. Time is the simulator's clock, so a budget is exact in simulated time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qs, unquote_plus


class Bucket(StrEnum):
    DERIVATIVES = "derivatives"
    HISTORY = "history"


@dataclass(frozen=True)
class RateLimits:
    """The budgets the simulator enforces. The defaults are Kraken's; tests may relax them (or turn them off)."""

    enabled: bool = True
    derivatives_units: int = 500
    derivatives_seconds: float = 10.0
    history_tokens: int = 100  # Kraken's support article says 60; its API guide says 100
    history_seconds: float = 600.0

    def capacity(self, bucket: Bucket) -> int:
        return self.derivatives_units if bucket is Bucket.DERIVATIVES else self.history_tokens

    def seconds(self, bucket: Bucket) -> float:
        return self.derivatives_seconds if bucket is Bucket.DERIVATIVES else self.history_seconds


DERIVATIVES_COSTS: dict[tuple[str, str], int] = {
    ("POST", "sendorder"): 10,
    ("POST", "editorder"): 10,
    ("POST", "cancelorder"): 10,
    ("GET", "accounts"): 2,
    ("GET", "openpositions"): 2,
    ("GET", "openorders"): 2,
    ("GET", "fills"): 2,  # 25 with lastFillTime: see `cost`
    ("POST", "cancelallorders"): 25,
    ("POST", "cancelallordersafter"): 25,
    ("GET", "orders/status"): 1,
    ("POST", "orders/status"): 1,
    ("GET", "leveragepreferences"): 2,
    ("PUT", "leveragepreferences"): 10,
}
FILLS_WITH_LAST_FILL_TIME = 25
BATCH_BASE = 9
HISTORY_COST = 1  # orders, triggers, executions
ACCOUNT_LOG_DEFAULT_COUNT = 500


def account_log_cost(count: int) -> int:
    if count <= 25:
        return 1
    if count <= 50:
        return 2
    if count <= 1000:
        return 3
    if count <= 5000:
        return 6
    return 10


def _batch_size(body: str) -> int:
    raw = body.removeprefix("json=")
    for text in (raw, unquote_plus(raw)):
        try:
            items = json.loads(text).get("batchOrder")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(items, list):
            return len(items)
    return 0


def cost(method: str, path: str, query: str, body: str = "") -> tuple[Bucket, int] | None:
    """The bucket and cost of one private request, or None for a request no budget counts."""
    params = parse_qs(query, keep_blank_values=True)
    if path.startswith("/derivatives/api/v3/"):
        endpoint = path.removeprefix("/derivatives/api/v3/")
        if endpoint == "fills" and method == "GET":
            last = params.get("lastFillTime", [""])[0]
            return Bucket.DERIVATIVES, FILLS_WITH_LAST_FILL_TIME if last else DERIVATIVES_COSTS[("GET", "fills")]
        if endpoint == "batchorder" and method == "POST":
            return Bucket.DERIVATIVES, BATCH_BASE + _batch_size(body)
        found = DERIVATIVES_COSTS.get((method, endpoint))
        return None if found is None else (Bucket.DERIVATIVES, found)
    if path.startswith("/api/history/") and "/market/" not in path:
        if path.endswith("/account-log"):
            try:
                count = int(params.get("count", [str(ACCOUNT_LOG_DEFAULT_COUNT)])[0] or ACCOUNT_LOG_DEFAULT_COUNT)
            except ValueError:
                count = ACCOUNT_LOG_DEFAULT_COUNT
            return Bucket.HISTORY, account_log_cost(count)
        return Bucket.HISTORY, HISTORY_COST
    return None


class TokenBucket:
    """`capacity` tokens, refilled continuously at `capacity / seconds` per second, starting full."""

    def __init__(self, capacity: int, seconds: float, now: datetime) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / seconds
        self.level = float(capacity)
        self._last = now

    def _refill(self, now: datetime) -> None:
        elapsed = (now - self._last).total_seconds()
        if elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.rate)
            self._last = now

    def take(self, amount: int, now: datetime) -> float | None:
        """Spend `amount` and return None, or spend nothing and return the seconds until it would be there."""
        self._refill(now)
        if self.level + 1e-9 >= amount:
            self.level -= amount
            return None
        return (amount - self.level) / self.rate


class RateBudget:
    """One account's two buckets. `charge` is called by the server for every authenticated private request."""

    def __init__(self, limits: RateLimits, now: datetime) -> None:
        self.limits = limits
        self.buckets = {b: TokenBucket(limits.capacity(b), limits.seconds(b), now) for b in Bucket}
        self.refused: dict[Bucket, int] = {b: 0 for b in Bucket}

    def charge(self, method: str, path: str, query: str, body: str, now: datetime) -> tuple[Bucket, int, int] | None:
        """None when the request may run (or no budget counts it); else (bucket, cost, reset seconds)."""
        found = cost(method, path, query, body)
        if found is None or not self.limits.enabled:
            return None
        bucket, amount = found
        wait = self.buckets[bucket].take(amount, now)
        if wait is None:
            return None
        self.refused[bucket] += 1
        return bucket, amount, max(1, math.ceil(wait))
