"""Which rollout step a prediction was served under (lineage.py's rule).

The rollouts and their events come from a hand-written ``Rollouts`` fake (the
seam ``LineagePeers`` injects; the gRPC adapter over real serving is exercised
in test_observability_lineage.py and the lifecycle test): a rollout of
deployment ``fraud`` created at 10:00, at step 0 (5 %) then step 1 (25 %) from
11:00, promoted at 12:00; a rollout of another deployment at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelplane.observability.lineage import (
    LineagePeers,
    PeerError,
    RolloutEventInfo,
    RolloutInfo,
    prediction_lineage,
)
from modelplane.observability.records import Environment, EvaluationRecord


def _t(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)


class _Rollouts:
    def __init__(self, rollouts: list[RolloutInfo],
                 events: dict[str, list[RolloutEventInfo]], down: bool = False) -> None:
        self._rollouts, self._events, self._down = rollouts, events, down

    async def rollouts(self, deployment: str) -> list[RolloutInfo]:
        if self._down:
            raise PeerError("ListRollouts: UNAVAILABLE: connection refused")
        return [r for r in self._rollouts if not deployment or r.deployment == deployment]

    async def events(self, rollout: str) -> list[RolloutEventInfo]:
        return self._events[rollout]


FRAUD = RolloutInfo("fraud-v3", "fraud", "fraud-model", "3", "2", _t(10))
OTHER = RolloutInfo("churn-v3", "churn", "churn-model", "3", "2", _t(10))
EVENTS = {
    "fraud-v3": [RolloutEventInfo(1, _t(10), "ROLLOUT_STATE_RUNNING", 0, 5.0),
                 RolloutEventInfo(4, _t(11), "ROLLOUT_STATE_RUNNING", 1, 25.0),
                 RolloutEventInfo(6, _t(12), "ROLLOUT_STATE_PROMOTED", 1, 100.0)],
    "churn-v3": [RolloutEventInfo(1, _t(10), "ROLLOUT_STATE_RUNNING", 0, 5.0)],
}


def _record(version: str, when: datetime, deployment: str = "fraud") -> EvaluationRecord:
    tags = {"deployment": deployment, "route": "challenger"} if deployment else {}
    return EvaluationRecord("p1", "fraud-model", version, Environment.PRODUCTION, when,
                            {"amount": 1.0}, 1, {}, tags)


async def test_the_step_is_the_last_event_at_or_before_the_prediction() -> None:
    serving = _Rollouts([FRAUD, OTHER], EVENTS)
    lin = await prediction_lineage(_record("3", _t(11, 30)), LineagePeers(serving=serving))
    assert lin.rollout is not None
    assert (lin.rollout.rollout, lin.rollout.step, lin.rollout.weight) == ("fraud-v3", 1, 25.0)
    assert (lin.rollout.role, lin.rollout.matched_by) == ("challenger", "deployment")
    assert lin.rollout.event_sequence == 4
    early = await prediction_lineage(_record("2", _t(10, 30)), LineagePeers(serving=serving))
    assert early.rollout is not None and early.rollout.step == 0
    assert early.rollout.role == "champion"


async def test_before_the_rollout_or_after_it_ended_there_is_none() -> None:
    serving = _Rollouts([FRAUD], EVENTS)
    for when in (_t(9), _t(12, 30)):
        lin = await prediction_lineage(_record("3", when), LineagePeers(serving=serving))
        assert lin.rollout is None
        assert "rollout" not in {m.part for m in lin.missing}  # determined: none
        assert lin.rollout_note.startswith("no rollout of deployment 'fraud'")


async def test_without_a_deployment_tag_the_model_and_version_match() -> None:
    serving = _Rollouts([FRAUD, OTHER], EVENTS)
    lin = await prediction_lineage(_record("3", _t(10, 30), deployment=""),
                                   LineagePeers(serving=serving))
    assert lin.rollout is not None and lin.rollout.rollout == "fraud-v3"
    assert lin.rollout.matched_by == "model_version"
    twin = RolloutInfo("fraud-v3-eu", "fraud-eu", "fraud-model", "3", "2", _t(10))
    ambiguous = await prediction_lineage(
        _record("3", _t(10, 30), deployment=""),
        LineagePeers(serving=_Rollouts([FRAUD, twin], {**EVENTS, "fraud-v3-eu":
                                                       EVENTS["churn-v3"]})))
    assert ambiguous.rollout is None
    assert ambiguous.rollout_note.startswith("could not be determined: 2 rollouts")


async def test_serving_down_or_absent_is_missing_not_a_failure() -> None:
    lin = await prediction_lineage(_record("3", _t(11)),
                                   LineagePeers(serving=_Rollouts([], {}, down=True)))
    missing = {(m.part, m.service): m.reason for m in lin.missing}
    # the registry is not configured here either: both named, each with why
    assert set(missing) == {("rollout", "serving"), ("model_version", "registry")}
    assert "UNAVAILABLE" in missing[("rollout", "serving")]
    assert missing[("model_version", "registry")] == "not configured in this service"
    absent = await prediction_lineage(_record("3", _t(11)), LineagePeers())
    assert {m.part for m in absent.missing} == {"model_version", "rollout"}
