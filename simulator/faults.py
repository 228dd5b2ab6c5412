"""Injected faults: what can go wrong between the bot and Kraken, switched on by configuration.

Each fault has an endpoint filter, and fires either on the next `count` matching requests or with a seeded
`probability` per matching request (both may be given: at most `count` times, each with that probability).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class FaultKind(StrEnum):
    HTTP_500 = "http_500"  # 500 {"error":"Server Error"}           -> ccxt ExchangeError
    HTTP_502 = "http_502"  # 502 text/html                          -> ExchangeNotAvailable
    HTTP_503 = "http_503"  # 503 text/plain                         -> ExchangeNotAvailable
    TIMEOUT = "timeout"  # sleep past the client's timeout, request not executed -> RequestTimeout
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"  # executed (order exists), response late -> RequestTimeout
    RATE_LIMIT_429 = "rate_limit_429"  # 429 JSON                   -> DDoSProtection
    API_LIMIT_EXCEEDED = "api_limit_exceeded"  # 200 apiLimitExceeded -> RateLimitExceeded
    REJECT = "reject"  # order endpoints answer with `status` (Kraken's own string), nothing executed
    STALE_SNAPSHOT = "stale_snapshot"  # openpositions/openorders served as they were `lag_seconds` ago
    DUPLICATE_FILLS = "duplicate_fills"  # /fills repeats its entries
    REORDER_FILLS = "reorder_fills"  # /fills in a shuffled order
    LOWERCASE_SYMBOL = "lowercase_symbol"  # symbols as pf_xbtusd in positions/orders/fills
    GARBAGE_BODY = "garbage_body"  # 200 with a non-JSON body (after executing) -> ccxt sees no error
    EMPTY_BODY = "empty_body"  # 200 with an empty body (after executing)
    CANCEL_STOP = "cancel_stop"  # engine-side: each advance step may drop an open stop/take-profit silently
    FILL_ON_CANCEL = "fill_on_cancel"  # cancelorder: the order fills just before the cancel lands ("filled")
    NO_SERVER_TIME = "no_server_time"  # the JSON envelope without its serverTime (every real answer carries one)


# Kinds that by default let the request execute before the faulty answer is sent.
EXECUTES_BY_DEFAULT = frozenset({FaultKind.TIMEOUT_AFTER_ACCEPT, FaultKind.GARBAGE_BODY, FaultKind.EMPTY_BODY})
# Kinds that change the response body of an executed request rather than replace the answer.
TRANSFORMS = frozenset(
    {
        FaultKind.STALE_SNAPSHOT,
        FaultKind.DUPLICATE_FILLS,
        FaultKind.REORDER_FILLS,
        FaultKind.LOWERCASE_SYMBOL,
        FaultKind.FILL_ON_CANCEL,
        FaultKind.NO_SERVER_TIME,
    }
)
MAX_DELAY_SECONDS = 30.0


@dataclass
class Fault:
    kind: FaultKind
    endpoint: str | None = None  # None/"*": every endpoint; "sendorder", "orders/status", "/derivatives/api/v3/fills"
    method: str | None = None  # GET/POST/PUT, None for any
    count: int | None = 1  # None: unlimited
    probability: float | None = None
    skip: int = 0  # let this many matching requests through first
    delay: float = 1.0  # timeout kinds: seconds the server sleeps (bounded, interrupted on shutdown)
    status: str = "insufficientAvailableFunds"  # REJECT: Kraken's sendStatus string
    lag_seconds: float = 30.0  # STALE_SNAPSHOT
    execute: bool | None = None  # override EXECUTES_BY_DEFAULT
    fired: int = 0
    seen: int = 0

    @property
    def executes(self) -> bool:
        return self.kind in EXECUTES_BY_DEFAULT if self.execute is None else self.execute

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.endpoint in (None, "*"):
            return True
        assert self.endpoint is not None
        if self.endpoint.startswith("/"):
            return path == self.endpoint
        return path == self.endpoint or path.endswith("/" + self.endpoint)

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count


@dataclass(frozen=True)
class FiredFault:
    time: datetime
    kind: FaultKind
    method: str
    path: str


class FaultPlan:
    """The faults in force. Thread-safe; draws from its own seeded stream so prices are unaffected."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: list[FiredFault] = []

    def add(
        self,
        kind: FaultKind | str,
        endpoint: str | None = None,
        *,
        count: int | None = 1,
        probability: float | None = None,
        **options: object,
    ) -> Fault:
        """Add a fault. `count=None` with a probability fires for ever; see `Fault` for the options."""
        fault_kind = FaultKind(kind)
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError(f"fault probability must be within [0, 1], got {probability}")
        fault = Fault(fault_kind, endpoint, count=count, probability=probability)
        for name, value in options.items():
            if not hasattr(fault, name) or name in {"kind", "fired", "seen"}:
                raise ValueError(f"unknown fault option {name!r}; see simulator.faults.Fault")
            setattr(fault, name, value)
        fault.delay = min(float(fault.delay), MAX_DELAY_SECONDS)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self, kind: FaultKind | str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if kind is not None and f.kind != FaultKind(kind)]

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if not f.exhausted]

    def draw(self, method: str, path: str, now: datetime, kinds: frozenset[FaultKind] | None = None) -> list[Fault]:
        """The faults that fire for this request (consuming their counts)."""
        out: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or (kinds is not None and fault.kind not in kinds):
                    continue
                if not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                out.append(fault)
                self.fired.append(FiredFault(now, fault.kind, method, path))
        return out

    def shuffle(self, items: list[object]) -> None:
        with self._lock:
            self._rng.shuffle(items)
