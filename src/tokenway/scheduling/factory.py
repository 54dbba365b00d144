"""Builds a pool's `Scheduler` from its platform-file settings."""

from __future__ import annotations

import random

from tokenway.config.pools import PoolSpec
from tokenway.scheduling import profiles
from tokenway.scheduling.framework import ProfileScheduler
from tokenway.scheduling.scheduler import Scheduler


def build_scheduler(pool: PoolSpec, rng: random.Random | None = None) -> Scheduler:
    """A fresh scheduler (with its own learned state) for `pool.scheduler`.

    Raises ValueError for unknown profiles, plugins or parameters; the platform-file loader
    runs the same checks, so a validated file always builds.
    """
    spec = pool.scheduler
    profile = profiles.resolve(spec.profile, spec.scorers, spec.picker, spec.filters, spec.params)
    return ProfileScheduler(profile, rng)
