"""The bounded DST run inside `make test` (docs/dst.md): a hundred seeds of the whole daemon in process against the
simulator engine; `make dst` runs more. A failure names its seed and the one line that replays it."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from dst.harness import DstFailure, World, daemon_step, run_seed
from lifecycle.values import OrderOutcome

SEEDS = int(os.environ.get("DST_SEEDS", "100"))
STEPS = int(os.environ.get("DST_STEPS", "30"))


@pytest.mark.parametrize("block", range(10))
def test_dst_seeds(block: int) -> None:
    for seed in range(block, SEEDS, 10):
        run_seed(seed, STEPS)


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
    for seed in range(100, 110):
        seen.update(run_seed(seed, STEPS).stats)
    for key in ("crashes", "liquidations", "job_failures", "CREATED_IN_FUTURE", "STOP_CHURN_LIMIT"):
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
