"""The one way the daemon and the runbook tools build the real venue client from `[venue]` settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.breaker import CircuitBreaker
from lifecycle.clock import Clock
from settings.config import VenueSettings

if TYPE_CHECKING:
    from exchange.ccxt_venue import CcxtVenue


def ccxt_venue(settings: VenueSettings, clock: Clock) -> CcxtVenue:
    """CcxtVenue with its circuit breaker, as configured. Callers check the keys first, each with its own message
    (a startup refusal, a tool's usage error)."""
    if settings.api_key is None or settings.api_secret is None:
        raise ValueError("venue.api_key and venue.api_secret are required to build the venue client")
    from exchange.ccxt_venue import CcxtVenue  # ccxt is heavy: a tool refused before this point never loads it

    breaker = CircuitBreaker(
        clock, failure_threshold=settings.breaker.failure_threshold, open_seconds=settings.breaker.open_seconds
    )
    return CcxtVenue(
        api_key=settings.api_key,
        api_secret=settings.api_secret,
        base_url=settings.base_url,
        timeout_seconds=settings.timeout_ms / 1000,
        enable_rate_limit=settings.enable_rate_limit,
        breaker=breaker,
        clock=clock,
    )
