"""Per-slice checks of a rollout (issue #17): no value of a categorical feature worse
than its margin, each value tested at alpha / k (Bonferroni), roll back only.

The rule ``rollout.decide`` on simulated streams split by city, driven like the
controller drives it; the Bonferroni threshold; a slice never promoting; the
rollout's persistence and validation of slice checks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelplane.kit.errors import InvalidArgument
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    Rollout,
    RolloutStep,
    SliceCheck,
    SliceCounts,
    decide,
    likelihood_ratio,
    validate,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CITIES = ("berlin", "lyon", "oslo", "paris", "rome")


def _rollout(slices: tuple[SliceCheck, ...], margin: float = 0.05) -> Rollout:
    steps = tuple(RolloutStep(w, 900.0, 50) for w in (5, 25, 50))
    return Rollout("r", "d", ModelTarget(version="2"), steps,
                   Analysis(margin=margin, slices=slices), step_start_time=T0, start_time=T0,
                   challenger_version="2", champion_version="1", model="m")


def _run(p1_by_city: dict[str, float], slices: tuple[SliceCheck, ...], *, seed: int,
         p0: float = 0.85, ticks: int = 400) -> tuple[Action, int, str]:
    """One rollout, 200 labeled predictions a minute spread evenly over five cities, steps
    of 15 minutes;
    (final action, the step it ended at, the reason)."""
    rng = np.random.default_rng(seed)
    r = _rollout(slices)
    counts = {c: [0, 0, 0, 0] for c in CITIES}  # n0, x0, n1, x1
    now = T0
    d = None
    for _ in range(ticks):
        now += timedelta(seconds=60)
        for city in CITIES:
            m1 = int(rng.binomial(40, r.step.weight / 100))
            c = counts[city]
            c[0] += 40 - m1
            c[1] += int(rng.binomial(40 - m1, p0))
            c[2] += m1
            c[3] += int(rng.binomial(m1, p1_by_city.get(city, p0)))
        champion = Counts(sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values()))
        challenger = Counts(sum(c[2] for c in counts.values()),
                            sum(c[3] for c in counts.values()))
        per: SliceCounts = {"city": {k: (Counts(c[0], c[1]), Counts(c[2], c[3]))
                                     for k, c in counts.items()}}
        d = decide(r, champion, challenger, now, per)
        if d.action in (Action.PROMOTE, Action.ROLL_BACK):
            return d.action, r.current_step, d.reason
        if d.action is Action.ADVANCE:
            r = dataclasses.replace(r, current_step=r.current_step + 1, step_start_time=now,
                                    step_start_labeled=challenger.labeled)
    return Action.WAIT, r.current_step, d.reason if d else ""


CITY_CHECK = (SliceCheck("city", margin=0.05, min_labeled=30),)


@pytest.mark.parametrize("seed", range(4))
def test_a_challenger_worse_in_one_city_only_is_rolled_back_before_the_last_step(
        seed: int) -> None:
    # 0.30 worse in oslo, as good elsewhere: overall 0.06 worse, near the overall margin
    action, step, reason = _run({"oslo": 0.55}, CITY_CHECK, seed=seed)
    assert action is Action.ROLL_BACK
    assert step < 2, "rolled back before the 50 % step"
    assert "city = 'oslo'" in reason and "alpha/5" in reason


@pytest.mark.parametrize("seed", range(4))
def test_without_the_slice_check_the_same_challenger_is_not_stopped_by_its_city(
        seed: int) -> None:
    # the same stream judged overall only: worse by 0.06 against a 0.05 margin is
    # hard to tell apart; it is not rolled back early (what the slice check adds)
    action, step, _ = _run({"oslo": 0.55}, (), seed=seed)
    assert not (action is Action.ROLL_BACK and step < 2)


def test_each_slice_value_is_tested_at_alpha_over_k() -> None:
    r = dataclasses.replace(_rollout(CITY_CHECK), current_step=2,
                            step_start_time=T0 - timedelta(days=1))
    champion, fine = Counts(200, 170), Counts(200, 170)
    # find a bad value whose ratio lies between 1/alpha (20) and 4/alpha (80)
    bad = next(Counts(200, x) for x in range(170, 0, -1)
               if 20 <= likelihood_ratio(champion, Counts(200, x), 0.05, 0.05)[1] < 80)
    lr = likelihood_ratio(champion, bad, 0.05, 0.05)[1]
    one: SliceCounts = {"city": {"oslo": (champion, bad)}}
    four: SliceCounts = {"city": {"oslo": (champion, bad), **{c: (champion, fine)
                                                             for c in ("berlin", "lyon", "paris")}}}
    overall = Counts(100_000, 85_000)
    d1 = decide(r, overall, overall, T0, one)
    d4 = decide(r, overall, overall, T0, four)
    assert d1.action is Action.ROLL_BACK, f"one value: level alpha, ratio {lr:.3g} >= 20"
    assert d4.action is not Action.ROLL_BACK, f"four values: alpha/4, ratio {lr:.3g} < 80"
    assert [s.threshold for s in d4.evidence.slices] == [pytest.approx(80.0)] * 4
    assert [s.value for s in d4.evidence.slices] == ["berlin", "lyon", "oslo", "paris"]


def test_a_slice_never_promotes_and_below_its_minimum_never_decides() -> None:
    r = dataclasses.replace(_rollout(CITY_CHECK), current_step=2,
                            step_start_time=T0 - timedelta(days=1))
    undecided = Counts(150, 127)
    great: SliceCounts = {"city": {"oslo": (Counts(10_000, 5_000), Counts(10_000, 9_900))}}
    d = decide(r, Counts(150, 128), undecided, T0, great)
    assert d.action is Action.WAIT and d.kind == "evidence"
    tiny: SliceCounts = {"city": {"oslo": (Counts(29, 29), Counts(29, 0))}}
    assert decide(r, Counts(150, 128), undecided, T0, tiny).action is Action.WAIT
    enough: SliceCounts = {"city": {"oslo": (Counts(30, 30), Counts(30, 0))}}
    assert decide(r, Counts(150, 128), undecided, T0, enough).action is Action.ROLL_BACK


def test_slice_checks_and_their_evidence_survive_the_store_round_trip() -> None:
    r = _rollout(CITY_CHECK)
    d = decide(r, Counts(300, 255), Counts(300, 250), T0,
               {"city": {"oslo": (Counts(60, 50), Counts(60, 40))}})
    stored = dataclasses.replace(r, evidence=d.evidence)
    again = Rollout.from_dict(stored.to_dict())
    assert again == stored and again.evidence is not None
    assert again.evidence.slices[0].challenger == Counts(60, 40)


def test_a_slice_check_without_a_feature_twice_or_with_a_bad_margin_is_refused() -> None:
    bad = (SliceCheck(""), SliceCheck("city", 1.5), SliceCheck("city", 0.1, -1))
    with pytest.raises(InvalidArgument) as err:
        validate(_rollout(bad))
    fields = {v.field for v in err.value.field_violations}
    assert fields == {"rollout.analysis.checks[1].slice.feature",
                      "rollout.analysis.checks[2].slice.margin",
                      "rollout.analysis.checks[3].slice.feature",
                      "rollout.analysis.checks[3].slice.min_labeled"}
