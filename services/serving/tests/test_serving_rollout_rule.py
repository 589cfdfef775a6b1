"""The rollout decision rule (pure) and the store's compare-and-set on rollouts (PostgreSQL).

The rule: ``rollout.decide`` on simulated outcome streams. The store: two writers
that read the same revision cannot both make a transition - the second one's
transaction is refused as a whole, its event with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelplane.kit.errors import Aborted
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    EventType,
    Rollout,
    RolloutEvent,
    RolloutState,
    RolloutStep,
    decide,
    likelihood_ratio,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rollout(margin: float = 0.02, *weights: float) -> Rollout:
    steps = tuple(RolloutStep(w, 60.0, 50) for w in (weights or (5, 25, 50)))
    return Rollout("r", "d", ModelTarget(version="2"), steps, Analysis(margin=margin),
                   step_start_time=T0, start_time=T0, challenger_version="2",
                   champion_version="1", model="m")


def _run(p0: float, p1: float, *, seed: int, margin: float = 0.02, labeled: bool = True,
         ticks: int = 400) -> tuple[Action, int]:
    """Drive one rollout like the controller does; (final action, ticks used)."""
    rng = np.random.default_rng(seed)
    r = _rollout(margin)
    n0 = x0 = n1 = x1 = 0
    now = T0
    for tick in range(ticks):
        now += timedelta(seconds=60)
        m1 = int(rng.binomial(200, r.step.weight / 100))
        if labeled:
            n0, x0 = n0 + 200 - m1, x0 + int(rng.binomial(200 - m1, p0))
            n1, x1 = n1 + m1, x1 + int(rng.binomial(m1, p1))
        d = decide(r, Counts(n0, x0), Counts(n1, x1), now)
        if d.action in (Action.PROMOTE, Action.ROLL_BACK):
            return d.action, tick
        if d.action is Action.ADVANCE:
            r = dataclasses.replace(r, current_step=r.current_step + 1, step_start_time=now,
                                    step_start_labeled=n1)
    return Action.WAIT, ticks


@pytest.mark.parametrize("seed", range(5))
def test_a_challenger_as_good_as_the_champion_is_promoted_within_the_margin(seed: int) -> None:
    assert _run(0.85, 0.86, seed=seed)[0] is Action.PROMOTE


@pytest.mark.parametrize("seed", range(5))
def test_a_challenger_worse_than_the_margin_is_rolled_back(seed: int) -> None:
    action, ticks = _run(0.85, 0.78, seed=seed)
    assert action is Action.ROLL_BACK
    assert ticks < 50  # early, while it has a small share


def test_without_actuals_it_waits_forever_and_says_for_what() -> None:
    assert _run(0.85, 0.99, seed=0, labeled=False) == (Action.WAIT, 400)
    r = dataclasses.replace(_rollout(0.02, 5, 50), current_step=1)
    d = decide(r, Counts(), Counts(), T0 + timedelta(days=30))
    assert d.action is Action.WAIT
    assert "waiting for actuals" in d.reason and "0 of 50" in d.reason


def test_below_the_minimum_labeled_count_it_never_decides() -> None:
    r = dataclasses.replace(_rollout(0.02, 50), step_start_time=T0 - timedelta(days=1))
    # overwhelming but tiny: 99 of 99 right against 0 of 99
    d = decide(r, Counts(99, 0), Counts(99, 99), T0)
    assert d.action is Action.WAIT and "needs 100" in d.reason
    assert decide(r, Counts(99, 99), Counts(99, 0), T0).action is Action.WAIT
    assert decide(r, Counts(100, 100), Counts(100, 0), T0).action is Action.ROLL_BACK
    assert decide(r, Counts(100, 0), Counts(100, 100), T0).action is Action.PROMOTE


def test_a_step_advances_only_after_its_duration_and_its_samples() -> None:
    r = _rollout()
    plenty = Counts(10_000, 8_500)
    assert decide(r, plenty, Counts(40, 34), T0 + timedelta(seconds=59)).kind == "duration"
    assert decide(r, plenty, Counts(40, 34), T0 + timedelta(seconds=61)).kind == "samples"
    assert decide(r, plenty, Counts(60, 51), T0 + timedelta(seconds=61)).action is Action.ADVANCE


def test_the_likelihood_ratio_is_the_msprt_formula() -> None:
    d, lr = likelihood_ratio(Counts(1000, 850), Counts(1000, 870), 0.02, 0.05)
    p0, p1 = 850.5 / 1001, 870.5 / 1001
    v = p0 * (1 - p0) / 1000 + p1 * (1 - p1) / 1000
    t2 = 0.05 ** 2
    expected = (v / (v + t2)) ** 0.5 * np.exp(t2 * (0.02 + 0.02) ** 2 / (2 * v * (v + t2)))
    assert d == pytest.approx(0.02) and lr == pytest.approx(expected)


def test_two_writers_of_the_same_revision_cannot_both_transition(
        make_postgres_database: Callable[[str], str]) -> None:
    url = make_postgres_database("serving_rollout_cas")
    one, two = DeploymentStore(url), DeploymentStore(url)
    try:
        r = dataclasses.replace(_rollout(), revision=1, create_time=T0)
        one.save_rollout(r, 0)
        ahead = dataclasses.replace(r, current_step=1, revision=2)

        def event(by: str) -> RolloutEvent:
            return RolloutEvent("r", 2, T0, EventType.STEP_STARTED, RolloutState.RUNNING, 1,
                                25.0, "advance", by)

        one.save_rollout(ahead, 1, event("one"))
        with pytest.raises(Aborted):
            two.save_rollout(ahead, 1, event("two"))
        events = two.rollout_events("r")
        assert [(e.sequence, e.actor) for e in events] == [(2, "one")]
        assert two.get_rollout("r") == ahead
        held, _ = one.acquire_lease("rollout-controller", "one", 5.0)
        taken, left = two.acquire_lease("rollout-controller", "two", 5.0)
        assert held and not taken and 0 < left <= 5.0
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_controller_tick_or_lease_that_is_not_a_positive_time_is_refused_at_start(
        value: str) -> None:
    from modelplane.serving.settings import ServingSettings

    for name in ("MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS",
                 "MODELPLANE_SERVING_ROLLOUT_LEASE_SECONDS"):
        with pytest.raises(ValueError, match=name):
            ServingSettings.from_env({name: value})
