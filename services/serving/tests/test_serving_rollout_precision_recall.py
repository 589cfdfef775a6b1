"""A rollout of a classifier judged on the precision or recall of one class.

Both are accuracies on a subset (records that predicted the class; records whose
actual is it), so the rule is accuracy's on that subset's counts. Pinned here:
the counts flow through the rule and the contract, the reasons name the metric
and the class, and a missing or misplaced positive class is refused.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.duration_pb2 import Duration

from modelplane.kit.errors import InvalidArgument
from modelplane.serving.convert import rollout_from_pb, rollout_to_pb
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import (
    Action,
    Analysis,
    Counts,
    Rollout,
    RolloutStep,
    decide,
    validate,
)
from modelplane.serving.v1 import serving_pb2 as pb

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(hours=1)


def _rollout(metric: str, positive: str = "fraud", margin: float = 0.02) -> Rollout:
    return Rollout("r", "d", ModelTarget(version="2"), (RolloutStep(50, 0, 50),),
                   Analysis(metric=metric, margin=margin, positive_class=positive),
                   step_start_time=T0, start_time=T0)


@pytest.mark.parametrize("metric", ["PRECISION", "RECALL"])
def test_a_challenger_with_a_better_share_of_the_class_is_promoted(metric: str) -> None:
    d = decide(_rollout(metric), Counts(2000, 1600), Counts(2000, 1700), LATER)
    assert d.action is Action.PROMOTE
    assert f"challenger {metric.lower()} of class 'fraud' 0.8500" in d.reason


@pytest.mark.parametrize("metric", ["PRECISION", "RECALL"])
def test_a_challenger_worse_on_the_class_by_more_than_the_margin_is_rolled_back(
        metric: str) -> None:
    d = decide(_rollout(metric), Counts(2000, 1600), Counts(2000, 1400), LATER)
    assert d.action is Action.ROLL_BACK
    assert f"challenger {metric.lower()} of class 'fraud' 0.7000" in d.reason
    assert "accuracy" not in d.reason


def test_precision_and_recall_need_their_class_and_the_others_refuse_one() -> None:
    validate(_rollout("RECALL"))
    with pytest.raises(InvalidArgument) as err:
        validate(_rollout("PRECISION", positive=""))
    assert [v.field for v in err.value.field_violations] == [
        "rollout.analysis.checks[0].quality.positive_class"]
    with pytest.raises(InvalidArgument) as err:
        validate(_rollout("ACCURACY", positive="fraud"))
    assert [(v.field, v.description) for v in err.value.field_violations] == [
        ("rollout.analysis.checks[0].quality.positive_class", "only for precision and recall")]


def test_the_contract_carries_the_metric_and_its_class() -> None:
    m = pb.Rollout(name="cls", deployment="d", challenger=pb.ModelTarget(version="2"),
                   steps=[pb.RolloutStep(weight=50, min_duration=Duration(seconds=0))],
                   analysis=pb.RolloutAnalysis(checks=[pb.RolloutCheck(
                       quality=pb.QualityCheck(metric=pb.ROLLOUT_METRIC_RECALL, margin=0.01,
                                               positive_class="1"))]))
    r = rollout_from_pb(m)
    assert (r.analysis.metric, r.analysis.positive_class, r.analysis.mixture_scale) == (
        "RECALL", "1", 0.05)
    q = rollout_to_pb(r).analysis.checks[0].quality
    assert (q.metric, q.positive_class, q.margin) == (pb.ROLLOUT_METRIC_RECALL, "1", 0.01)
    stored = Rollout.from_dict(dataclasses.replace(r, state_message="x").to_dict())
    assert stored.analysis == r.analysis
