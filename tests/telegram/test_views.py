"""Rendering of the command replies, without a bot."""

from __future__ import annotations

from decimal import Decimal

from scheduler.telegram.views import (
    MAX_MESSAGE_CHARS,
    PositionLine,
    StatusView,
    render_position,
    render_positions,
    render_status,
)


def _line(n: int) -> PositionLine:
    return PositionLine(
        uid=f"uid{n:04d}",
        symbol="PF_XBTUSD",
        side="long",
        state="PROTECTED",
        qty=Decimal("0.0001"),
        entry_price=Decimal("90000.5"),
        stop_price=Decimal("88000"),
        take_profit_price=Decimal("95000"),
        has_stop_order=True,
    )


def test_status_without_a_halt_or_venue_numbers_says_so() -> None:
    text = render_status(
        StatusView(
            mode="live",
            open_positions=0,
            equity_usd=None,
            margin_util_pct=None,
            kill_switch_reasons=(),
            as_of="2026-11-25T09:30:00Z",
        )
    )
    assert text.splitlines() == [
        "Status at 2026-11-25T09:30:00Z",
        "Mode: live",
        "Kill switch: off",
        "Operator pause: off",
        "Open positions: 0",
        "Equity: unknown USD",
        "Margin utilisation: unknown",
    ]


def test_two_halt_reasons_are_both_shown() -> None:
    view = StatusView("paper", 1, Decimal("1000"), Decimal("90"), ("invariant_violation", "margin_critical"), "t")
    assert "Kill switch: ACTIVE (invariant_violation, margin_critical)" in render_status(view)


def test_decimal_prices_are_shown_exactly() -> None:
    line = _line(1)
    assert render_position(line) == ("PF_XBTUSD LONG 0.0001 [PROTECTED] entry 90000.5 stop 88000 tp 95000 id uid0001")


def test_a_long_list_is_cut_below_the_telegram_limit_with_a_count_of_the_rest() -> None:
    lines = [_line(n) for n in range(200)]
    text = render_positions(lines)
    assert len(text) <= MAX_MESSAGE_CHARS
    shown = text.count("\nPF_XBTUSD")
    assert 0 < shown < 200
    assert text.endswith(f"... and {200 - shown} more (see the registry)")
    assert render_positions(lines[:3]).count("\n") == 3  # a short list is whole, with no note
