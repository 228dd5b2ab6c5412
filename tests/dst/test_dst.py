"""The bounded DST run inside `make test` (docs/dst.md): a hundred seeds of the whole daemon in process against the
simulator engine; `make dst` runs more. A failure names its seed and the one line that replays it."""

from __future__ import annotations

import os

import pytest

from dst.harness import DstFailure, World, daemon_step, run_seed

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
