"""What a file's 100-byte header says about it before SQLite touches it: the one check for every SQLite file the
project opens by an operator's path (the registry in the tools, the candle store in the daemon, backfill and the
backtest). A wrong path (empty, truncated, not SQLite) is refused before it is opened, so it never becomes a
database and never gains -wal/-shm files."""

from __future__ import annotations

import struct
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


def header_problem(path: Path, size: int) -> str | None:
    """Why the file at `path` (of `size` bytes) cannot be a sound SQLite database, or None if its header looks
    right. The message names the file and the fault; the caller adds what to do."""
    if size == 0:
        return f"{path} is empty (0 bytes)"
    with path.open("rb") as fh:
        header = fh.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or not header.startswith(SQLITE_MAGIC):
        return f"{path} is not a SQLite database (damaged header or wrong file)"
    (raw_page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if raw_page_size == 1 else raw_page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"{path} has a damaged header (page size {raw_page_size})"
    change_counter, page_count = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    if size % page_size:
        return f"{path} is truncated ({size} bytes is not a whole number of {page_size}-byte pages)"
    # The header's page count is authoritative only when its version-valid-for matches the change counter.
    if valid_for == change_counter and page_count and size < page_count * page_size:
        return f"{path} is truncated ({size} bytes, the header says {page_count * page_size})"
    return None
