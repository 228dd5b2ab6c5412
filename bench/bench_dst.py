"""DST throughput: simulated daemon-hours per CPU-minute (issue #6's target: 1,000), beside the simulator alone.

Prints, in the same run: seeds of the DST harness (every job, the operations layer, the registry on a real SQLite
file, the faults, a crash and restart now and then, the audit and the joint invariants after every step) in
simulated daemon-hours per CPU-minute; the simulator alone advancing the same simulated time with the same
configuration (the venue's own cost: a ceiling no DST run of this harness can pass); the ratio between the two.
CPU time (`time.process_time`), so other users of a shared machine move it less than wall time.
"""

from __future__ import annotations

import logging
import time

from dst.harness import STEP_SECONDS, dst_sim_config, run_seed
from simulator.engine import Simulator

SEEDS = range(3000, 3012)
STEPS = 60
TARGET = 1000.0


def _per_cpu_minute(simulated_s: float, cpu_s: float) -> float:
    return (simulated_s / 3600) / (max(cpu_s, 1e-9) / 60)


def _dst_rate() -> tuple[float, int]:
    started = time.process_time()
    simulated = sum(run_seed(seed, STEPS).simulated_s for seed in SEEDS)
    return _per_cpu_minute(simulated, time.process_time() - started), simulated


def _simulator_rate() -> float:
    started = time.process_time()
    simulated = 0
    for seed in SEEDS:
        sim = Simulator(dst_sim_config(seed))
        for _ in range(STEPS):
            sim.advance(STEP_SECONDS)
            simulated += STEP_SECONDS
    return _per_cpu_minute(simulated, time.process_time() - started)


def run() -> None:
    # The daemon's warnings (injected faults, refused stops) are expected here: not bench output.
    root = logging.getLogger()
    sink = logging.NullHandler()
    root.addHandler(sink)
    try:
        rate, simulated = _dst_rate()
        alone = _simulator_rate()
    finally:
        root.removeHandler(sink)
    print(
        f"   DST, {len(SEEDS)} seeds x {STEPS} steps ({simulated / 3600:.1f} simulated daemon-hours):"
        f" {rate:,.0f} daemon-hours per CPU-minute"
    )
    print(
        f"   the simulator alone over the same simulated time: {alone:,.0f} per CPU-minute;"
        f" DST is {alone / rate:.1f}x slower than its venue"
    )
    met = "MET" if rate >= TARGET else "NOT MET"
    print(f"   goal: >= {TARGET:,.0f} daemon-hours per CPU-minute: {met} ({rate / TARGET:.2f} of it)")
