"""Registry write throughput against raw sqlite3 doing the same writes, in the same run.

transitions/s: one `Registry.apply` (spec check through the machine, state update, chained log row, one
IMMEDIATE transaction) against a raw `sqlite3` UPDATE + INSERT of the same row in its own transaction.
fills/s: one `Registry.record_fill` (idempotency check, chained ledger row, quantity and average price update)
against a raw INSERT + UPDATE, FILLS_PER_POSITION fills per position; the positions and their entry orders are
written before either side is timed (the same rows timed on both sides: the fills). Both sides use the registry's
pragmas (WAL, synchronous=FULL), each on its own file on the same disk, taking turns in blocks.
synchronous: what FULL costs. The same transitions (through `Registry.apply`, then raw), both in WAL on the same disk
in the same run, on one registry as opened (FULL) and one switched to synchronous=NORMAL (which may lose the last
commits on power loss), taking turns in blocks so that both see the same machine load; the figure is the FULL/NORMAL
commit-rate ratio.
`BENCH_REGISTRY_N` (default 1000) sets the operations per figure.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

from lifecycle.clock import FakeClock
from specs.lifecycle import Event
from store import chain
from store.db import PRAGMAS, bind
from store.registry import Registry


def _raw(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    for k, v in PRAGMAS.items():
        con.execute(f"PRAGMA {k} = {v}")
    return con


def _protection_flips(reg: Registry) -> Callable[[int], None]:
    """One protected position; the returned function applies the next `k` transitions to it."""
    bind(reg.db)  # the models follow one database at a time, and the two registries take turns
    pos = reg.import_position(symbol="PF_XBTUSD", side="long", qty=Decimal(1), entry_price=Decimal(100), cause="b")
    reg.set_protection(pos.uid, sl_order_id="sl-bench")
    events = ("protection_confirmed", "protection_lost")

    def flip(k: int) -> None:
        bind(reg.db)
        for i in range(k):
            reg.apply(pos.uid, Event(events[i % 2]), cause="bench")

    return flip


def _raw_transitions(con: sqlite3.Connection, n: int) -> None:
    pid = con.execute("SELECT id FROM position WHERE symbol_key = 'PF_XBTUSD'").fetchone()[0]
    prev = con.execute("SELECT row_hash FROM transition ORDER BY id DESC LIMIT 1").fetchone()[0]
    steps = (("protection_confirmed", "OPEN", "PROTECTED"), ("protection_lost", "PROTECTED", "OPEN"))
    for i in range(n):
        event, source, target = steps[i % 2]
        at = 1_700_000_000_000 + i
        row_hash = chain.transition_hash(prev, pid, event, source, target, "bench", at)
        con.execute("BEGIN IMMEDIATE")
        con.execute("UPDATE position SET state = ?, updated_ms = ?, closed_ms = NULL WHERE id = ?", (target, at, pid))
        con.execute(
            "INSERT INTO transition (position_id, event, source, target, cause, at_ms, prev_hash, row_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (pid, event, source, target, "bench", at, prev, row_hash),
        )
        con.execute("COMMIT")
        prev = row_hash


FILLS_PER_POSITION = 10  # a realistic order: a handful of partial fills per position, not thousands


def _entry_orders(reg: Registry, n: int) -> list[str]:
    """The positions and entry orders `n` fills go to (FILLS_PER_POSITION each): written before the timing starts,
    as the raw side's positions are, so that both sides time the same rows, the fills."""
    coids = []
    for i in range(0, n, FILLS_PER_POSITION):
        pos = reg.open_intent(symbol=f"PF_F{i}USD", side="long", target_qty=Decimal(10), stop_price=None, cause="b")
        order = reg.record_order_intent(pos.uid, purpose="entry", side="buy", order_type="market", qty=Decimal(10))
        coids.append(order.client_order_id)
    return coids


def _registry_fills(reg: Registry, coids: list[str], start: int, n: int) -> None:
    bind(reg.db)
    now = reg.clock.now()
    for i in range(start, start + n):
        reg.record_fill(
            fill_id=f"reg-{i}",
            client_order_id=coids[i // FILLS_PER_POSITION],
            side="buy",
            qty=Decimal(1),
            price=Decimal(2000 + i % 7),
            fill_time=now,
        )


def _raw_fills(con: sqlite3.Connection, start: int, n: int) -> None:
    pids = [r[0] for r in con.execute("SELECT id FROM position WHERE symbol_key LIKE 'PF_F%' ORDER BY id")]
    prev = con.execute("SELECT row_hash FROM fill ORDER BY id DESC LIMIT 1").fetchone()[0]
    for i in range(start, start + n):
        pid = pids[i // FILLS_PER_POSITION]
        fid, units, price, at = f"raw-{i}", 10**8, str(2000 + i % 7), 1_700_000_000_000
        row_hash = chain.fill_hash(prev, fid, pid, "buy", True, units, price, at)
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "INSERT OR IGNORE INTO fill (fill_id, position_id, side, is_entry, qty_units, price, fill_ms,"
            " recorded_ms, prev_hash, row_hash) VALUES (?, ?, 'buy', 1, ?, ?, ?, ?, ?, ?)",
            (fid, pid, units, price, at, at, prev, row_hash),
        )
        con.execute(
            "UPDATE position SET remaining_qty_units = remaining_qty_units + ?, updated_ms = ? WHERE id = ?",
            (units, at, pid),
        )
        con.execute("COMMIT")
        prev = row_hash


SYNCHRONOUS_LEVELS = {"full": 2, "normal": 1}
SYNC_BLOCK = 50  # operations per turn: FULL and NORMAL take turns, so both see the same load on a shared machine


def _registry_with_synchronous(path: Path, level: str) -> Registry:
    """A registry as opened, then (single-threaded here, so this one connection does every write) set to `level`."""
    reg = Registry.open(path, FakeClock())
    reg.db.pragma("synchronous", level)
    _require_synchronous(reg.db.pragma("synchronous"), level)
    return reg


def _raw_with_synchronous(path: Path, level: str) -> sqlite3.Connection:
    con = _raw(path)
    con.execute(f"PRAGMA synchronous = {level}")
    _require_synchronous(con.execute("PRAGMA synchronous").fetchone()[0], level)
    return con


def _require_synchronous(answered: object, level: str) -> None:
    if answered != SYNCHRONOUS_LEVELS[level]:
        raise RuntimeError(f"synchronous={level} did not take (SQLite answered {answered}): the figure would lie")


def _taking_turns(ops: dict[str, Callable[[int], None]], n: int) -> dict[str, float]:
    """Operations per second of each of `ops` over `n` operations, run in turns of SYNC_BLOCK."""
    turns = max(1, n // SYNC_BLOCK)
    spent = dict.fromkeys(ops, 0.0)
    for _ in range(turns):
        for name, op in ops.items():
            started = time.perf_counter()
            op(SYNC_BLOCK)
            spent[name] += time.perf_counter() - started
    return {name: turns * SYNC_BLOCK / seconds for name, seconds in spent.items()}


def _synchronous_rates(d: Path, n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Transitions/s at each synchronous level: through the registry, then raw sqlite3 on the same files."""
    paths = {level: d / f"sync-{level}.db" for level in SYNCHRONOUS_LEVELS}
    regs = {level: _registry_with_synchronous(path, level) for level, path in paths.items()}
    registry = _taking_turns({level: _protection_flips(reg) for level, reg in regs.items()}, n)
    for reg in regs.values():
        reg.close()
    cons = {level: _raw_with_synchronous(path, level) for level, path in paths.items()}
    raw = _taking_turns({level: partial(_raw_transitions, con) for level, con in cons.items()}, n)
    for con in cons.values():
        con.close()
    return registry, raw


def _counted(op: Callable[[int, int], None]) -> Callable[[int], None]:
    """`op(start, k)` as `op(k)`, each call continuing where the last one ended (fresh fill ids every turn)."""
    done = [0]

    def step(k: int) -> None:
        op(done[0], k)
        done[0] += k

    return step


def _prepared(path: Path, n: int) -> tuple[Registry, list[str]]:
    """A registry file with the positions and entry orders both sides write to: one position for the transitions
    (imported, its stop id recorded) and `n` fills' worth for the fills."""
    reg = Registry.open(path, FakeClock())
    coids = _entry_orders(reg, n)
    return reg, coids


def run() -> None:
    n = int(os.environ.get("BENCH_REGISTRY_N", "1000"))
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as d:
        # Two files on the same disk, one written through the registry and one by raw sqlite3, taking turns in
        # blocks (as the synchronous figure does), so that both see the same machine load: fsync times on a shared
        # disk drift by tens of per cent within seconds.
        reg, coids = _prepared(Path(d) / "reg.db", n)
        flips = _protection_flips(reg)
        raw_reg, _ = _prepared(Path(d) / "raw.db", n)
        _protection_flips(raw_reg)
        raw_reg.close()
        con = _raw(Path(d) / "raw.db")
        transitions = _taking_turns({"registry": flips, "raw": partial(_raw_transitions, con)}, n)
        fills = _taking_turns(
            {"registry": _counted(partial(_registry_fills, reg, coids)), "raw": _counted(partial(_raw_fills, con))}, n
        )
        reg.close()
        con.close()
        sync_reg, sync_raw = _synchronous_rates(Path(d), n)
    reg_tps, raw_tps = transitions["registry"], transitions["raw"]
    reg_fps, raw_fps = fills["registry"], fills["raw"]
    print(f"   transitions: registry {reg_tps:9.0f}/s   raw sqlite3 {raw_tps:9.0f}/s   ratio {raw_tps / reg_tps:5.1f}x")
    print(f"   fills:       registry {reg_fps:9.0f}/s   raw sqlite3 {raw_fps:9.0f}/s   ratio {raw_fps / reg_fps:5.1f}x")
    for side, rates in (("registry", sync_reg), ("raw sqlite3", sync_raw)):
        full, normal = rates["full"], rates["normal"]
        print(
            f"   synchronous, {side + ':':12} FULL {full:9.0f}/s   NORMAL {normal:9.0f}/s"
            f"   FULL/NORMAL 1/{normal / full:.1f}"
        )
    print(f"   ({n} operations each, one transaction per operation, synchronous=FULL unless named)")
