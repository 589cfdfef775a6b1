"""Proxy checks without actuals and operations checks of a rollout (issue #17).

The rule ``rollout.decide`` driven like the controller drives it, on simulated
streams: a challenger whose predictions drift from the champion's is rolled back
with no actual at all; a good one advances on proxies but waits at the last
step and never promotes without actuals; CBPE estimates roll back a challenger
estimated worse; the operations check rolls back on errors, fallbacks or a slow
tail and holds the rollout until it has its requests; a good challenger is still
promoted with every check configured. Also the latency histogram, persistence
and validation of the new checks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelplane.kit.errors import InvalidArgument
from modelplane.observability.drift import jensen_shannon
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    OperationsCheck,
    ProxyCheck,
    ProxyStats,
    Rollout,
    RolloutStep,
    RouteStats,
    count_above_us,
    decide,
    latency_bucket,
    latency_quantile_us,
    validate,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TICK = timedelta(seconds=60)


def _rollout(analysis: Analysis, weights: tuple[float, ...] = (5, 25, 50)) -> Rollout:
    steps = tuple(RolloutStep(w, 300.0, 50) for w in weights)
    return Rollout("r", "d", ModelTarget(version="2"), steps, analysis, step_start_time=T0,
                   start_time=T0, challenger_version="2", champion_version="1", model="m")


def _js(a: np.ndarray, b: np.ndarray) -> float:
    return jensen_shannon(a / a.sum(), b / b.sum()) if a.sum() and b.sum() else 0.0


def _drive(r: Rollout, rng: np.random.Generator, *, classes0: list[float],
           classes1: list[float], ticks: int, per_tick: int = 200,
           labeled: bool = False) -> tuple[list[Action], Rollout, str, str]:
    """Each tick ``per_tick`` predictions split by the step's weight, each side's
    predicted classes drawn from its shares; actuals only when ``labeled`` (then
    both sides 85 % right). (actions taken, final rollout, last reason, last kind)."""
    k = len(classes0)
    n0, n1 = np.zeros(k), np.zeros(k)
    lab = [0, 0, 0, 0]
    actions: list[Action] = []
    now = T0
    reason = kind = ""
    for _ in range(ticks):
        now += TICK
        m1 = int(rng.binomial(per_tick, r.step.weight / 100))
        n0 += rng.multinomial(per_tick - m1, classes0)
        n1 += rng.multinomial(m1, classes1)
        if labeled:
            lab[0] += per_tick - m1
            lab[1] += int(rng.binomial(per_tick - m1, 0.85))
            lab[2] += m1
            lab[3] += int(rng.binomial(m1, 0.85))
        proxy = ProxyStats(int(n0.sum()), int(n1.sum()), _js(n0, n1))
        d = decide(r, Counts(lab[0], lab[1]), Counts(lab[2], lab[3]), now, proxy=proxy)
        actions.append(d.action)
        reason, kind = d.reason, d.kind
        if d.action in (Action.PROMOTE, Action.ROLL_BACK):
            break
        if d.action is Action.ADVANCE:
            r = dataclasses.replace(r, current_step=r.current_step + 1, step_start_time=now,
                                    step_start_labeled=lab[2],
                                    step_start_records=int(n1.sum()))
    return actions, r, reason, kind


@pytest.mark.parametrize("seed", range(3))
def test_without_actuals_a_challenger_whose_predictions_drift_is_rolled_back(seed: int
                                                                             ) -> None:
    r = _rollout(Analysis(proxy=ProxyCheck(max_prediction_drift=0.1, min_records=500)))
    actions, end, reason, _ = _drive(r, np.random.default_rng(seed), classes0=[0.7, 0.3],
                                     classes1=[0.4, 0.6], ticks=300)
    assert actions[-1] is Action.ROLL_BACK
    assert reason.startswith("proxy: the challenger's predictions drifted")
    assert end.current_step == 0  # at 5 %, no actual needed
    assert Action.PROMOTE not in actions


@pytest.mark.parametrize("seed", range(3))
def test_without_actuals_a_good_challenger_advances_on_proxies_but_never_promotes(seed: int
                                                                                  ) -> None:
    r = _rollout(Analysis(proxy=ProxyCheck(min_records=500, advance_without_actuals=True)))
    actions, end, reason, kind = _drive(r, np.random.default_rng(seed), classes0=[0.7, 0.3],
                                        classes1=[0.7, 0.3], ticks=600)
    assert Action.PROMOTE not in actions and Action.ROLL_BACK not in actions
    assert actions.count(Action.ADVANCE) == 2 and end.last_step
    # what it waits for, said: actuals, and that proxies do not promote
    assert kind == "samples"
    assert "waiting for actuals: 0 of 50" in reason and "proxy checks never promote" in reason


def test_without_actuals_and_without_advancing_on_proxies_the_rollout_waits_at_its_step(
        ) -> None:
    r = _rollout(Analysis(proxy=ProxyCheck(min_records=500)))
    actions, end, reason, kind = _drive(r, np.random.default_rng(5), classes0=[0.7, 0.3],
                                        classes1=[0.7, 0.3], ticks=200)
    assert set(actions) == {Action.WAIT} and end.current_step == 0
    assert kind == "samples" and "waiting for actuals: 0 of 50" in reason


def test_proxies_say_what_blocks_advancing_without_actuals() -> None:
    r = dataclasses.replace(_rollout(Analysis(proxy=ProxyCheck(
        min_records=500, advance_without_actuals=True, estimated_accuracy=True))),
        step_start_time=T0 - timedelta(hours=1))
    few = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(400, 60, 0.01, 0.9, 0.9))
    assert few.action is Action.WAIT
    assert "the proxies need 500 records on each side; champion has 400" in few.reason
    no_scores = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(4000, 600, 0.01))
    assert no_scores.action is Action.WAIT and "could not be estimated" in no_scores.reason
    clear = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(4000, 600, 0.01, 0.9, 0.9))
    assert clear.action is Action.ADVANCE and "without actuals" in clear.reason


def test_a_challenger_estimated_worse_from_its_scores_is_rolled_back() -> None:
    check = ProxyCheck(min_records=500, estimated_accuracy=True, estimated_margin=0.02)
    r = _rollout(Analysis(proxy=check))
    worse = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(4000, 1000, 0.02, 0.90, 0.80))
    assert worse.action is Action.ROLL_BACK
    assert worse.reason.startswith("proxy: challenger estimated accuracy 0.8000 (CBPE")
    assert worse.evidence.proxy is not None and worse.evidence.proxy.estimated
    # within the margin, or too few records: not rolled back
    close = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(4000, 1000, 0.02, 0.90, 0.895))
    assert close.action is Action.WAIT
    few = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(4000, 100, 0.02, 0.90, 0.50))
    assert few.action is Action.WAIT


def _latency(rng: np.random.Generator, n: int, median_ms: float) -> tuple[tuple[int, int], ...]:
    us = rng.lognormal(np.log(median_ms * 1000), 0.4, size=n)
    b, counts = np.unique([latency_bucket(x) for x in us], return_counts=True)
    return tuple((int(x), int(c)) for x, c in zip(b, counts, strict=True))


def _ops_rollout(**check: float) -> Rollout:
    r = _rollout(Analysis(operations=OperationsCheck(min_requests=200, **check)))  # type: ignore[arg-type]
    return dataclasses.replace(r, step_start_time=T0 - timedelta(hours=1))


def test_a_challenger_that_errors_is_rolled_back_by_the_operations_check() -> None:
    rng = np.random.default_rng(1)
    r = _ops_rollout(error_rate_margin=0.01)
    champion = RouteStats(4000, 4, 0, _latency(rng, 3996, 10))
    challenger = RouteStats(400, 40, 0, _latency(rng, 360, 10))
    d = decide(r, Counts(), Counts(), T0, operations=(champion, challenger))
    assert d.action is Action.ROLL_BACK
    assert d.reason.startswith("operations: challenger error rate 0.1000 (n=400)")
    assert d.evidence.operations is not None
    assert d.evidence.operations.threshold == pytest.approx(3 / 0.05)


def test_a_challenger_that_needs_fallbacks_is_rolled_back() -> None:
    rng = np.random.default_rng(2)
    r = _ops_rollout()
    d = decide(r, Counts(), Counts(), T0, operations=(
        RouteStats(4000, 0, 0, _latency(rng, 4000, 10)),
        RouteStats(400, 0, 100, _latency(rng, 300, 10))))
    assert d.action is Action.ROLL_BACK and "fallback rate 0.2500" in d.reason


def test_a_slow_challenger_is_rolled_back_on_its_p99() -> None:
    rng = np.random.default_rng(3)
    r = _ops_rollout()
    champion = RouteStats(4000, 0, 0, _latency(rng, 4000, 10))
    slow = RouteStats(400, 0, 0, _latency(rng, 400, 40))
    d = decide(r, Counts(), Counts(), T0, operations=(champion, slow))
    assert d.action is Action.ROLL_BACK and "p99 latency" in d.reason
    ev = d.evidence.operations
    assert ev is not None and ev.challenger_p99_ms > ev.latency_bound_ms
    # a bit slower, within the bound (x1.5 + 5 ms): not rolled back
    same = RouteStats(400, 0, 0, _latency(rng, 400, 11))
    d = decide(r, Counts(), Counts(), T0, operations=(champion, same))
    assert d.action is Action.WAIT and d.kind == "samples"  # for actuals, not rolled back


def test_the_operations_check_holds_the_rollout_until_both_sides_have_their_requests(
        ) -> None:
    rng = np.random.default_rng(4)
    r = _ops_rollout()
    # actuals would let the step advance; 150 challenger requests < 200 hold it
    d = decide(r, Counts(5000, 4250), Counts(300, 255), T0, operations=(
        RouteStats(4000, 0, 0, _latency(rng, 4000, 10)),
        RouteStats(150, 0, 0, _latency(rng, 150, 10))))
    assert d.action is Action.WAIT and d.kind == "requests"
    assert "operations check holds until both sides have 200 requests" in d.reason
    assert "challenger 150" in d.reason


def test_a_good_challenger_is_still_promoted_with_proxy_and_operations_checks() -> None:
    rng = np.random.default_rng(6)
    r = dataclasses.replace(_rollout(Analysis(
        margin=0.02, proxy=ProxyCheck(estimated_accuracy=True, estimated_margin=0.02),
        operations=OperationsCheck())), current_step=2, step_start_time=T0 - timedelta(hours=1))
    d = decide(r, Counts(20000, 17000), Counts(10000, 8530), T0,
               proxy=ProxyStats(20000, 10000, 0.01, 0.85, 0.853),
               operations=(RouteStats(6000, 3, 0, _latency(rng, 5997, 10)),
                           RouteStats(3000, 2, 0, _latency(rng, 2998, 10))))
    assert d.action is Action.PROMOTE, d.reason
    assert d.evidence.proxy is not None and d.evidence.operations is not None


def test_latency_histogram_quantiles_are_within_a_bucket_of_the_exact_ones() -> None:
    us = np.random.default_rng(7).lognormal(np.log(8000), 0.6, size=20000)
    b, counts = np.unique([latency_bucket(x) for x in us], return_counts=True)
    hist = tuple((int(x), int(c)) for x, c in zip(b, counts, strict=True))
    exact = float(np.quantile(us, 0.99))
    approx = latency_quantile_us(hist, 0.99)
    assert exact <= approx <= exact * 2 ** (1 / 16) * 1.0001  # rounded up, one bucket at most
    above = count_above_us(hist, exact)
    assert int((us > exact * 2 ** (1 / 16)).sum()) <= above <= int((us > exact).sum())


def test_rollouts_with_the_new_checks_and_their_evidence_survive_the_store_format() -> None:
    rng = np.random.default_rng(8)
    r = _rollout(Analysis(proxy=ProxyCheck(estimated_accuracy=True, advance_without_actuals=True),
                          operations=OperationsCheck(error_rate_margin=0.01,
                                                     latency_p99_slack_ms=2.0)))
    d = decide(r, Counts(), Counts(), T0, proxy=ProxyStats(10, 5, 0.2, 0.9, 0.8),
               operations=(RouteStats(10, 1, 0, _latency(rng, 9, 5)), RouteStats()))
    r = dataclasses.replace(r, evidence=d.evidence, step_start_records=17)
    assert Rollout.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(("analysis", "field"), [
    (Analysis(proxy=ProxyCheck(max_prediction_drift=0.0)), "proxy.max_prediction_drift"),
    (Analysis(proxy=ProxyCheck(min_records=0)), "proxy.min_records"),
    (Analysis(proxy=ProxyCheck(estimated_margin=1.5)), "proxy.estimated_margin"),
    (Analysis(operations=OperationsCheck(latency_p99_factor=0.5)),
     "operations.latency_p99_factor"),
    (Analysis(operations=OperationsCheck(error_rate_margin=-0.1)),
     "operations.error_rate_margin"),
    (Analysis(operations=OperationsCheck(min_requests=0)), "operations.min_requests"),
])
def test_invalid_proxy_and_operations_checks_name_their_field(analysis: Analysis,
                                                               field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(_rollout(analysis))
    assert [v.field for v in info.value.field_violations] == [
        f"rollout.analysis.checks[1].{field}"]


def test_once_actuals_suffice_a_prediction_shift_alone_no_longer_rolls_back() -> None:
    """Proxies stand in for actuals: a better challenger that predicts differently is
    judged on its accuracy once both sides have min_labeled actuals."""
    r = dataclasses.replace(_rollout(Analysis(margin=0.02, proxy=ProxyCheck())),
                            current_step=2, step_start_time=T0 - timedelta(hours=1))
    shifted = ProxyStats(20000, 10000, 0.3)
    without = decide(r, Counts(50, 42), Counts(50, 45), T0, proxy=shifted)
    assert without.action is Action.ROLL_BACK and "drifted" in without.reason
    with_actuals = decide(r, Counts(20000, 17000), Counts(10000, 8800), T0, proxy=shifted)
    assert with_actuals.action is Action.PROMOTE, with_actuals.reason
