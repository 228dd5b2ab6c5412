"""lifecycle.clock.VenueClock: the daemon's clock is the venue's time, which a step of the host clock does not move."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lifecycle.clock import FakeClock, VenueClock, observe_server_time, position_began, window_end
from lifecycle.values import AccountSnapshot
from scheduler.jobs.reconcile import take_snapshot
from tests.daemon.harness import world

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Monotonic:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def test_a_fake_clock_starts_on_new_year_2026_unless_told() -> None:
    # The tests' and DST's dates (and the simulator's history before them) start there.
    assert FakeClock().now() == datetime(2026, 1, 1, tzinfo=UTC)
    assert FakeClock(T0).now() == T0


def test_the_host_clock_until_the_first_anchor() -> None:
    host = FakeClock(T0 + timedelta(hours=1))
    clock = VenueClock(host, Monotonic())
    assert not clock.anchored
    assert clock.now() == T0 + timedelta(hours=1)
    host.advance(5)
    assert clock.now() == T0 + timedelta(hours=1, seconds=5)


def test_anchored_it_follows_the_monotonic_clock_whatever_the_host_does() -> None:
    host, mono = FakeClock(T0 + timedelta(hours=1)), Monotonic()
    clock = VenueClock(host, mono)
    clock.anchor(T0)
    assert clock.anchored
    assert clock.now() == T0
    mono.seconds += 90
    host.set(T0 + timedelta(hours=3))  # stepped forward
    assert clock.now() == T0 + timedelta(seconds=90)
    host.set(T0 - timedelta(hours=2))  # and back
    mono.seconds += 30
    assert clock.now() == T0 + timedelta(seconds=120)
    clock.anchor(T0 + timedelta(seconds=121))  # the next snapshot re-anchors it
    assert clock.now() == T0 + timedelta(seconds=121)
    mono.seconds += 1.5
    assert clock.now() == T0 + timedelta(seconds=122.5)


def test_only_a_venue_clock_follows_the_server_time() -> None:
    fake = FakeClock(T0)
    observe_server_time(fake, T0 + timedelta(hours=1))
    assert fake.now() == T0
    clock = VenueClock(FakeClock(T0 + timedelta(hours=1)), Monotonic())
    observe_server_time(clock, T0)
    assert clock.now() == T0


def test_a_window_ends_now_except_on_an_unanchored_venue_clock_ahead_of_its_rows() -> None:
    newest = T0 - timedelta(minutes=10)
    host = FakeClock(T0 + timedelta(hours=1))  # an hour ahead: the rows would all look old
    clock = VenueClock(host, Monotonic())
    assert window_end(clock, newest) == newest  # no later than the newest row while unanchored
    assert window_end(clock, None) == host.now()
    assert window_end(clock, T0 + timedelta(hours=2)) == host.now()  # a host behind the rows: its own now
    clock.anchor(T0)
    assert window_end(clock, newest) == T0  # anchored: the venue's now
    assert window_end(FakeClock(T0), newest) == T0  # any other clock: its now (tests, tools)


def test_each_snapshot_with_a_server_time_anchors_the_daemons_clock(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        host = FakeClock(w.clock.now() + timedelta(hours=1))  # the host an hour ahead of the venue
        mono = Monotonic()
        w.ctx.clock = clock = VenueClock(host, mono)
        assert clock.now() == host.now()
        snapshot = take_snapshot(w.ctx)
        assert snapshot is not None
        assert clock.now() == snapshot.server_time

        real = w.ctx.venue.snapshot

        def without_server_time(fills_since: datetime | None) -> AccountSnapshot:
            snap = real(fills_since)
            # The accounts answer without its serverTime: the snapshot's `server_time` is then a stale stamp or
            # the host's (exchange.ccxt_venue), nothing to follow.
            return replace(
                snap,
                margin=replace(snap.margin, server_time_known=False),
                server_time=snap.server_time + timedelta(hours=5),
            )

        venue: Any = w.ctx.venue
        venue.snapshot = without_server_time
        mono.seconds += 60
        assert take_snapshot(w.ctx) is not None
        assert clock.now() == snapshot.server_time + timedelta(seconds=60)


def test_a_position_begins_at_its_first_fill_else_at_its_created_time_never_after_now() -> None:
    """`position_began`: the one rule the daemon (`DaemonContext.created_of`) and the tools date positions by."""
    created = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    first_fill = created - timedelta(minutes=7)  # the venue's stamp, whatever the writer's clock said
    assert position_began(created, first_fill, created + timedelta(hours=1)) == first_fill
    assert position_began(created, first_fill, created - timedelta(hours=1)) == first_fill  # now does not clamp it
    assert position_began(created, None, created + timedelta(hours=1)) == created  # no fill yet: created
    assert position_began(created, None, created - timedelta(hours=1)) == created - timedelta(hours=1)  # clamped
