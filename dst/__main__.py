"""`python -m dst [--seed N [--keep STEPS] | --seeds COUNT [--first N]] [--steps K] [--shrink N]` (`make dst`): run
DST seeds, print each failure with its replay command and its shrunk schedule (dst.shrink), and a summary with the
throughput (simulated daemon-hours per CPU-minute, shrinking not counted)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence

from dst.harness import DstFailure, parse_keep, run_seed
from dst.shrink import DEFAULT_BUDGET, shrink


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dst", description="Deterministic simulation testing")
    parser.add_argument("--seed", type=int, help="replay one seed")
    parser.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--steps", type=int, default=40, help="scheduled steps per seed (default 40)")
    parser.add_argument(
        "--keep",
        type=_keep,
        default=None,
        metavar="STEPS",
        help="with --seed: only these steps (0,3,7 or - for none) draw their event; the others are quiet slices",
    )
    parser.add_argument(
        "--shrink",
        type=int,
        default=DEFAULT_BUDGET,
        metavar="N",
        help=f"replays to spend shrinking each failure (default {DEFAULT_BUDGET}; 0: do not shrink)",
    )
    parser.add_argument("--verbose", action="store_true", help="print the daemon's log lines too")
    parser.add_argument("--stats", action="store_true", help="print what the seeds exercised (faults, crashes...)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seeds < 1:
        parser.error("--steps and --seeds must be at least 1")
    if args.keep is not None and args.seed is None:
        parser.error("--keep replays one seed: give --seed too")
    if args.shrink < 0:
        parser.error("--shrink must be 0 or more")
    if not args.verbose:
        logging.getLogger().addHandler(logging.NullHandler())  # the daemon's warnings are expected here
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    spent = 0.0
    failures = 0
    simulated = 0
    exercised: Counter[str] = Counter()
    for seed in seeds:
        started = time.process_time()
        failure: DstFailure | None = None
        try:
            result = run_seed(seed, args.steps, args.keep)
            simulated += result.simulated_s
            exercised.update(result.stats)
            exercised.update({f"finding {k}": n for k, n in result.operator_findings.items()})
        except DstFailure as exc:
            failure = exc
        spent += time.process_time() - started  # the throughput counts the seeds' runs, not their shrinking
        if failure is not None:
            failures += 1
            print(str(failure), file=sys.stderr, flush=True)
            if args.shrink:
                print(shrink(failure, args.shrink).summary(), file=sys.stderr, flush=True)
    cpu_min = max(spent, 1e-9) / 60
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


def _keep(text: str) -> frozenset[int]:
    try:
        return parse_keep(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give step numbers from 0, comma-separated (0,3,7), or -") from None


if __name__ == "__main__":
    raise SystemExit(main())
