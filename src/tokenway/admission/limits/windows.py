"""Fixed counting windows on the wall clock, the same on every replica: minute, hour and day
start on UTC boundaries, month on the first of the UTC calendar month."""

from __future__ import annotations

from datetime import UTC, datetime

from tokenway.config.teams import Period

_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def window(per: Period, now: float) -> tuple[int, int]:
    """(start, end) in epoch seconds of the window containing `now`."""
    if per == "month":
        day = datetime.fromtimestamp(now, UTC)
        start = datetime(day.year, day.month, 1, tzinfo=UTC)
        end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
        return int(start.timestamp()), int(end.timestamp())
    size = _SECONDS[per]
    start = int(now // size) * size
    return start, start + size
