"""Kill switch: trip at the threshold, hysteresis and consecutive calm cycles to release, sticky invariants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.events import Ev, emit
from lifecycle.killswitch import INVARIANT_VIOLATION, MARGIN_CRITICAL, KillSwitch, KillSwitchConfigError

THRESHOLD = Decimal(80)
HYST = Decimal(5)


def switch(release_cycles: int = 2) -> KillSwitch:
    return KillSwitch(THRESHOLD, HYST, release_cycles)


def kinds(ks: KillSwitch, series: list[Decimal]) -> list[str]:
    return [c.kind for u in series for c in ks.observe_margin(u)]


def test_trips_exactly_at_threshold() -> None:
    ks = switch()
    assert ks.observe_margin(Decimal("79.99")) == []
    assert ks.allows_new_entries
    [change] = ks.observe_margin(Decimal(80))
    assert (change.kind, change.reason, change.event) == ("activated", MARGIN_CRITICAL, Ev.KILL_SWITCH_ACTIVATED)
    assert not ks.allows_new_entries
    assert ks.active_reasons == (MARGIN_CRITICAL,)


def test_releases_only_after_consecutive_calm_cycles_below_hysteresis_band() -> None:
    ks = switch(release_cycles=2)
    ks.observe_margin(Decimal(90))
    # 75 is exactly threshold − hysteresis: not below, so not calm.
    assert kinds(ks, [Decimal(79), Decimal(75), Decimal("74.9"), Decimal(76), Decimal("74.9")]) == []
    [release] = ks.observe_margin(Decimal(70))
    assert (release.kind, release.event) == ("released", Ev.KILL_SWITCH_RELEASED)
    assert ks.allows_new_entries


def test_one_calm_cycle_is_not_enough_with_release_cycles_two() -> None:
    ks = switch(release_cycles=2)
    ks.observe_margin(Decimal(85))
    assert ks.observe_margin(Decimal(10)) == []
    assert not ks.allows_new_entries


def test_invariant_violation_is_sticky_and_only_announced_once() -> None:
    ks = switch()
    [change] = ks.trip_invariant("illegal transition OPEN -> CANCELLED for p1")
    assert (change.kind, change.reason) == ("activated", INVARIANT_VIOLATION)
    assert ks.trip_invariant("another") == []
    assert ks.invariant_details == ("illegal transition OPEN -> CANCELLED for p1", "another")
    # Margin coming and going never releases the invariant halt.
    kinds(ks, [Decimal(95), Decimal(1), Decimal(1), Decimal(1)])
    assert ks.active_reasons == (INVARIANT_VIOLATION,)
    assert not ks.allows_new_entries
    # Nor does an auth lock coming and going (the one other reason with its own release).
    ks.observe_auth(True, "key refused")
    ks.observe_auth(False, "probe succeeded")
    assert ks.active_reasons == (INVARIANT_VIOLATION,)
    public_methods = {n for n in dir(ks) if not n.startswith("_") and callable(getattr(ks, n))}
    # nothing can clear an invariant halt: no method but these three exists, and none of them releases it
    assert public_methods == {"observe_margin", "observe_auth", "trip_invariant"}


def test_changes_render_as_declared_events() -> None:
    ks = switch()
    [change] = ks.observe_margin(Decimal(81))
    line = str(emit(change.event, None, **change.fields()))
    assert line.startswith("KILL_SWITCH_ACTIVATED reason=margin_critical detail=")


@pytest.mark.parametrize(
    ("threshold", "hyst", "cycles"),
    [
        (Decimal(0), Decimal(1), 2),
        (Decimal(101), Decimal(1), 2),
        (Decimal(80), Decimal(80), 2),
        (Decimal(80), Decimal(-1), 2),
        (Decimal(80), Decimal(5), 0),
    ],
)
def test_bad_configuration_is_refused_with_guidance(threshold: Decimal, hyst: Decimal, cycles: int) -> None:
    with pytest.raises(KillSwitchConfigError, match="must"):
        KillSwitch(threshold, hyst, cycles)


utilisation = st.decimals(min_value=0, max_value=120, places=2)


@given(series=st.lists(utilisation, max_size=80), cycles=st.integers(1, 4))
def test_no_flapping_at_most_one_activation_per_crossing(series: list[Decimal], cycles: int) -> None:
    ks = KillSwitch(THRESHOLD, HYST, cycles)
    events: list[tuple[int, str]] = []
    for i, u in enumerate(series):
        events.extend((i, c.kind) for c in ks.observe_margin(u))
    # Strict alternation, starting with an activation.
    assert [k for _, k in events] == ["activated", "released"] * (len(events) // 2) + ["activated"] * (len(events) % 2)
    for i, kind in events:
        if kind == "activated":
            assert series[i] >= THRESHOLD
        else:
            # A release is preceded by `cycles` consecutive observations below the band.
            assert all(u < THRESHOLD - HYST for u in series[i - cycles + 1 : i + 1])
            assert i - cycles + 1 >= 0
    # Each re-activation needs a full calm run in between: activations <= 1 + number of calm runs.
    calm_runs, run = 0, 0
    for u in series:
        run = run + 1 if u < THRESHOLD - HYST else 0
        calm_runs += run == cycles
    assert sum(k == "activated" for _, k in events) <= 1 + calm_runs


@given(series=st.lists(st.decimals(min_value=THRESHOLD - HYST, max_value=100, places=2), max_size=80))
def test_noise_inside_the_band_trips_at_most_once(series: list[Decimal]) -> None:
    ks = switch(release_cycles=1)
    assert kinds(ks, series).count("activated") <= 1
    assert "released" not in kinds(ks, series)
