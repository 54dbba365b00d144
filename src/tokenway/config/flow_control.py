"""A pool's `flowControl:` settings: queueing of requests while the pool is saturated."""

from __future__ import annotations

from pydantic import Field

from tokenway.config.base import Section
from tokenway.config.units import Duration


class FlowControlSpec(Section):
    """Bounded queues per priority band, fair across fairness ids, with a time to live.

    With `enabled: false` requests are never queued: saturation only sheds sheddable traffic
    (priority < 0) and passes everything else, as the reference picker does without flow control.
    """

    enabled: bool = True
    max_queued_per_band: int = Field(default=1000, ge=1)
    queue_ttl: Duration = 30.0
