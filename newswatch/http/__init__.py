"""Outbound HTTP for all of newswatch (feeds, article pages, webhooks): SSRF guard and bounded fetch."""

from newswatch.http.client import USER_AGENT, Fetcher, FetchError, FetchLimits, FetchResult
from newswatch.http.ssrf import AddressGuard, BlockedAddress

__all__ = [
    "USER_AGENT",
    "AddressGuard",
    "BlockedAddress",
    "FetchError",
    "FetchLimits",
    "FetchResult",
    "Fetcher",
]
