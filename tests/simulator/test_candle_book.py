"""The simulator's candle book: a bounded book (long paper runs) keeps the newest bars and answers as an unbounded
one does for every range it still holds."""

from __future__ import annotations

from decimal import Decimal

from simulator.candles import CandleBook

MINUTE = 60_000


def fill(book: CandleBook, minutes: int) -> None:
    for m in range(minutes):
        for second in (0, 30):
            price = Decimal(100 + (m * 7 + second) % 13)
            book.record("PF_XBTUSD", "trade", m * MINUTE + second * 1000, price, Decimal(1))


def test_a_bounded_book_keeps_the_newest_bars_and_answers_like_an_unbounded_one() -> None:
    bounded, full = CandleBook(keep_minutes=120), CandleBook()
    fill(bounded, 2_000)
    fill(full, 2_000)
    kept = bounded.since("PF_XBTUSD", "trade", 0)
    assert 120 <= len(kept) <= 120 + 120 // 8 + 1  # trimmed in batches, never below the promise
    assert kept[-1].time_ms == 1_999 * MINUTE and kept == full.since("PF_XBTUSD", "trade", kept[0].time_ms)
    newest = bounded.candles("PF_XBTUSD", "trade", "15m", from_s=(2_000 - 120) * 60)
    assert newest == full.candles("PF_XBTUSD", "trade", "15m", from_s=(2_000 - 120) * 60)
    assert len(full.since("PF_XBTUSD", "trade", 0)) == 2_000  # None keeps everything (backtests read months)
