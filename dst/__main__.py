"""`python -m dst [--seed N | --seeds COUNT [--first N]] [--steps K]` (`make dst`): run DST seeds, print one line
per failure with its replay command, and a summary with the throughput (simulated daemon-hours per CPU-minute)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence

from dst.harness import DstFailure, run_seed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dst", description="Deterministic simulation testing")
    parser.add_argument("--seed", type=int, help="replay one seed")
    parser.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--steps", type=int, default=40, help="scheduled steps per seed (default 40)")
    parser.add_argument("--verbose", action="store_true", help="print the daemon's log lines too")
    parser.add_argument("--stats", action="store_true", help="print what the seeds exercised (faults, crashes...)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seeds < 1:
        parser.error("--steps and --seeds must be at least 1")
    if not args.verbose:
        logging.getLogger().addHandler(logging.NullHandler())  # the daemon's warnings are expected here
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.process_time()
    failures = 0
    simulated = 0
    exercised: Counter[str] = Counter()
    for seed in seeds:
        try:
            result = run_seed(seed, args.steps)
            simulated += result.simulated_s
            exercised.update(result.stats)
            exercised.update({f"finding {k}": n for k, n in result.operator_findings.items()})
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
    if args.stats:
        for key, count in sorted(exercised.items()):
            print(f"  {key}: {count}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
