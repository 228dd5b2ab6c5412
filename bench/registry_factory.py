"""Write a LEGAL registry file fast, for the audit's tests (small) and its benchmark (years of data).

Histories are random walks through `specs.lifecycle.TABLE` of an exact length, hash-chained with
`store.chain`, with fills whose entry minus exit sum is the stored remaining quantity. Rows go in with raw
`sqlite3.executemany` inside one transaction: the ORM would take minutes at the benchmark's size.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import random
import sqlite3
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from specs.lifecycle import ACTIVE_STATES, CREATIONS, EXPOSED_STATES, TABLE, TERMINAL_STATES
from store import chain
from store.db import bind, connect
from store.models import ALL_MODELS, SCHEMA_VERSION, SchemaVersion

# Canonical keys of the instruments the generator trades; active positions get one key each.
BASES = ("XBT", "ETH", "SOL", "XRP", "ADA", "DOT", "LTC", "LINK", "AVAX", "ATOM", "BCH", "DOGE", "UNI", "XLM", "FIL")
SYMBOL_KEYS: tuple[str, ...] = tuple(f"PF_{b}USD" for b in BASES)

BASE_MS = 1_700_000_000_000
_CHUNK = 50_000


@dataclass(frozen=True)
class _Step:
    event: str
    source: str | None
    target: str


def _edges() -> dict[str | None, list[tuple[str, str]]]:
    """state -> [(event, target)], with None standing for 'not yet created'."""
    out: dict[str | None, list[tuple[str, str]]] = {None: [(c.event, c.target) for c in CREATIONS]}
    for (source, event), target in sorted(TABLE.items()):
        out.setdefault(source, []).append((event, target))
    return out


@cache
def _reachable(goals: frozenset[str], max_len: int) -> dict[tuple[str | None, int], bool]:
    """(state, k) -> True when some goal state is reachable from `state` in exactly k steps."""
    edges = _edges()
    states: list[str | None] = [None, *sorted({t for (_, t) in TABLE.items()} | {s for (s, _) in TABLE})]
    reach: dict[tuple[str | None, int], bool] = {(s, 0): s in goals for s in states}
    for k in range(1, max_len + 1):
        for s in states:
            reach[(s, k)] = any(reach.get((t, k - 1), False) for _, t in edges.get(s, []))
    return reach


def _walk(rng: random.Random, length: int, goals: frozenset[str]) -> list[_Step] | None:
    """A random legal history of exactly `length` steps ending in one of `goals`, or None if there is none."""
    reach = _reachable(goals, length)
    if not reach[(None, length)]:
        return None
    edges = _edges()
    state: str | None = None
    steps: list[_Step] = []
    for remaining in range(length, 0, -1):
        options = [(e, t) for e, t in edges[state] if reach.get((t, remaining - 1), False)]
        event, target = rng.choice(options)
        steps.append(_Step(event, state, target))
        state = target
    return steps


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """`parts` positive integers summing to `total` (total >= parts)."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _create_schema(path: Path) -> None:
    # Prefer the real migrations (they add the append-only triggers); fall back to the bare model schema.
    db = connect(path)
    bind(db)
    try:
        migrations = importlib.import_module("store.migrations")
        migrations.ensure_schema(db)
    except ModuleNotFoundError:
        db.create_tables(list(ALL_MODELS))
        SchemaVersion.create(version=SCHEMA_VERSION, applied_ms=BASE_MS)
        db.pragma("user_version", SCHEMA_VERSION, permanent=True)
    db.close()


def build_registry(
    path: Path | str,
    *,
    positions: int,
    transitions_per_position: int,
    fills_per_position: int,
    seed: int,
) -> Path:
    """Write a legal registry at `path` (which must not exist) and return the path.

    Every position has exactly `transitions_per_position` log rows. The most recent positions are active, one
    per symbol key; the rest are terminal. Positions that end holding or having held exposure get
    `fills_per_position` fills (at least 2 when they closed: an entry and an exit).
    """
    p = Path(path)
    if p.exists():
        raise FileExistsError(f"{p} exists; build_registry writes a fresh file")
    if transitions_per_position < 1:
        raise ValueError("transitions_per_position must be >= 1")
    rng = random.Random(seed)
    _create_schema(p)

    active_count = min(len(SYMBOL_KEYS), positions)
    first_active = positions - active_count
    conn = sqlite3.connect(p)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN")
        t_prev = chain.GENESIS
        f_prev = chain.GENESIS
        pos_rows: list[tuple[object, ...]] = []
        tr_rows: list[tuple[object, ...]] = []
        fill_rows: list[tuple[object, ...]] = []
        fill_seq = 0
        for pid in range(1, positions + 1):
            active = pid > first_active
            symbol_key = SYMBOL_KEYS[pid - first_active - 1] if active else rng.choice(SYMBOL_KEYS)
            steps = _pick_history(rng, transitions_per_position, active)
            final = steps[-1].target
            t0 = BASE_MS + pid * 60_000
            uid = hashlib.sha256(f"{seed}:{pid}".encode()).hexdigest()[:16]
            exposed = any(s.target in EXPOSED_STATES for s in steps)
            fills = _fills(rng, fills_per_position, final, exposed)
            remaining = sum(q for q, entry in fills if entry) - sum(q for q, entry in fills if not entry)
            pos_rows.append(
                (
                    pid,
                    uid,
                    symbol_key,
                    symbol_key,
                    rng.choice(("long", "short")),
                    final,
                    "imported" if steps[0].event == "import" else "strategy",
                    max(remaining, 1_000_000),
                    remaining,
                    f"{rng.randint(100, 99999)}.{rng.randint(0, 99)}",
                    None,
                    None,
                    f"SL-{uid}" if final == "PROTECTED" else None,
                    None,
                    t0,
                    t0 + len(steps) * 1000,
                    t0 + len(steps) * 1000 if final in TERMINAL_STATES else None,
                )
            )
            for i, st in enumerate(steps):
                at = t0 + i * 1000
                cause = f"gen:{st.event}"
                h = chain.transition_hash(t_prev, pid, st.event, st.source, st.target, cause, at)
                tr_rows.append((pid, st.event, st.source, st.target, cause, at, t_prev, h))
                t_prev = h
            side_in = "buy" if pos_rows[-1][4] == "long" else "sell"
            side_out = "sell" if side_in == "buy" else "buy"
            for j, (qty, is_entry) in enumerate(fills):
                fill_seq += 1
                fid = f"F{fill_seq:09d}"
                side = side_in if is_entry else side_out
                price = f"{rng.randint(100, 99999)}.{rng.randint(0, 9)}"
                fms = t0 + 500 + j * 10
                h = chain.fill_hash(f_prev, fid, pid, side, is_entry, qty, price, fms)
                fill_rows.append(
                    (fid, pid, f"C-{uid}", f"V-{uid}", side, int(is_entry), qty, price, fms, fms, f_prev, h)
                )
                f_prev = h
            if len(tr_rows) + len(fill_rows) >= _CHUNK:
                _flush(conn, pos_rows, tr_rows, fill_rows)
        _flush(conn, pos_rows, tr_rows, fill_rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return p


def _pick_history(rng: random.Random, length: int, active: bool) -> list[_Step]:
    if active:
        goal_sets = [frozenset({"PROTECTED"}), frozenset({"OPEN", "EXITING"})]
        rng.shuffle(goal_sets)
        goal_sets.append(frozenset(ACTIVE_STATES))
    else:
        # Mostly CLOSED; short histories can also end CANCELLED/REJECTED when the length allows it.
        goal_sets = [frozenset({"CLOSED"}), frozenset(TERMINAL_STATES)]
        if rng.random() < 0.2:
            goal_sets.reverse()
    for goals in goal_sets:
        steps = _walk(rng, length, goals)
        if steps is not None:
            return steps
    raise ValueError(f"no legal history of exactly {length} transitions (active={active})")


def _fills(rng: random.Random, count: int, final: str, exposed: bool) -> list[tuple[int, bool]]:
    """(qty_units, is_entry) pairs consistent with the final state."""
    if not exposed:
        return []
    if final in TERMINAL_STATES:
        n = max(count, 2)
        entries = max(1, n // 2)
        total = rng.randint(max(entries, n - entries), 10**9) * 100
        ins = _split(rng, total, entries)
        outs = _split(rng, total, n - entries)
        return [(q, True) for q in ins] + [(q, False) for q in outs]
    if final in EXPOSED_STATES:
        n = max(count, 1)
        entries = max(1, (n + 1) // 2)
        exits = n - entries
        total_in = rng.randint(n * 2, 10**9) * 100
        total_out = rng.randint(exits, total_in // 2) if exits else 0
        return [(q, True) for q in _split(rng, total_in, entries)] + [
            (q, False) for q in (_split(rng, total_out, exits) if exits else [])
        ]
    return []


def _flush(
    conn: sqlite3.Connection,
    pos_rows: list[tuple[object, ...]],
    tr_rows: list[tuple[object, ...]],
    fill_rows: list[tuple[object, ...]],
) -> None:
    conn.executemany(
        "INSERT INTO position (id, uid, symbol_key, venue_symbol, side, state, origin, target_qty_units,"
        " remaining_qty_units, entry_price, stop_price, take_profit_price, sl_order_id, tp_order_id, created_ms,"
        " updated_ms, closed_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        pos_rows,
    )
    conn.executemany(
        "INSERT INTO transition (position_id, event, source, target, cause, at_ms, prev_hash, row_hash)"
        " VALUES (?,?,?,?,?,?,?,?)",
        tr_rows,
    )
    conn.executemany(
        "INSERT INTO fill (fill_id, position_id, client_order_id, venue_order_id, side, is_entry, qty_units, price,"
        " fill_ms, recorded_ms, prev_hash, row_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        fill_rows,
    )
    pos_rows.clear()
    tr_rows.clear()
    fill_rows.clear()


def schema_fingerprint() -> str:
    """A short hash of the tables and indexes the models create, so a cached registry is rebuilt when they change
    (an index added for the audit must be in the benchmark's file, as a fresh install would have it)."""
    db = connect(":memory:")
    try:
        with db.bind_ctx(list(ALL_MODELS)):
            db.create_tables(list(ALL_MODELS))
        rows = db.execute_sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()  # type: ignore[no-untyped-call]
    finally:
        db.close()
    return hashlib.sha256("\n".join(str(r[0]) for r in rows).encode()).hexdigest()[:8]


def cached_registry(*, positions: int, transitions_per_position: int, fills_per_position: int, seed: int) -> Path:
    """The registry for these parameters, built once and kept under the temp dir (the big one takes a while)."""
    name = f"registry-p{positions}-t{transitions_per_position}-f{fills_per_position}-s{seed}-{schema_fingerprint()}.db"
    path = Path(tempfile.gettempdir()) / "lifecycle-bench" / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    build_registry(
        partial,
        positions=positions,
        transitions_per_position=transitions_per_position,
        fills_per_position=fills_per_position,
        seed=seed,
    )
    partial.rename(path)
    return path
