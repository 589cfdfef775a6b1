"""A rollout of a regressor judged on its mean absolute error (lower is better).

The rule (``rollout.decide``) on simulated error streams: per tick the champion's
and the challenger's predictions with an actual have normal errors; the counts
the controller would read from observability are the labeled count, the MAE and
the RMSE over everything so far. Then the contract: a MAE check's margin is in
the target's units (any size >= 0), its messages read right for a metric where
lower is better, and bad MAE checks get INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.duration_pb2 import Duration

from modelplane.kit.errors import InvalidArgument
from modelplane.serving.convert import evidence_to_pb, rollout_from_pb, rollout_to_pb
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    ProxyCheck,
    Rollout,
    RolloutStep,
    SliceCheck,
    decide,
    likelihood_ratio,
    validate,
)
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: champion errors ~ N(0, 10^2): MAE = 10 sqrt(2/pi) = 7.98
SIGMA0 = 10.0


def _rollout(margin: float, *, slices: tuple[SliceCheck, ...] = (),
             mixture_scale: float = 0.5) -> Rollout:
    steps = tuple(RolloutStep(w, 60.0, 50) for w in (5, 25, 50))
    return Rollout("r", "d", ModelTarget(version="2"), steps,
                   Analysis(metric="MAE", margin=margin, mixture_scale=mixture_scale,
                            slices=slices),
                   step_start_time=T0, start_time=T0, challenger_version="2",
                   champion_version="1", model="m")


@dataclasses.dataclass
class _Errors:
    """What observability keeps of one side's labeled predictions: n, sum |e|, sum e^2."""

    n: int = 0
    abs_sum: float = 0.0
    sq_sum: float = 0.0

    def add(self, e: np.ndarray) -> None:
        self.n += len(e)
        self.abs_sum += float(np.abs(e).sum())
        self.sq_sum += float((e * e).sum())

    def counts(self) -> Counts:
        if not self.n:
            return Counts()
        return Counts(self.n, mae=self.abs_sum / self.n, rmse=math.sqrt(self.sq_sum / self.n))


def _run(sigma1: float, *, seed: int, margin: float,
         ticks: int = 400) -> tuple[Action, int, str]:
    """Drive one MAE rollout like the controller does; (final action, tick, reason)."""
    rng = np.random.default_rng(seed)
    r = _rollout(margin)
    old, new = _Errors(), _Errors()
    now = T0
    reason = ""
    for tick in range(ticks):
        now += timedelta(seconds=60)
        m1 = int(rng.binomial(200, r.step.weight / 100))
        old.add(rng.normal(0.0, SIGMA0, 200 - m1))
        new.add(rng.normal(0.0, sigma1, m1))
        d = decide(r, old.counts(), new.counts(), now)
        reason = d.reason
        if d.action in (Action.PROMOTE, Action.ROLL_BACK):
            return d.action, tick, d.reason
        if d.action is Action.ADVANCE:
            r = dataclasses.replace(r, current_step=r.current_step + 1, step_start_time=now,
                                    step_start_labeled=new.n)
    return Action.WAIT, ticks, reason


@pytest.mark.parametrize("seed", range(4))
def test_a_regressor_with_a_lower_mae_is_promoted(seed: int) -> None:
    # challenger MAE 7.18 against 7.98: better, so non-inferior with margin 0.5
    action, _, reason = _run(9.0, seed=seed, margin=0.5)
    assert action is Action.PROMOTE
    assert "challenger MAE (lower is better)" in reason and "is not worse" in reason
    assert "accuracy" not in reason


@pytest.mark.parametrize("seed", range(4))
def test_a_regressor_whose_mae_is_higher_by_more_than_the_margin_is_rolled_back(
        seed: int) -> None:
    # challenger MAE 9.57 against 7.98: worse by 1.6, the margin is 0.5
    action, ticks, reason = _run(12.0, seed=seed, margin=0.5)
    assert action is Action.ROLL_BACK
    assert ticks < 60  # while it has a small share
    assert "challenger MAE (lower is better)" in reason and "is worse than" in reason


def test_an_equal_regressor_at_margin_zero_mostly_stays_undecided() -> None:
    """A/A with margin 0: d = 0 is exactly the null, so either decision is an error
    the mSPRT bounds by alpha (0.05); over 40 seeds a handful at most decide."""
    outcomes = [_run(SIGMA0, seed=100 + s, margin=0.0, ticks=150)[0] for s in range(40)]
    assert outcomes.count(Action.WAIT) >= 34


def test_the_difference_is_oriented_so_that_positive_means_the_challenger_is_better() -> None:
    champion = Counts(1000, mae=8.0, rmse=10.0)
    better = Counts(1000, mae=7.0, rmse=8.8)
    d, lr = likelihood_ratio(champion, better, 0.5, 0.5, "MAE")
    assert d == pytest.approx(1.0)
    # V from var|e| = RMSE^2 - MAE^2 per side: (100 - 64)/1000 + (77.44 - 49)/1000
    v = 0.036 + 0.02844
    t2 = 0.25
    assert lr == pytest.approx(math.sqrt(v / (v + t2))
                               * math.exp(t2 * 1.5 ** 2 / (2 * v * (v + t2))))
    worse_d, _ = likelihood_ratio(champion, Counts(1000, mae=9.0, rmse=11.0), 0.5, 0.5, "MAE")
    assert worse_d == pytest.approx(-1.0)
    # identical errors on both sides (no spread) must not divide by zero
    flat = Counts(500, mae=3.0, rmse=3.0)
    d, lr = likelihood_ratio(flat, flat, 0.0, 0.5, "MAE")
    assert d == 0.0 and math.isfinite(lr)


def test_a_waiting_mae_rollout_says_which_way_the_difference_points() -> None:
    r = dataclasses.replace(_rollout(0.5), current_step=2)
    d = decide(r, Counts(400, mae=8.0, rmse=10.0), Counts(400, mae=7.9, rmse=9.9),
               T0 + timedelta(hours=1))
    assert d.action is Action.WAIT
    assert "champion MAE - challenger MAE +0.1000, > 0 = challenger better" in d.reason


def test_a_slice_check_on_mae_rolls_back_a_regressor_worse_in_one_city() -> None:
    r = dataclasses.replace(_rollout(0.5, slices=(SliceCheck("city", 0.5),)), current_step=2)
    good = (Counts(400, mae=8.0, rmse=10.0), Counts(400, mae=7.9, rmse=9.9))
    slices = {"city": {"paris": good,
                       "oslo": (Counts(400, mae=8.0, rmse=10.0),
                                Counts(400, mae=11.0, rmse=13.8))}}
    d = decide(r, Counts(800, mae=8.0, rmse=10.0), Counts(800, mae=9.4, rmse=11.9),
               T0 + timedelta(hours=1), slices)
    assert d.action is Action.ROLL_BACK
    assert "city = 'oslo'" in d.reason and "MAE (lower is better) 11.0000" in d.reason
    assert [(s.value, round(s.difference, 4)) for s in d.evidence.slices] == [
        ("oslo", -3.0), ("paris", 0.1)]


def test_mae_margins_are_in_the_targets_units_and_bad_ones_name_the_field() -> None:
    validate(_rollout(25.0, slices=(SliceCheck("city", 40.0),), mixture_scale=20.0))
    with pytest.raises(InvalidArgument) as err:
        validate(dataclasses.replace(_rollout(-1.0, slices=(SliceCheck("city", math.nan),)),
                                     analysis=Analysis(metric="MAE", margin=-1.0,
                                                       slices=(SliceCheck("city", math.nan),),
                                                       proxy=ProxyCheck(
                                                           estimated_accuracy=True))))
    assert sorted(v.field for v in err.value.field_violations) == [
        "rollout.analysis.checks[0].quality.margin",
        "rollout.analysis.checks[1].slice.margin",
        "rollout.analysis.checks[2].proxy.estimated_accuracy"]
    # accuracy keeps its [0, 1) margin
    with pytest.raises(InvalidArgument):
        validate(dataclasses.replace(_rollout(0.0), analysis=Analysis(margin=25.0)))


def test_the_contract_carries_mae_its_margin_and_its_values() -> None:
    m = pb.Rollout(name="reg", deployment="d", challenger=pb.ModelTarget(version="2"),
                   steps=[pb.RolloutStep(weight=50, min_duration=Duration(seconds=0))],
                   analysis=pb.RolloutAnalysis(checks=[pb.RolloutCheck(
                       quality=pb.QualityCheck(metric=pb.ROLLOUT_METRIC_MAE, margin=2.5))]))
    r = rollout_from_pb(m)
    # an unset mixture scale for MAE is the margin (target's units), not 0.05
    assert (r.analysis.metric, r.analysis.margin, r.analysis.mixture_scale) == ("MAE", 2.5, 2.5)
    validate(r)
    back = rollout_to_pb(r)
    assert back.analysis.checks[0].quality.metric == pb.ROLLOUT_METRIC_MAE
    d = decide(dataclasses.replace(r, step_start_time=T0, start_time=T0),
               Counts(300, mae=8.0, rmse=10.0), Counts(300, mae=7.5, rmse=9.5), T0)
    ev = evidence_to_pb(d.evidence)
    assert ev is not None
    assert (ev.champion_value, ev.challenger_value, ev.difference) == (8.0, 7.5, 0.5)
    stored = Rollout.from_dict(dataclasses.replace(r, evidence=d.evidence).to_dict())
    assert stored.evidence is not None and stored.evidence.metric == "MAE"
    assert stored.evidence.challenger == Counts(300, mae=7.5, rmse=9.5)


@pytest.fixture
def settings(make_settings: Callable[..., Any],
             make_postgres_database: Callable[[str], str]) -> Any:
    return make_settings(MODELPLANE_SERVING_DATABASE_URL=make_postgres_database("serving_mae"),
                         MODELPLANE_SERVING_HTTP_ADDR="")


async def test_a_bad_mae_check_is_refused_over_grpc_with_the_field_named(
        settings: Any, sv: Any) -> None:
    from modelplane.kit.pytest_plugin import rpc_error

    async with sv.run_server(settings) as server, \
            grpc.aio.insecure_channel(server.grpc_address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        bad = pb.Rollout(
            name="mae-bad", deployment="any", challenger=pb.ModelTarget(version="3"),
            steps=[pb.RolloutStep(weight=50, min_duration=Duration(seconds=0))],
            analysis=pb.RolloutAnalysis(checks=[
                pb.RolloutCheck(quality=pb.QualityCheck(metric=pb.ROLLOUT_METRIC_MAE,
                                                        margin=-0.5)),
                pb.RolloutCheck(slice=pb.SliceCheck(feature="city", margin=-1.0))]))
        err = await rpc_error(stub.CreateRollout(pb.CreateRolloutRequest(rollout=bad)))
        assert (err.code, err.reason) == ("INVALID_ARGUMENT", "INVALID_ROLLOUT")
        assert sorted(v.field for v in err.field_violations) == [
            "rollout.analysis.checks[0].quality.margin",
            "rollout.analysis.checks[1].slice.margin"]
        unknown = pb.Rollout()
        unknown.CopyFrom(bad)
        unknown.analysis.checks[0].quality.metric = 99  # type: ignore[assignment]
        unknown.analysis.checks[0].quality.margin = 0.5
        del unknown.analysis.checks[1]
        err = await rpc_error(stub.CreateRollout(pb.CreateRolloutRequest(rollout=unknown)))
        assert [v.field for v in err.field_violations] == [
            "rollout.analysis.checks[0].quality.metric"]
