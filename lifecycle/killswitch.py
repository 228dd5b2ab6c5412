"""The kill switch: a halt on NEW ENTRIES only. Protective orders (stop-loss, take-profit, exits) are never
blocked by it; a halted daemon keeps maintaining them (REDUCING semantics, reliability §18).

Two reasons, each with its own way out:
- `margin_critical` trips at utilisation >= the threshold and releases by itself only after `release_cycles`
  consecutive observations below threshold − hysteresis, so a noisy series near the threshold cannot flap.
- `invariant_violation` is sticky: no method clears it. The operator fixes the cause and restarts (which builds a
  new KillSwitch).

Pure: the daemon feeds observations and emits each returned change as KILL_SWITCH_ACTIVATED / _RELEASED.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from lifecycle.events import Ev

MARGIN_CRITICAL = "margin_critical"
INVARIANT_VIOLATION = "invariant_violation"
AUTH_FAILED = "auth_failed"
"""The venue keeps refusing our API key: entries halt until a private probe succeeds (exchange.breaker)."""


class KillSwitchConfigError(ValueError):
    pass


@dataclass(frozen=True)
class KillSwitchChange:
    kind: Literal["activated", "released"]
    reason: str
    detail: str

    @property
    def event(self) -> Ev:
        return Ev.KILL_SWITCH_ACTIVATED if self.kind == "activated" else Ev.KILL_SWITCH_RELEASED

    def fields(self) -> dict[str, object]:
        return {"reason": self.reason, "detail": self.detail}


class KillSwitch:
    def __init__(self, max_margin_utilization_pct: Decimal, hysteresis_pct: Decimal, release_cycles: int) -> None:
        if not Decimal(0) < max_margin_utilization_pct <= Decimal(100):
            raise KillSwitchConfigError(
                f"max_margin_utilization_pct must be in (0, 100], got {max_margin_utilization_pct}; "
                "set it to the margin utilisation at which new entries must stop"
            )
        if not Decimal(0) <= hysteresis_pct < max_margin_utilization_pct:
            raise KillSwitchConfigError(
                f"hysteresis_pct must be >= 0 and below max_margin_utilization_pct ({max_margin_utilization_pct}), "
                f"got {hysteresis_pct}; 5 is the documented default"
            )
        if release_cycles < 1:
            raise KillSwitchConfigError(f"release_cycles must be >= 1, got {release_cycles}; 2 is the default")
        self.threshold = max_margin_utilization_pct
        self.release_below = max_margin_utilization_pct - hysteresis_pct
        self.release_cycles = release_cycles
        self._margin_active = False
        self._calm_cycles = 0
        self._invariant_details: list[str] = []
        self._auth_active = False

    @property
    def allows_new_entries(self) -> bool:
        return not self.active_reasons

    @property
    def active_reasons(self) -> tuple[str, ...]:
        reasons = []
        if self._invariant_details:
            reasons.append(INVARIANT_VIOLATION)
        if self._margin_active:
            reasons.append(MARGIN_CRITICAL)
        if self._auth_active:
            reasons.append(AUTH_FAILED)
        return tuple(reasons)

    @property
    def invariant_details(self) -> tuple[str, ...]:
        return tuple(self._invariant_details)

    def observe_margin(self, util_pct: Decimal) -> list[KillSwitchChange]:
        if not self._margin_active:
            if util_pct >= self.threshold:
                self._margin_active = True
                self._calm_cycles = 0
                detail = f"margin utilisation {util_pct}% >= {self.threshold}%"
                return [KillSwitchChange("activated", MARGIN_CRITICAL, detail)]
            return []
        if util_pct < self.release_below:
            self._calm_cycles += 1
        else:
            self._calm_cycles = 0  # calm must be consecutive
        if self._calm_cycles >= self.release_cycles:
            self._margin_active = False
            self._calm_cycles = 0
            detail = (
                f"margin utilisation {util_pct}% below {self.release_below}% for {self.release_cycles} "
                "consecutive cycles"
            )
            return [KillSwitchChange("released", MARGIN_CRITICAL, detail)]
        return []

    def observe_auth(self, locked: bool, detail: str) -> list[KillSwitchChange]:
        """`auth_failed` follows the venue breaker's auth lock: active while private calls are locked out."""
        if locked == self._auth_active:
            return []
        self._auth_active = locked
        return [KillSwitchChange("activated" if locked else "released", AUTH_FAILED, detail)]

    def trip_invariant(self, detail: str) -> list[KillSwitchChange]:
        """Sticky until restart. Later violations are remembered but do not re-announce an active halt."""
        first = not self._invariant_details
        self._invariant_details.append(detail)
        return [KillSwitchChange("activated", INVARIANT_VIOLATION, detail)] if first else []
