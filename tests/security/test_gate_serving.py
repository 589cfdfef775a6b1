"""Issue #13, the gate decides on every path: serving's ``require_validation`` (default on).

A deployment pinned to, or routed to (traffic split, alias), a version without a PASS
validation is refused unless an admin gives an override reason, which is audited.
Models come straight from a real MLflow store, where the registry keeps a version's
validation as the ``modelplane.validation.status`` tag.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="mp-gate-serving-bentoml-"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelplane.kit.auth import Role, add_key
from modelplane.kit.pytest_plugin import rpc_error
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

MODEL = "gated"


def _log_versions(uri: str, artifacts: Path) -> None:
    """v1 PASS (champion), v2 no validation (challenger), v3 WARN."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("gate-serving", artifact_location=artifacts.as_uri())
    mlflow.set_experiment("gate-serving")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    for _ in range(3):
        with mlflow.start_run():
            mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model",
                                     registered_model_name=MODEL,
                                     pip_requirements=["scikit-learn"])
    client.set_model_version_tag(MODEL, "1", "modelplane.validation.status", "PASS")
    client.set_model_version_tag(MODEL, "3", "modelplane.validation.status", "WARN")
    client.set_registered_model_alias(MODEL, "champion", "1")
    client.set_registered_model_alias(MODEL, "challenger", "2")


@dataclass
class Serving:
    channel: grpc.aio.Channel
    keys: dict[str, str]
    mlflow_uri: str

    def call(self, who: str, method: str, request: Any) -> Any:
        stub = serving_pb2_grpc.ServingServiceStub(self.channel)
        return getattr(stub, method)(request, metadata=[
            ("authorization", f"Bearer {self.keys[who]}")])

    async def snapshot(self) -> list[tuple[str, str, bytes]]:
        listed = await self.call("admin", "ListDeployments", pb.ListDeploymentsRequest())
        return [(d.name, d.etag, d.traffic_split.SerializeToString(deterministic=True))
                for d in listed.deployments]


@pytest.fixture(scope="module")
async def serving(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Serving]:
    from modelplane.kit.server import running
    from modelplane.serving.runtime import ServingRuntime
    from modelplane.serving.settings import ServingSettings

    tmp = tmp_path_factory.mktemp("gate_serving")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    await asyncio.to_thread(_log_versions, uri, tmp / "artifacts")
    keys_file = tmp / "api_keys.json"
    keys = {"admin": add_key(keys_file, "ada", Role.ADMIN),
            "writer": add_key(keys_file, "wes", Role.WRITER)}
    settings = ServingSettings.from_env({
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_API_KEYS_FILE": str(keys_file),
        "MODELPLANE_SERVING_ADDR": "127.0.0.1:0", "MODELPLANE_SERVING_HTTP_ADDR": "",
        "MODELPLANE_SERVING_MODEL_SOURCE": uri,
        "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
        "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
        "MODELPLANE_GRACE_SECONDS": "1", "BENTOML_HOME": os.environ["BENTOML_HOME"]})
    assert settings.require_validation  # the default
    server = ServingRuntime(settings)
    async with running(server.spec, settings.service) as svc, \
            grpc.aio.insecure_channel(svc.address) as ch:
        yield Serving(ch, keys, uri)


def _deployment(name: str, *routes: tuple[str, str, float]) -> pb.Deployment:
    split = pb.TrafficSplit(routes=[  # alias and version are a oneof: set just one
        pb.Route(target=pb.ModelTarget(**{kind: sel}), weight=weight)
        for kind, sel, weight in routes])
    return pb.Deployment(name=name, model=MODEL, traffic_split=split)


@pytest.mark.parametrize(("name", "route"), [
    ("pinned-unvalidated", ("version", "2", 100.0)),
    ("pinned-warn", ("version", "3", 100.0)),
    ("alias-unvalidated", ("alias", "challenger", 100.0)),
])
async def test_a_deployment_of_an_unvalidated_version_is_refused(
        serving: Serving, name: str, route: tuple[str, str, float]) -> None:
    before = await serving.snapshot()
    for who, reason in (("writer", ""), ("admin", "")):
        err = await rpc_error(serving.call(who, "CreateDeployment", pb.CreateDeploymentRequest(
            deployment=_deployment(name, route), validation_override_reason=reason)))
        assert (err.code, err.reason) == ("FAILED_PRECONDITION", "VALIDATION_REQUIRED"), \
            err.message
        assert "PASS" in err.message
    err = await rpc_error(serving.call("writer", "CreateDeployment", pb.CreateDeploymentRequest(
        deployment=_deployment(name, route), validation_override_reason="trust me")))
    assert err.code == "PERMISSION_DENIED" and err.reason == "OVERRIDE_NOT_ALLOWED"
    assert await serving.snapshot() == before


async def test_routing_traffic_to_an_unvalidated_version_needs_an_audited_admin_override(
        serving: Serving, caplog: pytest.LogCaptureFixture) -> None:
    created = await serving.call("writer", "CreateDeployment", pb.CreateDeploymentRequest(
        deployment=_deployment("canary", ("alias", "champion", 100.0))))
    assert created.name == "canary"  # champion is v1, validated PASS
    before = await serving.snapshot()
    canary = pb.TrafficSplit(routes=[
        pb.Route(target=pb.ModelTarget(alias="champion"), weight=90),
        pb.Route(target=pb.ModelTarget(alias="challenger"), weight=10)])
    err = await rpc_error(serving.call("writer", "SetTrafficSplit", pb.SetTrafficSplitRequest(
        name="canary", traffic_split=canary)))
    assert err.code == "FAILED_PRECONDITION" and "challenger" in err.message
    err = await rpc_error(serving.call("writer", "SetTrafficSplit", pb.SetTrafficSplitRequest(
        name="canary", traffic_split=canary, validation_override_reason="just do it")))
    assert err.code == "PERMISSION_DENIED"
    err = await rpc_error(serving.call("writer", "UpdateDeployment", pb.UpdateDeploymentRequest(
        deployment=_deployment("canary", ("version", "2", 100.0)))))
    assert err.code == "FAILED_PRECONDITION"
    assert await serving.snapshot() == before

    with caplog.at_level(logging.WARNING, logger="modelplane.serving.audit"):
        done = await serving.call("admin", "SetTrafficSplit", pb.SetTrafficSplitRequest(
            name="canary", traffic_split=canary,
            validation_override_reason="shadow-tested offline, INC-42"))
    assert [r.target.alias for r in done.traffic_split.routes] == ["champion", "challenger"]
    [record] = [r for r in caplog.records if r.name == "modelplane.serving.audit"]
    assert record.principal == "ada" and record.deployment == "canary"  # type: ignore[attr-defined]
    assert "INC-42" in record.getMessage() and "v2" in record.getMessage()
    await serving.call("admin", "DeleteDeployment", pb.DeleteDeploymentRequest(name="canary"))


async def test_an_alias_moved_onto_an_unvalidated_version_is_not_followed(
        serving: Serving, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The gate holds after CreateDeployment too: the registry lets a writer move a
    non-protected alias anywhere, but serving keeps the loaded version until the alias
    names a version with a PASS (the MLflow source polls aliases every 2 s)."""
    from mlflow import MlflowClient

    settings_uri = serving.mlflow_uri
    client = MlflowClient(tracking_uri=settings_uri, registry_uri=settings_uri)
    client.set_registered_model_alias(MODEL, "canary", "1")  # v1: PASS
    await serving.call("writer", "CreateDeployment", pb.CreateDeploymentRequest(
        deployment=_deployment("follower", ("alias", "canary", 100.0))))

    async def served() -> set[str]:
        d = await serving.call("admin", "GetDeployment", pb.GetDeploymentRequest(
            name="follower"))
        return {m.version for m in d.loaded_models}

    assert await served() == {"1"}
    client.set_registered_model_alias(MODEL, "canary", "2")  # no validation
    await asyncio.sleep(7)  # three polls
    assert await served() == {"1"}

    # the control: the same move onto a validated version is followed
    client.set_registered_model_alias(MODEL, "canary", "1")
    await asyncio.sleep(5)
    client.set_model_version_tag(MODEL, "2", "modelplane.validation.status", "PASS")
    client.set_registered_model_alias(MODEL, "canary", "2")
    for _ in range(60):
        if await served() == {"2"}:
            break
        await asyncio.sleep(0.5)
    assert await served() == {"2"}
    await serving.call("admin", "DeleteDeployment", pb.DeleteDeploymentRequest(name="follower"))
