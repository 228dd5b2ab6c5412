"""Faults of the simulator's websocket feeds, applied to outgoing messages (`simulator.ws`).

| kind | what the server does to the next matching message |
|---|---|
| `drop` | closes the connection abruptly (no close frame) instead of sending it: the message is lost |
| `stall` | the connection goes silent for `delay` s (heartbeats included); what was held then flows in order |
| `duplicate` | sends it twice |
| `reorder` | holds it for `delay` s, so the messages after it overtake it |
| `delay` | same as `reorder` with the intent "late": every later message overtakes it until it is due |

`feed` matches the message's `feed` (`fills`, `open_orders`, `heartbeat`, ...; snapshots are `fills_snapshot`, ...)
or None for any message; `count` messages are hit (None: every one, for ever).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum


class WsFaultKind(StrEnum):
    DROP = "drop"
    STALL = "stall"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    DELAY = "delay"


@dataclass
class WsFault:
    kind: WsFaultKind
    feed: str | None
    count: int | None
    delay: float


class WsFaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[WsFault] = []
        self.fired: list[tuple[WsFaultKind, str]] = []

    def add(
        self, kind: WsFaultKind | str, feed: str | None = None, *, count: int | None = 1, delay: float = 1.0
    ) -> None:
        if delay < 0 or delay > 60:
            raise ValueError("delay must be within 0..60 s")
        with self._lock:
            self._faults.append(WsFault(WsFaultKind(kind), feed, count, delay))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def draw(self, feed: str) -> WsFault | None:
        """The fault that hits a message of `feed`, if any (one per message; the first added wins)."""
        with self._lock:
            for fault in self._faults:
                if fault.feed is not None and fault.feed != feed:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                self.fired.append((fault.kind, feed))
                return fault
        return None
