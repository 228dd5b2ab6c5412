"""dst.shrink's search on a scripted runner (no daemon): it finds the events a failure needs, cuts the schedule where
a shorter one fails first, keeps to its budget, and never trades the finding for another kind."""

from __future__ import annotations

from collections.abc import Callable

from dst.harness import QUIET, DstFailure
from dst.shrink import Runner, Shrunk, shrink

SEED = 5


def _failure(
    step: int, keep: frozenset[int] | None, detail: str = "joint invariant stray_venue_orders=1"
) -> DstFailure:
    schedule = [f"event {i}" if keep is None or i in keep else QUIET for i in range(step + 1)]
    return DstFailure(SEED, step, schedule, detail, keep)


def _runner(fails: Callable[[frozenset[int], int], DstFailure | None]) -> tuple[list[frozenset[int]], Runner]:
    calls: list[frozenset[int]] = []

    def run(seed: int, steps: int, keep: frozenset[int]) -> None:
        assert seed == SEED
        calls.append(keep)
        failure = fails(keep, steps)
        if failure is not None:
            raise failure

    return calls, run


def _shrink(original: DstFailure, fails: Callable[[frozenset[int], int], DstFailure | None], budget: int) -> Shrunk:
    calls, run = _runner(fails)
    shrunk = shrink(original, budget, run)
    assert shrunk.replays == len(calls)
    return shrunk


def test_it_keeps_exactly_the_events_the_failure_needs() -> None:
    # The failure shows at step 19 whenever events 3 and 11 both happen: nothing else is needed.
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(19, keep) if {3, 11} <= keep and steps >= 20 else None

    shrunk = _shrink(_failure(19, None), fails, budget=200)
    assert [step for step, _ in shrunk.events] == [3, 11]
    assert shrunk.events_before == 20
    assert shrunk.failure.replay == f"make dst SEED={SEED} STEPS=20 KEEP=3,11"
    assert "shrunk from 20 to 2 events" in shrunk.summary()


def test_a_shorter_schedule_that_fails_earlier_cuts_the_schedule_there() -> None:
    # Without event 2 the same finding shows at step 8 already (event 6 alone brings it about).
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        if 6 in keep and 2 not in keep and steps >= 9:
            return _failure(8, keep)
        return _failure(steps - 1, keep) if 6 in keep else None

    shrunk = _shrink(_failure(29, None), fails, budget=200)
    assert shrunk.failure.step == 8
    assert [step for step, _ in shrunk.events] == [6]
    assert shrunk.failure.replay == f"make dst SEED={SEED} STEPS=9 KEEP=6"


def test_another_kind_of_finding_does_not_count_as_still_failing() -> None:
    # Leaving event 4 out turns the finding into another one: event 4 stays.
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        if 7 not in keep:
            return None
        if 4 not in keep:
            return _failure(steps - 1, keep, "position 1234abcd5678ef90 unprotected for 2 clean protect cycles")
        return _failure(steps - 1, keep)

    shrunk = _shrink(_failure(9, None), fails, budget=200)
    assert [step for step, _ in shrunk.events] == [4, 7]
    assert shrunk.failure.detail.startswith("joint invariant stray_venue_orders")


def test_the_budget_bounds_the_replays_and_what_it_found_still_replays() -> None:
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(steps - 1, keep) if {0, 1, 2, 3, 4, 5, 6, 7} & keep == {0, 1, 2, 3, 4, 5, 6, 7} else None

    shrunk = _shrink(_failure(39, None), fails, budget=5)
    assert shrunk.replays == 5
    assert {0, 1, 2, 3, 4, 5, 6, 7} <= {step for step, _ in shrunk.events}
    assert len(shrunk.events) < 40


def test_a_failure_already_on_a_kept_subset_shrinks_within_it() -> None:
    # A shrunk line replayed and shrunk again: quiet steps stay quiet.
    keep = frozenset({1, 5, 9, 12})

    def fails(trial: frozenset[int], steps: int) -> DstFailure | None:
        assert trial <= keep
        return _failure(12, trial) if 9 in trial else None

    shrunk = _shrink(_failure(12, keep), fails, budget=50)
    assert [step for step, _ in shrunk.events] == [9]
    assert shrunk.events_before == 4


def test_halving_finds_one_needed_event_among_64_in_13_replays_and_stops_there() -> None:
    # Halves, quarters, ... down to single events: two replays a level (6 levels) and one to confirm that the last
    # event cannot go. The search stops at that local minimum, far inside its budget.
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(63, keep) if 37 in keep else None

    shrunk = _shrink(_failure(63, None), fails, budget=500)
    assert [step for step, _ in shrunk.events] == [37]
    assert shrunk.replays == 13


def test_an_event_that_can_go_only_after_a_later_one_went_is_left_out_on_a_second_pass() -> None:
    # Event 3 may go only once event 7 is gone: one pass over single events removes 7, the next removes 3.
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(9, keep) if 5 in keep and not (3 not in keep and 7 in keep) else None

    shrunk = _shrink(_failure(9, frozenset({3, 5, 7})), fails, budget=50)
    assert [step for step, _ in shrunk.events] == [5]


def test_a_single_needed_event_is_confirmed_in_one_replay() -> None:
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(4, keep) if 4 in keep else None

    shrunk = _shrink(_failure(4, frozenset({4})), fails, budget=50)
    assert shrunk.replays == 1
    assert [step for step, _ in shrunk.events] == [4]  # the failing step's own event is one of the events kept


def test_a_failure_on_quiet_slices_alone_says_so_and_replays_with_keep_none() -> None:
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        return _failure(steps - 1, keep)

    shrunk = _shrink(_failure(5, None), fails, budget=50)
    assert shrunk.events == []
    assert shrunk.failure.replay == f"make dst SEED={SEED} STEPS=6 KEEP=-"
    assert shrunk.summary().endswith("shrunk schedule: no events (quiet slices only)")


def test_steps_past_the_failure_are_not_events_and_later_replays_stop_at_it() -> None:
    # A failure found on a trial carries the trial's whole keep (steps after the failure included) and, when the
    # daemon raised, a "(raised)" entry after its step: neither is an event of the shrunk schedule.
    calls: list[tuple[frozenset[int], int]] = []

    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        calls.append((keep, steps))
        if 2 not in keep:
            return None
        failure = _failure(4 if 6 not in keep else 8, keep, "the daemon raised KeyError: 'x'")
        failure.schedule.append("(raised)")
        return failure

    original = _failure(8, frozenset({2, 4, 6, 8, 9, 11}), "the daemon raised KeyError: 'y'")
    original.schedule.append("(raised)")
    _, run = _runner(fails)
    shrunk = shrink(original, 50, run)
    assert [step for step, _ in shrunk.events] == [2]
    assert shrunk.failure.replay == f"make dst SEED={SEED} STEPS=5 KEEP=2"
    assert shrunk.events_before == 4  # 2, 4, 6, 8: 9 and 11 come after the failure
    cut = next(i for i, (keep, _) in enumerate(calls) if 6 not in keep and 2 in keep)
    assert all(steps == 5 for _, steps in calls[cut + 1 :])


def test_a_cut_keeps_no_event_at_or_after_the_new_failure_step() -> None:
    # Leaving 0 and 1 out makes the finding show at step 4: events 5 and 9 of that trial come after it and are
    # dropped with the cut, so the single needed event 3 is confirmed in two more replays.
    def fails(keep: frozenset[int], steps: int) -> DstFailure | None:
        if 3 not in keep:
            return None
        return _failure(4 if 0 not in keep else 9, keep)

    shrunk = _shrink(_failure(9, frozenset({0, 1, 3, 5, 9})), fails, budget=50)
    assert [step for step, _ in shrunk.events] == [3]
    assert shrunk.replays == 3
