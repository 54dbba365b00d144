"""The `objectives:` section: named priorities a request can select by header.

Mirrors InferenceObjective (inference.networking.x-k8s.io): a name and a priority; below 0 is
sheddable while the pool saturates. A request names one with `x-gateway-inference-objective`.
The picker reads them from this file (its ConfigMap on Kubernetes), so a name is also valid as
an InferenceObjective name (a DNS label) and differs from every model's name.
"""

from __future__ import annotations

from pydantic import Field

from tokenway.config.base import Section


class Objective(Section):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    priority: int = 0


Objectives = list[Objective]
