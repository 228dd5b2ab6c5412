"""SenderThrottle: one line per sender per minute, every message accounted for."""

from __future__ import annotations

from scheduler.telegram.throttle import SenderThrottle


class Tick:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_sender_per_minute_and_nothing_lost() -> None:
    clock = Tick()
    throttle = SenderThrottle(60, clock)
    a, b = (1, 1), (2, 2)
    assert throttle.seen(a) == [(a, 1)]  # the first message of a window is logged at once
    assert throttle.seen(a) == [] and throttle.seen(a) == []
    assert throttle.seen(b) == [(b, 1)]  # another sender has its own window
    clock.now = 59.9
    assert throttle.seen(a) == [] and throttle.due() == []
    clock.now = 60.0
    assert throttle.due() == [(a, 3)]  # the window passed: what it counted is one line
    clock.now = 61.0
    assert throttle.seen(a) == [(a, 1)]  # a new window opens with a line of its own
    clock.now = 200.0
    assert throttle.due() == []  # b sent nothing after its first message: no empty line
    assert throttle.seen(a) == [(a, 1)]
    throttle.seen(a)
    assert throttle.drain() == [(a, 1)] and throttle.drain() == []
