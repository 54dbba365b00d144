"""Request headers as the pipeline sees them, whichever data plane received them."""

from __future__ import annotations

from collections.abc import Iterable


def merged_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; a repeated header becomes one comma-joined value (RFC 9110 5.3).

    One rule for both data planes: a check that reads one value sees every line of a header
    sent twice (a second Authorization, a client-written x-forwarded-client-cert line before
    the proxy's), never just whichever came first."""
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged
