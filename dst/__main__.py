"""`python -m dst [--seed N | --seeds COUNT [--first N]] [--steps K]` (`make dst`): run DST seeds, print one line
per failure with its replay command, and a summary with the throughput (simulated daemon-hours per CPU-minute)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from dst.harness import DstFailure, run_seed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dst", description="Deterministic simulation testing")
    parser.add_argument("--seed", type=int, help="replay one seed")
    parser.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--steps", type=int, default=40, help="scheduled steps per seed (default 40)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seeds < 1:
        parser.error("--steps and --seeds must be at least 1")
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.process_time()
    failures = 0
    simulated = 0
    for seed in seeds:
        try:
            simulated += run_seed(seed, args.steps).simulated_s
        except DstFailure as exc:
            failures += 1
            print(str(exc), file=sys.stderr)
    cpu_min = max(time.process_time() - started, 1e-9) / 60
    hours = simulated / 3600
    print(
        f"DST {len(seeds) - failures} passed, {failures} failed: {len(seeds)} seeds x {args.steps} steps, "
        f"{hours:.1f} simulated daemon-hours in {cpu_min * 60:.1f} CPU-s"
        f" ({hours / cpu_min:.0f} daemon-hours per CPU-minute)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
