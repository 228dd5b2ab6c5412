"""The run counters every job shares (CYCLE_SUMMARY, DAEMON_STOPPED). Written only by the serialised jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RunStats:
    """Counters for CYCLE_SUMMARY and the final DAEMON_STOPPED line. Written only by the serialised jobs."""

    cycles: int = 0
    orders_placed: int = 0
    job_failures: int = 0
    started_monotonic: float = field(default_factory=time.monotonic)

    def uptime_s(self) -> int:
        return int(time.monotonic() - self.started_monotonic)
