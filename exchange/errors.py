"""Typed venue errors. The edges translate ccxt's exceptions (and raw venue statuses) into these.

Retry safety is a property of the error *and the operation*: a read that failed can be repeated; an order
whose fate is unknown must be looked up by its client order id, never re-sent blindly.
"""

from __future__ import annotations


class VenueError(Exception):
    """Base class. `retry_safe` says whether repeating the same call can never duplicate an effect."""

    retry_safe: bool = False

    def __init__(self, message: str, *, venue_status: str | None = None) -> None:
        super().__init__(message)
        self.venue_status = venue_status


class VenueUnavailable(VenueError):
    """Network failure, timeout, 5xx, maintenance: the venue did not answer usefully."""

    retry_safe = True


class RateLimited(VenueUnavailable):
    """The venue (or our limiter) asked us to slow down."""


class CircuitOpen(VenueUnavailable):
    """Our API circuit breaker is open: the call was not sent."""


class AuthenticationFailed(VenueError):
    """Wrong, revoked or under-scoped key. Never retried."""


class OrderRejected(VenueError):
    """The venue definitively refused the order; `venue_status` holds Kraken's own status string."""


class OrderNotSent(VenueError):
    """Our own checks refused the order before anything was sent (an incomplete request, a size below the
    instrument's minimum, a price that rounds to nothing). Not a venue rejection: the venue never saw it, there is
    nothing to look up, and the same request will be refused again, so callers close the intent as not sent."""

    retry_safe = True


class InvalidOrderRequest(OrderNotSent):
    """The request itself is incomplete (a limit without a price, a stop without a trigger). Not sent."""


class OrderNotFound(VenueError):
    """The venue does not know this order *now*. On Kraken this proves nothing about the past."""

    retry_safe = True


class UnknownSymbol(VenueError):
    """A symbol that is not a tradeable instrument on this venue."""


class MalformedResponse(VenueError):
    """The venue answered with something we cannot parse (garbage, missing keys)."""

    retry_safe = True
