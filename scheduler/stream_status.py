"""The running order stream of this process (or None), for CYCLE_SUMMARY, /status and the metrics endpoint.

Kept apart from scheduler.stream_hook so that reading it never imports ccxt.pro."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exchange.stream import OrderStream


class _Current:
    stream: OrderStream | None = None


STREAMS = _Current()


def stream_fields() -> dict[str, object]:
    """The stream's counters as CYCLE_SUMMARY fields (none when no stream runs)."""
    stream = STREAMS.stream
    if stream is None:
        return {}
    s = stream.stats
    return {"stream": s.state, "stream_fills": s.fills_received, "stream_gaps": s.gaps}


def status_line() -> str | None:
    """One line for /status: the stream's state, last message age and counters (None when no stream runs)."""
    stream = STREAMS.stream
    if stream is None:
        return None
    s = stream.stats
    age = s.last_message_age_s()
    down = f", down {s.down_for_s():.0f} s" if s.state != "connected" else ""
    return (
        f"stream: {s.state}{down}, last message {'-' if age is None else f'{age:.1f} s'} ago, "
        f"fills {s.fills_received}, gaps {s.gaps}, reconnects {max(0, s.connects - 1)}"
        + (" (DEGRADED: trading on REST polling)" if stream.degraded else "")
    )
