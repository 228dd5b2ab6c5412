"""Escalation: the runbook's warning and critical thresholds, evaluated over the history of reconciliation reports.

The rules are data in `specs.reconciliation.ISSUE_CLASSES`; this module only knows how to evaluate each rule
kind. Pure: the daemon feeds each complete report with its time and emits `Ev.ESCALATION` for every new
critical hit of a field with `escalates=True`, then pauses new entries.

Conventions (tested at their boundaries):
- A window of `minutes` ending at `now` includes a sample exactly `minutes` old.
- Incomplete reports are not samples: they neither count nor break a run of consecutive cycles.
- `dominates` needs domination for MORE than `minutes`: the last sample strictly older than the window and
  every sample since must dominate.
- `repeated_restarts` looks at the first sample after each restart; those values survive restarts only if the
  daemon persists `restart_firsts` and passes them back in.
- Entry pause is sticky for the life of this object: a critical hit pages an operator, who restarts after
  investigating (runbook "Escalation criteria").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

from specs.reconciliation import ALL_CLASSES, IssueClass, Rule

Level = Literal["ok", "warning", "critical"]
PAUSE_ACTION = "pause_new_entries"
_KEEP_RESTARTS = 20
_KEEP_SAMPLES = 1000


@dataclass(frozen=True)
class Sample:
    at: datetime
    values: Mapping[str, int]

    def get(self, field: str) -> int:
        return int(self.values.get(field, 0))


@dataclass(frozen=True)
class CriticalHit:
    field: str
    rule: str
    detail: str
    action: str = PAUSE_ACTION

    def fields(self) -> dict[str, object]:
        """The fields of `Ev.ESCALATION`."""
        return {"field": self.field, "rule": self.rule, "detail": self.detail, "action": self.action}


@dataclass(frozen=True)
class Evaluation:
    levels: Mapping[str, Level]
    critical_hits: tuple[CriticalHit, ...]  # escalating fields critical now
    new_critical_hits: tuple[CriticalHit, ...]  # ... that were not critical at the previous evaluation
    entries_paused: bool

    @property
    def level(self) -> Level:
        """The worst level over all fields, for the RECONCILIATION_REPORT `level` field."""
        values = set(self.levels.values())
        return "critical" if "critical" in values else "warning" if "warning" in values else "ok"


def _strictly_rising(values: Sequence[int]) -> bool:
    return all(a < b for a, b in pairwise(values))


def _since(history: Sequence[Sample], start: datetime) -> Iterator[Sample]:
    """The samples inside a window that starts at `start`, closed there: read lazily, by the kinds that use them."""
    return (s for s in history if s.at >= start)


def evaluate_rule(
    rule: Rule, field: str, history: Sequence[Sample], restart_firsts: Sequence[int], now: datetime
) -> str | None:
    """The detail text when `rule` holds for `field` at `now`, else None."""
    if not history:
        return None
    window_start = now - timedelta(minutes=rule.minutes)
    if rule.kind == "per_cycle_at_least":
        value = history[-1].get(field)
        return f"{value} this cycle >= {rule.n}" if value >= rule.n else None
    if rule.kind == "window_sum_at_least":
        total = sum(s.get(field) for s in _since(history, window_start))
        return f"{total} in the last {rule.minutes} min >= {rule.n}" if total >= rule.n else None
    if rule.kind == "consecutive_cycles":
        last = history[-rule.n :]
        held = len(last) == rule.n and all(s.get(field) > 0 for s in last)
        return f"non-zero in {rule.n} consecutive cycles" if held else None
    if rule.kind == "sustained_increase":
        values = [s.get(field) for s in _since(history, window_start)]
        held = len(values) >= rule.n and _strictly_rising(values)
        return f"rising every cycle over {rule.minutes} min ({values[0]} -> {values[-1]})" if held else None
    if rule.kind == "repeated_restarts":
        firsts = list(restart_firsts[-rule.n :])
        held = len(firsts) == rule.n and all(v > 0 for v in firsts)
        return f"non-zero in the first cycle after each of the last {rule.n} restarts" if held else None
    if rule.kind == "rising_trend":
        values = [s.get(field) for s in history[-rule.n :]]
        held = len(values) == rule.n and _strictly_rising(values)
        return f"rising over the last {rule.n} cycles {values}" if held else None
    if rule.kind == "dominates":
        older = [i for i, s in enumerate(history) if s.at < window_start]
        if not older:
            return None  # the window is not covered yet
        since = history[older[-1] :]
        held = all(s.get(field) > s.get(rule.other) for s in since)
        return f"above {rule.other} in every cycle for more than {rule.minutes} min" if held else None
    raise ValueError(f"unknown rule kind {rule.kind!r} in specs.reconciliation")


class Escalator:
    def __init__(
        self,
        classes: Sequence[IssueClass] = ALL_CLASSES,
        *,
        restart_firsts: Mapping[str, Sequence[int]] | None = None,
        restarted: bool = True,
    ) -> None:
        """`restart_firsts`: persisted first-cycle values after earlier restarts; `restarted`: whether the first
        sample this object sees is the first cycle after a (re)start."""
        self.classes = tuple(classes)
        self._history: list[Sample] = []
        self._firsts: dict[str, list[int]] = {c.field: list((restart_firsts or {}).get(c.field, ())) for c in classes}
        self._awaiting_first = restarted
        self._critical_before: frozenset[str] = frozenset()
        self._paused = False

    @property
    def restart_firsts(self) -> dict[str, tuple[int, ...]]:
        """Persist this and pass it back after a restart so `repeated_restarts` can see across restarts."""
        return {f: tuple(v) for f, v in self._firsts.items()}

    @property
    def entries_paused(self) -> bool:
        return self._paused

    def mark_restart(self) -> None:
        self._awaiting_first = True

    def observe(self, counters: Mapping[str, int], at: datetime, *, complete: bool = True) -> Evaluation:
        if complete:
            if self._history and at < self._history[-1].at:
                raise ValueError(f"report at {at} is older than the previous one at {self._history[-1].at}")
            self._history.append(Sample(at, dict(counters)))
            if self._awaiting_first:
                for c in self.classes:
                    self._firsts[c.field] = [*self._firsts[c.field], int(counters.get(c.field, 0))][-_KEEP_RESTARTS:]
                self._awaiting_first = False
            self._prune(at)
        return self._evaluate(at)

    def _prune(self, now: datetime) -> None:
        """Forget what no rule can read again: a sample goes once the next one is older than the longest window too
        (`dominates` reads the last sample before its window, however old: a fixed horizon of twice the window lost
        it after a gap of more than an hour between complete reports, found by the `deep` Hypothesis profile), and
        never while the count rules' last n are not otherwise kept; at most _KEEP_SAMPLES in any case."""
        longest = max((max(c.warning.minutes, c.critical.minutes) for c in self.classes), default=0)
        window_start = now - timedelta(minutes=longest)
        keep_n = max((max(c.warning.n, c.critical.n) for c in self.classes), default=1)
        history = self._history
        while len(history) > keep_n and (history[1].at < window_start or len(history) > _KEEP_SAMPLES):
            history.pop(0)

    def _evaluate(self, now: datetime) -> Evaluation:
        levels: dict[str, Level] = {}
        hits: list[CriticalHit] = []
        for c in self.classes:
            firsts = self._firsts[c.field]
            critical = evaluate_rule(c.critical, c.field, self._history, firsts, now)
            if critical is not None:
                levels[c.field] = "critical"
                if c.escalates:
                    hits.append(CriticalHit(c.field, c.critical.kind, f"{c.field}: {critical}"))
            elif evaluate_rule(c.warning, c.field, self._history, firsts, now) is not None:
                levels[c.field] = "warning"
            else:
                levels[c.field] = "ok"
        new = tuple(h for h in hits if h.field not in self._critical_before)
        self._critical_before = frozenset(h.field for h in hits)
        self._paused = self._paused or bool(hits)
        return Evaluation(levels, tuple(hits), new, self._paused)
