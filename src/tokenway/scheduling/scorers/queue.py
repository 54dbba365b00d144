"""`queue` scorer: prefer endpoints with short waiting queues (reference queue-scorer).

Score (max - q) / (max - min) over the candidates' `num_requests_waiting`; all equal -> 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenway.datalayer.endpoint import EndpointSnapshot
from tokenway.scheduling.normalise import inverted_min_max
from tokenway.scheduling.params import NoParams, parse_params
from tokenway.scheduling.request import SchedulingRequest

TYPE = "queue"


class QueueScorer:
    type_name = TYPE

    def score(
        self, request: SchedulingRequest, endpoints: Sequence[EndpointSnapshot], now: float
    ) -> list[float]:
        return inverted_min_max([e.metrics.waiting for e in endpoints])


def build(params: Mapping[str, Any] | None) -> QueueScorer:
    parse_params(TYPE, NoParams, params)
    return QueueScorer()
