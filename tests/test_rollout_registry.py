"""Issue #17, rollouts: serving's controller decides, the registry's gate promotes.

A real registry service (its MLflow tracking server, its SetAlias gate), a real
serving server on PostgreSQL loading models from the registry, serving's own
identity (a service writer key) moving aliases. What is simulated is the
evidence: an :class:`EvidenceSource` given to the server that answers the
per-version counts a test sets (observability's side is its ComputePerformance,
not under test here). Each model has v1 (PASS, @champion) and v2.

    MODELPLANE_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres \\
      uv run pytest tests/test_rollout_registry.py -q
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="mp-rollout-bentoml-"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "registry" / "tests"))

from registry_testenv import RegistryEnv, log_sklearn_model

from modelplane.kit.errors import Unavailable
from modelplane.kit.pytest_plugin import rpc_error
from modelplane.registry.v1 import registry_pb2 as rpb
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.rollout import Counts, EventType, RolloutEvent, RolloutState
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

pytestmark = pytest.mark.timeout(900)


@dataclass
class SimulatedEvidence:
    """Counts per (model, version), as a test sets them; zero when unset."""

    #: per (model, version), or (model, version, metric) for a metric but accuracy
    table: dict[tuple[str, ...], Counts] = field(default_factory=dict)
    asked: int = 0

    async def counts(self, model: str, version: str, start: datetime,
                     end: datetime, metric: str = "ACCURACY", positive_class: str = ""
                     ) -> Counts:
        self.asked += 1
        key = (model, version) if metric == "ACCURACY" else (model, version, metric)
        return self.table.get(key, Counts())

    #: per (model, version, feature): counts per value
    slices: dict[tuple[str, str, str], dict[str, Counts]] = field(default_factory=dict)

    async def slice_counts(self, model: str, version: str, start: datetime, end: datetime,
                           feature: str, metric: str = "ACCURACY", positive_class: str = ""
                           ) -> dict[str, Counts]:
        return self.slices.get((model, version, feature), {})


@dataclass
class SimulatedAlerts:
    """Observability's RaiseAlert as serving sees it: unreachable for the first
    ``fail`` calls, then it records (deduplicated by key, like observability)."""

    fail: int = 0
    calls: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    raised: dict[str, str] = field(default_factory=dict)

    async def raise_alert(self, source: str, model: str, version: str, message: str,
                          idempotency_key: str) -> None:
        self.calls.append((source, model, version, message, idempotency_key))
        if self.fail > 0:
            self.fail -= 1
            raise Unavailable("observability did not answer", reason="UNAVAILABLE")
        self.raised.setdefault(idempotency_key, message)


@dataclass
class Env:
    registry: RegistryEnv
    serving: serving_pb2_grpc.ServingServiceStub
    evidence: SimulatedEvidence
    store: DeploymentStore
    alerts: SimulatedAlerts


def _register(env: RegistryEnv, model_uri: str, name: str) -> None:
    """A new version of ``name`` from a model already logged (the stock client's
    ``register_model``, the call ``log_model(registered_model_name=...)`` makes)."""
    import mlflow

    with env.mlflow_as("writer"):
        mlflow.register_model(model_uri, name)


async def _model(env: RegistryEnv, name: str, sources: tuple[str, str], *,
                 validate_v2: bool) -> None:
    """v1 and v2 of ``name``, registered from the two runs the module logged (logging
    a run per version, 14 in all, took ~2 s each: the evidence is simulated, so what
    the versions predict does not matter)."""
    for source in sources:
        await asyncio.to_thread(_register, env, source, name)
    validator = env.stub("validator")
    for version in (1, 2) if validate_v2 else (1,):
        await validator.AttachValidation(rpb.AttachValidationRequest(
            model_name=name, version=version, validation=rpb.ValidationSummary(
                report_id=f"rep-{name}-{version}", status=rpb.VALIDATION_STATUS_PASS,
                report_uri=f"file:///reports/{name}-{version}.json", summary="checks ran")))
    await env.stub("admin").SetAlias(rpb.SetAliasRequest(model_name=name, alias="champion",
                                                         version=1))


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory,
              make_postgres_database: Callable[[str], str],
              shared_registry: RegistryEnv) -> AsyncIterator[Env]:
    from modelplane.kit.server import running
    from modelplane.serving.runtime import ServingRuntime
    from modelplane.serving.settings import ServingSettings

    root = tmp_path_factory.mktemp("rollouts")
    dsn = make_postgres_database("serving_rollouts")
    reg = shared_registry
    # serving's own identity, as `modelplane up` makes it: a service writer key
    serving_key = reg.service_key("serving")
    runs = [(await asyncio.to_thread(log_sklearn_model, reg, "rollouts", None, {}))[1]
            for _ in range(2)]
    sources = (runs[0].model_uri, runs[1].model_uri)
    for name, good in (("ro-good", True), ("ro-worse", True), ("ro-unvalidated", False),
                       ("ro-nodata", True), ("ro-resume", True), ("ro-city", True),
                       ("ro-mae", True)):
        await _model(reg, name, sources, validate_v2=good)
    settings = ServingSettings.from_env({
        "MODELPLANE_DATA_DIR": str(root / "serving"), "MODELPLANE_AUTH": "off",
        "MODELPLANE_API_KEY": serving_key,
        "MODELPLANE_SERVING_ADDR": "127.0.0.1:0", "MODELPLANE_SERVING_HTTP_ADDR": "",
        "MODELPLANE_SERVING_DATABASE_URL": dsn,
        "MODELPLANE_SERVING_MODEL_SOURCE": "registry",
        "MODELPLANE_REGISTRY_TARGET": reg.address,
        "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
        "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
        "MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS": "0.1",
        "MODELPLANE_SERVING_ROLLOUT_LEASE_SECONDS": "2",
        "MODELPLANE_GRACE_SECONDS": "1", "BENTOML_HOME": os.environ["BENTOML_HOME"]})
    evidence = SimulatedEvidence()
    alerts = SimulatedAlerts()
    server = ServingRuntime(settings, rollout_evidence=evidence, rollout_alerts=alerts)
    async with running(server.spec, settings.service) as svc, \
            grpc.aio.insecure_channel(svc.address) as ch:
        yield Env(reg, serving_pb2_grpc.ServingServiceStub(ch), evidence, server.store,
                  alerts)


def _rollout(name: str, model: str, weights: tuple[float, ...], *, margin: float = 0.02,
             min_duration: int = 0, min_samples: int = 0) -> pb.Rollout:
    return pb.Rollout(
        name=name, deployment=model, challenger=pb.ModelTarget(version="2"),
        steps=[pb.RolloutStep(weight=w, min_duration=Duration(seconds=min_duration),
                              min_samples=min_samples) for w in weights],
        analysis=pb.RolloutAnalysis(checks=[pb.RolloutCheck(quality=pb.QualityCheck(
            metric=pb.ROLLOUT_METRIC_ACCURACY, margin=margin))], alpha=0.05))


async def _deploy(env: Env, model: str) -> None:
    await env.serving.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
        name=model, model=model, fallback=pb.FallbackPolicy(timeout=Duration(seconds=30)),
        traffic_split=pb.TrafficSplit(routes=[pb.Route(target=pb.ModelTarget(alias="champion"),
                                                       weight=100)]))))


async def _until_state(env: Env, name: str, *states: int, timeout: float = 60) -> pb.Rollout:
    deadline = time.monotonic() + timeout
    while True:
        r = await env.serving.GetRollout(pb.GetRolloutRequest(name=name))
        if r.state in states:
            return r
        if time.monotonic() > deadline:
            raise AssertionError(f"rollout {name} is {pb.RolloutState.Name(r.state)}: "
                                 f"{r.state_message}")
        await asyncio.sleep(0.1)


async def _events(env: Env, name: str) -> list[pb.RolloutEvent]:
    return list((await env.serving.ListRolloutEvents(
        pb.ListRolloutEventsRequest(name=name, page_size=1000))).events)


def _types(events: list[pb.RolloutEvent]) -> list[str]:
    return [pb.RolloutEventType.Name(e.type).removeprefix("ROLLOUT_EVENT_TYPE_")
            for e in events]


async def _champion(env: Env, model: str) -> int:
    alias = await env.registry.stub("admin").GetAlias(
        rpb.GetAliasRequest(model_name=model, alias="champion"))
    return int(alias.version)


async def _split(env: Env, deployment: str) -> list[tuple[str, float]]:
    d = await env.serving.GetDeployment(pb.GetDeploymentRequest(name=deployment))
    return [(r.target.alias or f"v{r.target.version}", r.weight) for r in d.traffic_split.routes]


async def test_a_better_challenger_is_promoted_through_the_registry_gate(env: Env) -> None:
    model = "ro-good"
    await _deploy(env, model)
    env.evidence.table[(model, "1")] = Counts(3000, 2550)   # 0.85
    env.evidence.table[(model, "2")] = Counts(3000, 2700)   # 0.90
    created = await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("good", model, (5, 25, 50))))
    assert (created.challenger_version, created.champion_version) == ("2", "1")
    # the watch streams every transition and ends with the one that finishes it
    watched = [e async for e in env.serving.WatchRolloutEvents(
        pb.WatchRolloutEventsRequest(name="good"))]
    r = await env.serving.GetRollout(pb.GetRolloutRequest(name="good"))
    assert r.state == pb.ROLLOUT_STATE_PROMOTED, r.state_message
    assert _types(watched) == ["CREATED", "STEP_STARTED", "STEP_STARTED", "PROMOTING",
                               "PROMOTED"]
    assert [e.weight for e in watched][:3] == [5, 25, 50]
    assert watched == await _events(env, "good")
    paged, token = [], ""
    while True:  # pages of two, in order, nothing twice
        page = await env.serving.ListRolloutEvents(pb.ListRolloutEventsRequest(
            name="good", page_size=2, page_token=token))
        paged += page.events
        token = page.next_page_token
        if not token:
            break
    assert paged == watched
    err = await rpc_error(env.serving.ListRolloutEvents(pb.ListRolloutEventsRequest(
        name="good", page_token="not-a-token")))
    assert (err.code, err.reason) == ("INVALID_ARGUMENT", "INVALID_PAGE_TOKEN")
    assert r.evidence.likelihood_ratio >= r.evidence.threshold == 20
    assert await _champion(env, model) == 2
    assert await _split(env, model) == [("champion", 100)]
    # serving follows the moved alias: @champion now answers with version 2
    deadline = time.monotonic() + 60
    while True:
        d = await env.serving.GetDeployment(pb.GetDeploymentRequest(name=model))
        if [(m.target.alias, m.version) for m in d.loaded_models] == [("champion", "2")]:
            break
        assert time.monotonic() < deadline, d.loaded_models
        await asyncio.sleep(0.2)


async def test_a_regressor_with_a_lower_mae_is_promoted_with_maes_in_its_evidence(
        env: Env) -> None:
    """ROLLOUT_METRIC_MAE end to end in serving: the controller asks its evidence
    source for MAE (accuracy counts of the same versions say nothing), promotes
    through the registry's gate, and the evidence carries MAEs and the oriented
    difference (champion - challenger)."""
    model = "ro-mae"
    await _deploy(env, model)
    env.evidence.table[(model, "1", "MAE")] = Counts(3000, mae=8.0, rmse=10.0)
    env.evidence.table[(model, "2", "MAE")] = Counts(3000, mae=7.2, rmse=9.0)
    rollout = _rollout("mae", model, (10, 50))
    rollout.analysis.checks[0].quality.CopyFrom(pb.QualityCheck(
        metric=pb.ROLLOUT_METRIC_MAE, margin=0.5))
    created = await env.serving.CreateRollout(pb.CreateRolloutRequest(rollout=rollout))
    assert created.analysis.mixture_scale == 0.5  # MAE's default: the margin, its units
    r = await _until_state(env, "mae", pb.ROLLOUT_STATE_ROLLED_BACK, pb.ROLLOUT_STATE_PROMOTED)
    assert r.state == pb.ROLLOUT_STATE_PROMOTED, r.state_message
    promoting = next(e for e in await _events(env, "mae")
                     if e.type == pb.ROLLOUT_EVENT_TYPE_PROMOTING)
    assert "challenger MAE (lower is better) 7.2000 (n=3000) is not worse than the " \
        "champion's 8.0000" in promoting.message
    assert (r.evidence.champion_value, r.evidence.challenger_value) == (8.0, 7.2)
    assert r.evidence.difference == pytest.approx(0.8)
    assert await _champion(env, model) == 2


async def test_a_challenger_worse_overall_is_rolled_back_and_the_alias_stays(env: Env) -> None:
    model = "ro-worse"
    await _deploy(env, model)
    env.evidence.table[(model, "1")] = Counts(3000, 2550)   # 0.85
    env.evidence.table[(model, "2")] = Counts(3000, 2250)   # 0.75
    await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("worse", model, (5, 25, 50))))
    r = await _until_state(env, "worse", pb.ROLLOUT_STATE_ROLLED_BACK, pb.ROLLOUT_STATE_PROMOTED)
    assert r.state == pb.ROLLOUT_STATE_ROLLED_BACK
    assert "worse than the champion" in r.state_message
    types = _types(await _events(env, "worse"))
    # after the roll back only its alert's event (raised in observability)
    assert set(types[types.index("ROLLED_BACK") + 1:]) <= {"ALERT"}, types
    assert await _champion(env, model) == 1
    assert await _split(env, model) == [("champion", 100), ("v2", 0)]


async def test_a_challenger_worse_in_one_city_is_rolled_back_and_an_alert_raised_once(
        env: Env) -> None:
    """Issue #17: a slice check rolls back on one city although the overall check
    would promote; the alert goes to observability, and while observability is away
    the roll back is not held up: an ALERT event says so, the next ticks ask again
    with the same idempotency key."""
    model = "ro-city"
    await _deploy(env, model)
    env.alerts.fail = 2
    env.evidence.table[(model, "1")] = Counts(3000, 2550)   # 0.85 overall, both
    env.evidence.table[(model, "2")] = Counts(3000, 2550)
    fine, bad = Counts(1000, 850), Counts(1000, 550)
    env.evidence.slices[(model, "1", "city")] = {"lyon": fine, "oslo": fine, "paris": fine}
    env.evidence.slices[(model, "2", "city")] = {"lyon": fine, "oslo": bad, "paris": fine}
    rollout = _rollout("city", model, (5, 25, 50))
    rollout.analysis.checks.append(pb.RolloutCheck(slice=pb.SliceCheck(
        feature="city", margin=0.05, min_labeled=30)))
    await env.serving.CreateRollout(pb.CreateRolloutRequest(rollout=rollout))
    r = await _until_state(env, "city", pb.ROLLOUT_STATE_ROLLED_BACK, pb.ROLLOUT_STATE_PROMOTED)
    assert r.state == pb.ROLLOUT_STATE_ROLLED_BACK
    assert "city = 'oslo'" in r.state_message and "alpha/3" in r.state_message
    assert [s.value for s in r.evidence.slices] == ["lyon", "oslo", "paris"]
    assert r.evidence.slices[1].threshold == pytest.approx(60.0)
    assert r.analysis.checks[1].slice.feature == "city"
    assert await _split(env, model) == [("champion", 100), ("v2", 0)]
    # the alert is raised in observability first, its event written after: wait for
    # the event, not for the raise
    deadline = time.monotonic() + 30
    events = await _events(env, "city")
    while not any("alert raised" in e.message for e in events) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        events = await _events(env, "city")
    types = _types(events)
    assert types[types.index("ROLLED_BACK"):] == ["ROLLED_BACK", "ALERT", "ALERT"], types
    assert "trying again next tick" in events[-2].message
    assert "alert raised" in events[-1].message
    rolled_back = events[types.index("ROLLED_BACK")].sequence
    calls = [c for c in env.alerts.calls if c[0] == "rollout/city"]
    assert len(calls) == 3 and {c[4] for c in calls} == {f"city@{rolled_back}"}
    (source, m, version, message, _), = set(calls)
    assert (source, m, version) == ("rollout/city", model, "2")
    assert "oslo" in message
    await asyncio.sleep(0.5)  # and nothing more once raised
    assert len([c for c in env.alerts.calls if c[0] == "rollout/city"]) == 3
    assert (await env.serving.GetRollout(pb.GetRolloutRequest(name="city"))).state_message \
        == r.state_message


async def test_a_challenger_without_pass_is_never_promoted_and_the_refusal_is_reported(
        env: Env) -> None:
    model = "ro-unvalidated"
    await _deploy(env, model)
    changes_before = await env.registry.stub("admin").ListAliasChanges(
        rpb.ListAliasChangesRequest(model_name=model, page_size=1000))
    env.evidence.table[(model, "1")] = Counts(3000, 2550)
    env.evidence.table[(model, "2")] = Counts(3000, 2850)   # far better, but not validated
    # serving's own gate first: traffic to it needs an (audited) override
    err = await rpc_error(env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("unvalidated", model, (10, 50)))))
    assert (err.code, err.reason) == ("FAILED_PRECONDITION", "VALIDATION_REQUIRED")
    await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("unvalidated", model, (10, 50)),
        validation_override_reason="canary of an unvalidated build, by the book"))
    r = await _until_state(env, "unvalidated", pb.ROLLOUT_STATE_FAILED,
                           pb.ROLLOUT_STATE_PROMOTED)
    assert r.state == pb.ROLLOUT_STATE_FAILED
    assert "registry refused" in r.state_message and "PASS" in r.state_message, r.state_message
    revision = r.revision
    await asyncio.sleep(1.0)  # ten more ticks: it is not retried
    r = await env.serving.GetRollout(pb.GetRolloutRequest(name="unvalidated"))
    assert r.revision == revision and r.state == pb.ROLLOUT_STATE_FAILED
    assert _types(await _events(env, "unvalidated")) == ["CREATED", "STEP_STARTED",
                                                         "PROMOTING", "FAILED"]
    assert await _champion(env, model) == 1
    changes_after = await env.registry.stub("admin").ListAliasChanges(
        rpb.ListAliasChangesRequest(model_name=model, page_size=1000))
    assert list(changes_after.alias_changes) == list(changes_before.alias_changes)
    assert await _split(env, model) == [("champion", 100), ("v2", 0)]


async def test_without_actuals_the_rollout_waits_and_says_so_and_can_be_paused_and_aborted(
        env: Env) -> None:
    model = "ro-nodata"
    await _deploy(env, model)
    await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("nodata", model, (5, 50))))
    deadline = time.monotonic() + 30
    while True:
        r = await env.serving.GetRollout(pb.GetRolloutRequest(name="nodata"))
        if r.current_step == 1 and "waiting for actuals" in r.state_message:
            break
        assert time.monotonic() < deadline, r.state_message
        await asyncio.sleep(0.1)
    asked = env.evidence.asked
    await asyncio.sleep(1.5)
    r = await env.serving.GetRollout(pb.GetRolloutRequest(name="nodata"))
    assert env.evidence.asked > asked  # it kept looking ...
    assert r.state == pb.ROLLOUT_STATE_RUNNING and r.current_step == 1  # ... and waited
    assert "champion has 0, challenger 0" in r.state_message
    assert _types(await _events(env, "nodata")) == ["CREATED", "STEP_STARTED", "WAITING"]
    assert await _champion(env, model) == 1

    # one active rollout per deployment (checked in the transaction that moves its traffic)
    err = await rpc_error(env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("nodata-2", model, (5, 50)))))
    assert (err.code, err.reason) == ("FAILED_PRECONDITION", "ROLLOUT_ACTIVE")
    assert await _split(env, model) == [("champion", 50), ("v2", 50)]  # the last step's

    paused = await env.serving.PauseRollout(pb.PauseRolloutRequest(name="nodata",
                                                                   reason="holiday"))
    assert paused.state == pb.ROLLOUT_STATE_PAUSED
    await asyncio.sleep(0.5)
    still = await env.serving.GetRollout(pb.GetRolloutRequest(name="nodata"))
    assert still.revision == paused.revision  # the controller leaves it alone
    err = await rpc_error(env.serving.PauseRollout(pb.PauseRolloutRequest(name="nodata")))
    assert (err.code, err.reason) == ("FAILED_PRECONDITION", "ROLLOUT_STATE")
    await env.serving.ResumeRollout(pb.ResumeRolloutRequest(name="nodata"))
    aborted = await env.serving.AbortRollout(pb.AbortRolloutRequest(name="nodata",
                                                                    reason="no labels"))
    assert aborted.state == pb.ROLLOUT_STATE_ABORTED
    types = _types(await _events(env, "nodata"))
    # after the resume the controller may have recorded its wait again before the abort
    assert types[:5] == ["CREATED", "STEP_STARTED", "WAITING", "PAUSED", "RESUMED"], types
    assert types[-1] == "ABORTED" and set(types[5:-1]) <= {"WAITING"}, types
    assert await _split(env, model) == [("champion", 100), ("v2", 0)]
    assert await _champion(env, model) == 1

    # a rollout whose deployment is deleted fails, saying so, instead of waiting forever
    await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("nodata-gone", model, (5, 50))))
    await env.serving.DeleteDeployment(pb.DeleteDeploymentRequest(name=model))
    r = await _until_state(env, "nodata-gone", pb.ROLLOUT_STATE_FAILED)
    assert "was deleted" in r.state_message


async def test_a_promotion_cut_off_before_the_registry_call_is_finished_on_the_next_look(
        env: Env) -> None:
    """What a kill between recording PROMOTING and moving the alias leaves behind."""
    model = "ro-resume"
    await _deploy(env, model)
    await env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("resume", model, (5, 50))))
    paused = await env.serving.PauseRollout(pb.PauseRolloutRequest(name="resume"))
    r = env.store.get_rollout("resume")
    assert r is not None and r.revision == paused.revision
    promoting = dataclasses.replace(r, state=RolloutState.PROMOTING, revision=r.revision + 1)
    when = r.update_time or r.start_time
    assert when is not None
    env.store.save_rollout(promoting, r.revision, RolloutEvent(
        "resume", promoting.revision, when, EventType.PROMOTING,
        RolloutState.PROMOTING, r.current_step, 5.0, "promoting (then the process died)",
        "controller:gone"))
    done = await _until_state(env, "resume", pb.ROLLOUT_STATE_PROMOTED, pb.ROLLOUT_STATE_FAILED)
    assert done.state == pb.ROLLOUT_STATE_PROMOTED, done.state_message
    assert await _champion(env, model) == 2
    assert _types(await _events(env, "resume"))[-2:] == ["PROMOTING", "PROMOTED"]


async def test_bad_rollouts_are_refused_naming_every_field(env: Env) -> None:
    bad = _rollout("Bad Name", "ro-good", (50, 25))
    bad.analysis.alpha = 0.9
    bad.analysis.checks[0].quality.margin = -0.1
    err = await rpc_error(env.serving.CreateRollout(pb.CreateRolloutRequest(rollout=bad)))
    assert (err.code, err.reason) == ("INVALID_ARGUMENT", "INVALID_ROLLOUT")
    assert {v.field for v in err.field_violations} == {
        "rollout.name", "rollout.steps[1].weight", "rollout.analysis.alpha",
        "rollout.analysis.checks[0].quality.margin"}
    err = await rpc_error(env.serving.CreateRollout(pb.CreateRolloutRequest(
        rollout=_rollout("nodeploy", "no-such-deployment", (5,)))))
    assert err.code == "NOT_FOUND"
    err = await rpc_error(env.serving.GetRollout(pb.GetRolloutRequest(name="nope")))
    assert (err.code, err.reason) == ("NOT_FOUND", "ROLLOUT_NOT_FOUND")
