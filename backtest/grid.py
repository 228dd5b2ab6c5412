"""Parameter sweeps: the cartesian product of `key=v1,v2` lists, each set run as one whole backtest.

`task` is the one function shipped to a worker, local process or Dask, so every row is reproducible from its
parameters alone: run `tools.backtest` with the same candles and `--grid key=value` for each of them.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from typing import Any, cast

from backtest.params import Params, ParamsError
from backtest.report import build
from backtest.run import Spec, run

METRICS = ("net_pnl", "return_pct", "profit_factor", "average_r", "win_rate_pct", "max_drawdown_pct", "trades")
LOWER_IS_BETTER = frozenset({"max_drawdown_pct"})


class ClusterError(Exception):
    """The Dask cluster could not be reached or used; the message says what to check."""


def parse(items: Sequence[str]) -> list[dict[str, str]]:
    """`["a=1,2", "b=x"]` -> `[{a:1,b:x}, {a:2,b:x}]`; every value is checked against Params (ParamsError)."""
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not choices:
            raise ParamsError(f"--grid {item!r}: expected key=v1,v2,... (e.g. channel_bars=20,40)")
        if name in {a for a, _ in axes}:
            raise ParamsError(f"--grid names {name!r} twice: give all its values in one key=v1,v2")
        for choice in choices:
            Params().with_values({name: choice})  # fails early, before any run
        axes.append((name, choices))
    return [dict(zip([a for a, _ in axes], combo, strict=True)) for combo in itertools.product(*(c for _, c in axes))]


def specs_for(base: Spec, sets: Sequence[dict[str, str]]) -> list[Spec]:
    return [dataclasses.replace(base, params=base.params.with_values(s), registry_path=None) for s in sets]


def task(spec: Spec) -> dict[str, object]:
    """One grid row: the parameters, the report's figures and whether the engine stayed clean."""
    result = run(spec)
    row: dict[str, object] = {"params": spec.params.as_dict()}
    row.update(build(result).as_dict())
    row["problems"] = list(result.problems)
    return row


def run_local(specs: Sequence[Spec], workers: int) -> list[dict[str, object]]:
    if workers <= 1 or len(specs) <= 1:
        return [task(s) for s in specs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(task, specs))


def run_cluster(specs: Sequence[Spec], address: str, timeout_s: float = 10.0) -> list[dict[str, object]]:
    """The same `task` on a Dask distributed cluster (the optional `backtest-cluster` extra)."""
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs dask[distributed]: pip install '.[backtest-cluster]'") from None
    try:
        # distributed ships no type hints: its client is used as Any, and what comes back is checked below.
        client: Any = cast(Any, distributed).Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({exc}): start it or fix --cluster") from None
    try:
        futures = client.map(task, list(specs), pure=False)
        rows = client.gather(futures)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ClusterError(f"the Dask cluster at {address} returned {type(rows).__name__}, not the grid rows")
        return rows
    finally:
        client.close()


def rank(rows: list[dict[str, object]], metric: str) -> list[dict[str, object]]:
    """Best first; a row whose metric is missing (no losing trade for a profit factor) sorts last."""
    sign = 1 if metric in LOWER_IS_BETTER else -1

    def key(row: dict[str, object]) -> tuple[int, Decimal]:
        value = row.get(metric)
        if value is None:
            return (1, Decimal(0))
        return (0, sign * Decimal(str(value)))

    return sorted(rows, key=key)
