"""The bounded DST run inside `make test` (docs/dst.md): three hundred seeds of the whole daemon in process against
the simulator engine; `make dst` runs more. A failure names its seed and the one line that replays it, and is shrunk
to the few events that still make it fail."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Any

import pytest

from dst.harness import QUIET, DstFailure, World, daemon_step, parse_keep, run_seed
from dst.shrink import finding_kind, shrink
from lifecycle.values import OrderOutcome

SEEDS = int(os.environ.get("DST_SEEDS", "300"))
STEPS = int(os.environ.get("DST_STEPS", "30"))


@pytest.mark.parametrize("block", range(10))
def test_dst_seeds(block: int) -> None:
    for seed in range(block, SEEDS, 10):
        try:
            run_seed(seed, STEPS)
        except DstFailure as failure:
            raise AssertionError(f"{failure}\n{shrink(failure).summary()}") from failure


def test_a_broken_daemon_is_caught_with_a_replay_line(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # The harness must be able to fail: a close that leaves its orders on the venue breaks joint invariant J1,
    # which the harness reports with the seed's replay command.
    from operations import close

    monkeypatch.setattr(close, "settle_orders", lambda ctx, pos, open_orders=None: 0)
    monkeypatch.setattr("operations.reconciliation.settle_orders", lambda ctx, pos, open_orders=None: 0)
    failures = []
    for seed in range(30):
        try:
            run_seed(seed, STEPS)
        except DstFailure as exc:
            failures.append(exc)
            break
    assert failures, "no seed noticed a close that leaves its orders live"
    assert f"make dst SEED={failures[0].seed}" in str(failures[0])


def test_a_resend_after_a_lost_reply_is_caught_with_a_replay_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # The classic retry bug: an entry whose reply was lost (outcome unknown) is sent again under a new intent instead
    # of being resolved by evidence. The venue took the first one, so the position gets two entry orders; the
    # harness's one-order-per-intent check reports it with the seed's replay command.
    from operations import entry
    from operations.submit import Submitted, submit

    def resending(*args: Any, **kwargs: Any) -> Submitted:
        sent = submit(*args, **kwargs)
        if sent.result.outcome is OrderOutcome.UNKNOWN:
            sent = submit(*args, **kwargs)
        return sent

    monkeypatch.setattr(entry, "submit", resending)
    failure = _first_failure(range(60))
    assert "more than one entry order accepted by the venue" in failure.detail
    assert f"make dst SEED={failure.seed}" in str(failure)
    assert "lost replies" in str(failure) or "5xx" in str(failure)


def test_a_stop_left_to_a_lost_reply_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # Protection that forgets an order whose outcome is unknown (neither relinking the stop the venue took nor
    # placing one) leaves the position unprotected past its grace: J2 or the harness's own protection check fires.
    from lifecycle.protection import AdoptStop
    from operations import protection

    real = protection._execute

    def no_relink(ctx: Any, uid: str, action: Any, outcome: Any, open_orders: Any) -> bool:
        if isinstance(action, AdoptStop):
            return False
        return bool(real(ctx, uid, action, outcome, open_orders))

    monkeypatch.setattr(protection, "_execute", no_relink)
    failure = _first_failure(range(60))
    assert "unprotected" in failure.detail, failure.detail


def _first_failure(seeds: range) -> DstFailure:
    for seed in seeds:
        try:
            run_seed(seed, STEPS)
        except DstFailure as exc:
            return exc
    raise AssertionError(f"no seed in {seeds} noticed the defect")


def test_the_schedules_exercise_faults_crashes_skew_and_liquidations() -> None:
    # What the new schedule parts reach, over a few seeds (python -m dst --stats prints the same for any run).
    seen: Counter[str] = Counter()
    # seed 34: a position created ahead of the venue's clock (CREATED_IN_FUTURE); seed 41: a hand's margin squeeze
    # trips the kill switch and its close releases it. (Seeds chosen again when the margin squeeze joined the event
    # table on 2026-12-05 and every seed drew anew.)
    for seed in (*range(100, 110), 34, 41):
        seen.update(run_seed(seed, 30).stats)
    for key in (
        "crashes",
        "liquidations",
        "job_failures",
        "CREATED_IN_FUTURE",
        "STOP_CHURN_LIMIT",
        "partly_filled_orders",
        "stream_fills_delivered",
        "stream_fills_lost",
        "KILL_SWITCH_ACTIVATED",
        "KILL_SWITCH_RELEASED",
    ):
        assert seen[key] > 0, (key, seen)
    for fault in ("5xx storm", "429s", "lost replies", "failing reads"):
        assert any(k.startswith(f"fault {fault}") for k in seen), (fault, seen)
    assert seen["fault lost replies place_order"] > 0, seen


def test_the_world_restarts_over_the_same_registry(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    w = World(1, tmp_path)
    try:
        daemon_step(w)
        before = w.registry.db.database
        w.restart()
        assert w.registry.db.database == before
        daemon_step(w)
    finally:
        w.close()


def test_a_failure_shrinks_to_fewer_events_and_its_line_replays_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # The close's order settlement switched off (J1, as above): the failing schedule is cut down by leaving events
    # out, and the shrunk replay line, parsed back, fails the same way with quiet slices where the events were.
    from operations import close

    monkeypatch.setattr(close, "settle_orders", lambda ctx, pos, open_orders=None: 0)
    monkeypatch.setattr("operations.reconciliation.settle_orders", lambda ctx, pos, open_orders=None: 0)
    failure = _first_failure(range(30))
    shrunk = shrink(failure, budget=30)
    events_before = sum(not text.startswith(QUIET) for text in failure.schedule[: failure.step + 1])
    assert shrunk.events_before == events_before
    assert 0 < len(shrunk.events) < events_before, shrunk.summary()
    assert shrunk.replays <= 30
    line = shrunk.failure.replay
    assert line.startswith(f"make dst SEED={failure.seed} STEPS={shrunk.failure.step + 1} KEEP="), line
    keep = parse_keep(line.rsplit("KEEP=", 1)[1])
    assert keep == {step for step, _ in shrunk.events}
    with pytest.raises(DstFailure) as replayed:
        run_seed(failure.seed, shrunk.failure.step + 1, keep)
    assert finding_kind(replayed.value.detail) == finding_kind(failure.detail)
    assert replayed.value.schedule == shrunk.failure.schedule[: shrunk.failure.step + 1]
    assert any(text.startswith(QUIET) for text in replayed.value.schedule)


def test_finding_kinds_ignore_what_varies_between_runs() -> None:
    assert finding_kind("joint invariant stray_venue_orders=2: ['3f9a1c2b7d: stop o-1']") == finding_kind(
        "joint invariant stray_venue_orders=1: ['77aa00bb11: take-profit o-9']"
    )
    assert finding_kind("position 3694fd84676b413b unprotected for 2 clean protect cycles") == finding_kind(
        "position b38bf556e7344da6 unprotected for 3 clean protect cycles"
    )
    assert finding_kind("joint invariant stray_venue_orders=1: [...]") != finding_kind(
        "joint invariant unprotected_exposure=1: [...]"
    )
    assert finding_kind("the daemon raised KeyError: 'x'") != finding_kind("the daemon raised TypeError: 'x'")


def test_keep_is_parsed_strictly() -> None:
    assert parse_keep("0,3,7") == {0, 3, 7}
    assert parse_keep("-") == frozenset()
    for bad in ("", "a", "1,,2", "-1"):
        with pytest.raises(ValueError):
            parse_keep(bad)


def test_a_send_retried_after_a_lost_reply_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The classic retry-on-timeout bug below the daemon: an adapter that answers a lost reply by sending the same
    # order again instead of looking it up. The venue refuses the copy (its client order id is taken), so no second
    # order exists and only the count of sends per client order id, as the venue's request log shows them, sees it.
    from dst.faults import FaultyVenue
    from exchange.errors import VenueError
    from lifecycle.values import OrderRequest

    real = FaultyVenue._resolve

    def retrying(self: FaultyVenue, request: OrderRequest, detail: str, *, lookup_fails: bool) -> Any:
        with contextlib.suppress(VenueError):
            self._send(request)
        return real(self, request, detail, lookup_fails=lookup_fails)

    monkeypatch.setattr(FaultyVenue, "_resolve", retrying)
    failure = _first_failure(range(60))
    assert "more than one send of client order ids" in failure.detail, failure.detail
    assert failure.replay in str(failure)


def test_a_stream_whose_fill_ids_differ_from_rests_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # The order stream spelling a fill's id otherwise than REST does (here upper case: the websocket feed and the
    # REST fills endpoint are parsed by different code): the one fills door cannot see that the two are one fill,
    # books it twice, and a seed that runs the stream reports it.
    import dataclasses

    from operations import fills
    from scheduler import stream_hook

    def respelled(ctx: Any, batch: Any, *, source: str = "fills") -> fills.IngestResult:
        return fills.ingest(ctx, [dataclasses.replace(f, fill_id=f.fill_id.upper()) for f in batch], source=source)

    monkeypatch.setattr(stream_hook, "ingest", respelled)
    failure = _first_failure(range(60))
    assert World.stream_enabled(failure.seed), failure
