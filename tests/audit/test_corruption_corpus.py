"""The corruption corpus: damage the raw file the way bit rot, bad edits and truncation do; check_db_health must
catch every case (exit != 0, one clear message, no traceback), run as a subprocess as an operator would."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.audit.helpers import health, raw, small_registry

OFFSETS = 10
PAGE = 4096


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = small_registry(tmp_path_factory.mktemp("corpus") / "registry.db", seed=5, positions=120)
    result = health(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path.read_bytes()


def _spread(offsets: list[int], n: int = OFFSETS) -> list[int]:
    assert len(offsets) >= n, f"only {len(offsets)} candidate offsets in the fixture"
    step = len(offsets) / n
    return [offsets[int(i * step)] for i in range(n)]


def _assert_detected(path: Path, case: str) -> None:
    result = health(path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: undetected\n{output}"
    assert "Traceback" not in output, f"{case}: traceback\n{output}"
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], f"{case}: {result.stderr}"
    if not case.endswith("-0"):
        return
    as_json = health(path, "--json")
    assert as_json.returncode == result.returncode and "Traceback" not in as_json.stdout + as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False and (doc.get("error") or doc.get("problems"))


def _run(tmp_path: Path, pristine: bytes, mutate: Callable[[bytearray], None], case: str) -> None:
    data = bytearray(pristine)
    mutate(data)
    assert bytes(data) != pristine or len(data) != len(pristine), f"{case}: mutation changed nothing"
    path = tmp_path / f"{case}.db"
    path.write_bytes(bytes(data))
    _assert_detected(path, case)


def _flip_at(offset: int, new: int) -> Callable[[bytearray], None]:
    def mutate(data: bytearray) -> None:
        data[offset] = new

    return mutate


def test_state_text_flips(tmp_path: Path, pristine: bytes) -> None:
    # Every stored `PROTECTED` (position rows, the state index, transition sources and targets) -> `PROTECTEX`.
    hits = [m.start() for m in re.finditer(b"PROTECTED", pristine)]
    for i, off in enumerate(_spread(hits)):
        _run(tmp_path, pristine, _flip_at(off + 8, ord("X")), f"state-{i}")


def test_log_target_flips(tmp_path: Path, pristine: bytes) -> None:
    # A target state in the transition log: the record has the target immediately followed by the cause text.
    hits = [m.start(1) for m in re.finditer(rb"(OPEN|PROTECTED|EXITING|CLOSED|CANCELLED)gen:", pristine)]
    for i, off in enumerate(_spread(hits)):
        _run(tmp_path, pristine, _flip_at(off, pristine[off] ^ 0x01), f"target-{i}")


def test_hash_character_flips(tmp_path: Path, pristine: bytes) -> None:
    hits = [m.start() for m in re.finditer(rb"[0-9a-f]{64}", pristine)]
    hits = [h for h in hits if pristine[h : h + 64] != b"0" * 64]
    for i, off in enumerate(_spread(hits)):
        pos = off + 17
        new = ord("a") if pristine[pos] != ord("a") else ord("b")
        _run(tmp_path, pristine, _flip_at(pos, new), f"hash-{i}")


def _sqlite_int(value: int) -> bytes:
    """The big-endian bytes SQLite's record format stores an integer in (serial types 1-6)."""
    for size in (1, 2, 3, 4, 6, 8):
        if -(1 << (8 * size - 1)) <= value < (1 << (8 * size - 1)):
            return value.to_bytes(size, "big", signed=True)
    raise ValueError(value)


def test_quantity_digit_flips(tmp_path: Path, pristine: bytes) -> None:
    # Quantities are integers, stored in binary: change the lowest byte of a fill's or a position's quantity.
    path = tmp_path / "lookup.db"
    path.write_bytes(pristine)
    conn = sqlite3.connect(path)
    values = [v for (v,) in conn.execute("SELECT qty_units FROM fill ORDER BY id")]
    values += [v for (v,) in conn.execute("SELECT remaining_qty_units FROM position WHERE remaining_qty_units > 0")]
    conn.close()
    offsets = []
    for v in values:
        needle = _sqlite_int(v)
        found = [m.start() for m in re.finditer(re.escape(needle), pristine)]
        if len(needle) >= 4 and len(found) == 1:
            offsets.append(found[0] + len(needle) - 1)
    for i, off in enumerate(_spread(offsets)):
        _run(tmp_path, pristine, _flip_at(off, pristine[off] ^ 0x04), f"qty-{i}")


def test_price_digit_flips(tmp_path: Path, pristine: bytes) -> None:
    # A price digit of a fill (text, chained): `1234.5` -> `1235.5`. The fill's record starts with its fill id
    # followed by the position id and the client order id; its price follows within a few dozen bytes.
    path = tmp_path / "lookup.db"
    path.write_bytes(pristine)
    conn = sqlite3.connect(path)
    fills = conn.execute("SELECT fill_id, price FROM fill ORDER BY id").fetchall()
    conn.close()
    offsets = []
    for fill_id, price in fills:
        record = re.search(re.escape(fill_id.encode()) + rb".{1,2}C-", pristine, re.DOTALL)
        if record is None:
            continue
        at = pristine.find(price.encode(), record.start(), record.start() + 100)
        if at >= 0:
            offsets.append(at)
    for i, off in enumerate(_spread(offsets)):
        digit = pristine[off]
        _run(tmp_path, pristine, _flip_at(off, ord("0") + (digit - ord("0") + 1) % 10), f"price-{i}")


def test_truncations(tmp_path: Path, pristine: bytes) -> None:
    size = len(pristine)
    cuts = [size // 2, size - 1, size - PAGE, 100, PAGE, PAGE + 10, size // 3, size - 3 * PAGE, 2 * PAGE, 50]

    for i, cut in enumerate(cuts):

        def mutate(data: bytearray, cut: int = cut) -> None:
            del data[cut:]

        _run(tmp_path, pristine, mutate, f"trunc-{i}")


def test_zeroed_and_empty_files(tmp_path: Path, pristine: bytes) -> None:
    def zero_header(data: bytearray) -> None:
        data[:100] = bytes(100)

    def empty(data: bytearray) -> None:
        del data[:]

    _run(tmp_path, pristine, zero_header, "zero-header")
    _run(tmp_path, pristine, empty, "empty")
    text = tmp_path / "notes.db"
    text.write_text("this is not a database\n" * 400)
    _assert_detected(text, "text-file")


def test_garbage_pages(tmp_path: Path, pristine: bytes) -> None:
    rng = random.Random(20261125)
    pages = len(pristine) // PAGE
    assert pages > OFFSETS + 1
    for i, page in enumerate(rng.sample(range(1, pages), OFFSETS)):

        def mutate(data: bytearray, page: int = page) -> None:
            data[page * PAGE : (page + 1) * PAGE] = rng.randbytes(PAGE)

        _run(tmp_path, pristine, mutate, f"garbage-page-{i}")


@pytest.mark.parametrize("table", ["transition", "fill"])
def test_deleted_middle_row_of_each_chain(tmp_path: Path, pristine: bytes, table: str) -> None:
    for i in range(3):
        path = tmp_path / f"deleted-{table}-{i}.db"
        path.write_bytes(pristine)
        with raw(path) as c:
            (count,) = c.execute(f"SELECT count(*) FROM {table}").fetchone()
            (rid,) = c.execute(
                f"SELECT id FROM {table} ORDER BY id LIMIT 1 OFFSET ?", ((i + 1) * count // 4,)
            ).fetchone()
            c.execute(f"DELETE FROM {table} WHERE id = ?", (rid,))
        _assert_detected(path, f"deleted-{table}-{i}")
        assert f"{table}_chain_breaks" in health(path).stderr


def test_header_page_count_is_checked(tmp_path: Path, pristine: bytes) -> None:
    # A file cut at a page boundary is only visible through the header's page count.
    (page_count,) = struct.unpack(">I", pristine[28:32])
    assert page_count * PAGE == len(pristine)
    path = tmp_path / "cut.db"
    path.write_bytes(pristine[: len(pristine) - 2 * PAGE])
    result = health(path)
    assert result.returncode == 1 and "truncated" in result.stderr
