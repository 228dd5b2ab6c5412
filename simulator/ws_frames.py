"""RFC 6455 framing, server side, standard library only: the handshake answer and the frames the simulator's
websocket feeds need (text, ping/pong, close). Clients mask, the server does not; no extension is negotiated
(ccxt offers permessage-deflate, and a server that does not answer it gets plain frames, as RFC 7692 says)."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable
from typing import Protocol

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_PAYLOAD = 1 << 20  # a client frame bigger than this is a protocol error here (requests are tiny)


class Reader(Protocol):
    def read(self, size: int, /) -> bytes | None: ...


class FrameError(Exception):
    """The peer broke the protocol or went away; the connection is over."""


def accept_key(client_key: str) -> str:
    """`Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((client_key + GUID).encode(), usedforsecurity=False).digest()).decode()


def _read_exact(stream: Reader, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise FrameError("connection closed")
    return data


def read_frame(stream: Reader) -> tuple[int, bool, bytes]:
    """One frame: (opcode, fin, unmasked payload). Raises FrameError on EOF or a malformed frame."""
    b0, b1 = _read_exact(stream, 2)
    fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", _read_exact(stream, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exact(stream, 8))
    if length > MAX_PAYLOAD:
        raise FrameError(f"frame of {length} bytes refused")
    if not masked:
        raise FrameError("client frames must be masked (RFC 6455 §5.1)")
    mask = _read_exact(stream, 4)
    payload = _read_exact(stream, length)
    unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, fin, unmasked


def read_message(stream: Reader, on_control: Callable[[int, bytes], None]) -> tuple[int, bytes]:
    """The next data message (text or binary, continuation frames joined); control frames in between go to
    `on_control(opcode, payload)` (which answers pings and closes)."""
    parts: list[bytes] = []
    first = -1
    while True:
        opcode, fin, payload = read_frame(stream)
        if opcode >= OP_CLOSE:
            on_control(opcode, payload)
            continue
        if opcode != OP_CONT:
            first, parts = opcode, []
        parts.append(payload)
        if fin and first >= 0:
            return first, b"".join(parts)


def encode(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:120]
