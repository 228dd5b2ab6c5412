"""The local control socket: how an `--execute` tool hands its operation to the running daemon.

One writer per registry: while the daemon holds the registry's writer lock, a tool must not write it. Instead the
tool connects to `<registry>.control` (a Unix socket, mode 0600: only the owner of the registry may ask), sends one
JSON line `{"op": ..., "args": {...}}`, and the daemon runs the operation (`operations.sync`) under its job lock
and answers one JSON line `{"code": N, "lines": [...]}` that the tool prints. When no daemon answers, the tool runs
the same operation itself.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

OPS = ("ping", "sync_positions", "recover_sl_order_ids")
MAX_MESSAGE = 1 << 20


def socket_path(db_path: Path | str) -> Path:
    p = Path(db_path)
    return p.with_name(p.name + ".control")


@dataclass(frozen=True)
class Answer:
    code: int
    lines: tuple[str, ...]


def encode(op: str, args: dict[str, object]) -> bytes:
    return (json.dumps({"op": op, "args": args}) + "\n").encode()


def decode_answer(raw: bytes) -> Answer:
    doc = json.loads(raw.decode())
    return Answer(int(doc["code"]), tuple(str(line) for line in doc.get("lines", ())))


def ask(
    db_path: Path | str, op: str, args: dict[str, object] | None = None, *, timeout_s: float = 300
) -> Answer | None:
    """The daemon's answer, or None when no daemon listens on this registry's control socket."""
    path = socket_path(db_path)
    if not path.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return None  # a socket file left by a daemon that died: nobody answers
        sock.sendall(encode(op, args or {}))
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if chunk.endswith(b"\n") or sum(map(len, chunks)) > MAX_MESSAGE:
                break
    return decode_answer(b"".join(chunks))
