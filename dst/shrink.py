"""Shrinking a failing DST schedule: leave out as many of its events as possible while it still fails the same way.

A failure at step S is first cut to steps 0..S (nothing after it matters). Then, by delta debugging over the
events that remain (halves, quarters, ... single steps), a set of events is left out (those steps become quiet
slices: time passes, the jobs run) whenever the run without them still fails with the same kind of finding; a run
that fails earlier cuts the schedule there. What is left is usually a handful of events: the story of the bug.

"The same kind" is the finding's text with what varies between runs blanked out (position uids are random, counts
and ids move): an audit summary keeps its field names, a joint invariant its name, an exception its class. Without
that guard a shrink can slide from the bug it was given to another one the shorter schedule happens to reach.

Each trial is a whole replay of the seed up to the failure (a fraction of a second to a few seconds), so the
search stops after `budget` replays with the smallest failing schedule found so far: still a true replay.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dst.harness import QUIET, DstFailure, run_seed

DEFAULT_BUDGET = 120
"""Replays a shrink may spend (about a minute for a 60-step seed on the 2-core machine)."""

_VARYING = re.compile(r"[0-9a-f]{8,}|[0-9a-f-]{20,}|\d+")


def finding_kind(detail: str) -> str:
    """What a finding is about, without what varies between runs: the text before its first list or quote, with
    hex ids, uuids and numbers blanked."""
    head = re.split(r"[\[\(\"']", detail, maxsplit=1)[0]
    return _VARYING.sub("#", head).strip()


@dataclass(frozen=True)
class Shrunk:
    failure: DstFailure  # the smallest failing replay found (its `replay` line reproduces it)
    events_before: int  # events up to the original failure
    replays: int  # seed runs the search spent

    @property
    def events(self) -> list[tuple[int, str]]:
        """(step, description) of the events the shrunk schedule kept."""
        return [
            (step, text)
            for step, text in enumerate(self.failure.schedule[: self.failure.step + 1])
            if not text.startswith(QUIET)
        ]

    def summary(self) -> str:
        """Two lines: the shrunk replay command, then the events it kept."""
        kept = "; ".join(f"{step}: {text}" for step, text in self.events) or "no events (quiet slices only)"
        return (
            f"shrunk from {self.events_before} to {len(self.events)} events in {self.replays} replays:"
            f" {self.failure.replay}\nshrunk schedule: {kept}"
        )


Runner = Callable[[int, int, frozenset[int]], None]
"""(seed, steps, keep) -> returns when the run passes, raises DstFailure when it fails."""


def _default_runner(seed: int, steps: int, keep: frozenset[int]) -> None:
    run_seed(seed, steps, keep)


def shrink(failure: DstFailure, budget: int = DEFAULT_BUDGET, runner: Runner = _default_runner) -> Shrunk:
    """The smallest schedule found, within `budget` replays, that fails like `failure` (see the module doc)."""
    kind = finding_kind(failure.detail)
    best = failure
    steps = failure.step + 1
    full = range(steps) if failure.keep is None else sorted(k for k in failure.keep if k < steps)
    kept = [step for step in full if not failure.schedule[step].startswith(QUIET)]
    before = len(kept)
    replays = 0

    def still_fails(trial: list[int]) -> DstFailure | None:
        nonlocal replays
        replays += 1
        try:
            runner(failure.seed, steps, frozenset(trial))
        except DstFailure as exc:
            return exc if finding_kind(exc.detail) == kind else None
        return None

    chunk = max(len(kept) // 2, 1)
    while kept and replays < budget:
        start, cut_any = 0, False
        while start < len(kept) and replays < budget:
            trial = kept[:start] + kept[start + chunk :]
            found = still_fails(trial)
            if found is None:
                start += chunk
                continue
            best, cut_any = found, True
            steps = found.step + 1
            kept = [step for step in trial if step < steps]
        if chunk == 1 and not cut_any:
            break  # no single event can go: a local minimum
        chunk = max(chunk // 2, 1)
    return Shrunk(best, before, replays)
