"""At most one `TELEGRAM_UNAUTHORIZED` line per sender per minute.

A stranger who floods the bot must not flood the log (2,000 messages made 2,004 lines): the first message of a
sender opens a one-minute window and is logged at once (`messages=1`), the rest of that window is only counted,
and the count is logged when the window has passed (`messages=N`), by the next message from anyone or by the
periodic flush. Pure apart from the injected monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 60.0

Sender = tuple[int | None, int | None]  # (chat_id, user_id)


@dataclass
class _Window:
    opened: float
    counted: int = 0


class SenderThrottle:
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[Sender, _Window] = {}

    def seen(self, sender: Sender) -> list[tuple[Sender, int]]:
        """Count one message from `sender`; return the lines to log now, as (sender, messages)."""
        now = self._clock()
        due = self.due(now)
        window = self._windows.get(sender)
        if window is None:
            self._windows[sender] = _Window(now)
            due.append((sender, 1))
        else:
            window.counted += 1
        return due

    def due(self, now: float | None = None) -> list[tuple[Sender, int]]:
        """Close the windows that have passed; their counted messages are the lines to log."""
        at = self._clock() if now is None else now
        out: list[tuple[Sender, int]] = []
        for sender, window in list(self._windows.items()):
            if at - window.opened >= self._window_s:
                del self._windows[sender]
                if window.counted:
                    out.append((sender, window.counted))
        return out

    def drain(self) -> list[tuple[Sender, int]]:
        """Everything still counted (at shutdown), so no message goes unrecorded."""
        out = [(sender, w.counted) for sender, w in self._windows.items() if w.counted]
        self._windows.clear()
        return out
