"""The `queues:` section: Kueue admission for each team's batch and training jobs."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from tokenway.config.base import Section
from tokenway.config.deployments import DNS_LABEL
from tokenway.config.units import ByteSize


class Borrowing(Section):
    """Share unused quota inside a cohort; `limit` caps how many GPUs this team may borrow."""

    cohort: str = Field(pattern=DNS_LABEL)
    limit: int | None = Field(default=None, ge=0)


class QueueSpec(Section):
    """One team's queue: GPU quota per flavor (a ResourceFlavor per key), CPU and memory."""

    team: str = Field(pattern=DNS_LABEL)
    namespace: str = Field(pattern=DNS_LABEL)
    gpu_quota: dict[str, int] = Field(min_length=1)
    cpu: int = Field(default=64, ge=0)
    memory: ByteSize = 512 * 2**30
    borrowing: Borrowing | None = None
    priority: int = 0
    gpu_resource: str = "nvidia.com/gpu"


def _unique(queues: list[QueueSpec]) -> list[QueueSpec]:
    teams = [q.team for q in queues]
    if len(set(teams)) != len(teams):
        raise ValueError("queues: one queue per team")
    return queues


Queues = Annotated[list[QueueSpec], AfterValidator(_unique)]
