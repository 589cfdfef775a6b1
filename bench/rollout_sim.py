"""What the simulated-rollout benchmarks share (``rollout_aa.py``, ``demo_rollout.py``):
a rollout at a fixed start, the controller's step logic around
``modelplane.serving.rollout.decide``, and one round of per-city traffic with its
actuals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    Decision,
    Rollout,
    RolloutStep,
    SliceCounts,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


def new_rollout(name: str, steps: tuple[RolloutStep, ...], analysis: Analysis) -> Rollout:
    """A rollout of version 2 on deployment ``d``, its first step started at ``START``."""
    return Rollout(name, "d", ModelTarget(version="2"), steps, analysis, step_start_time=START,
                   start_time=START)


def follow(r: Rollout, d: Decision, now: datetime, **step_start: Any) -> tuple[str, Rollout]:
    """The controller's step logic on one decision: "promoted" or "rolled back" when the
    rollout ends there, else "" and the rollout, moved to its next step (started ``now``,
    with ``step_start``'s counts) when the decision says to advance."""
    if d.action is Action.PROMOTE:
        return "promoted", r
    if d.action is Action.ROLL_BACK:
        return "rolled back", r
    if d.action is Action.ADVANCE:
        r = replace(r, current_step=r.current_step + 1, step_start_time=now, **step_start)
    return "", r


def city_round(rng: np.random.Generator, n: np.ndarray, requests: int, shares: np.ndarray,
               weight: int, q0: Any, q1: np.ndarray, names: list[str]
               ) -> tuple[Counts, Counts, SliceCounts]:
    """``requests`` spread over the cities by ``shares``, ``weight`` % of each city's to the
    challenger, each answered right with its side's accuracy (``q0``, ``q1``: per city, or
    one number), its actual known at once. Adds them to ``n`` (per city: champion labeled,
    right, challenger labeled, right) and returns the totals per side and per city."""
    per_city = rng.multinomial(requests, shares)
    m1 = rng.binomial(per_city, weight / 100)
    m0 = per_city - m1
    n[:, 0] += m0
    n[:, 1] += rng.binomial(m0, q0)
    n[:, 2] += m1
    n[:, 3] += rng.binomial(m1, q1)
    t = n.sum(axis=0)
    slices: SliceCounts = {"city": {c: (Counts(int(n[i, 0]), int(n[i, 1])),
                                        Counts(int(n[i, 2]), int(n[i, 3])))
                                    for i, c in enumerate(names)}}
    return Counts(int(t[0]), int(t[1])), Counts(int(t[2]), int(t[3])), slices
