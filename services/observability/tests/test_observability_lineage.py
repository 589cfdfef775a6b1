"""GetPredictionLineage against a real registry, with the other peers down.

A real registry (gRPC service + ``mlflow server`` child) holds a version
registered from a run with lineage (dataset id, feature refs) and a validation
summary attached by the validator's identity. Observability (auth on, the same
keys file, its own reader key to call the registry) holds a prediction of that
version; the featurestore, validator and serving targets are a port nobody
listens on. The lineage must carry the record, the run id, the dataset id and
the validation report id from the registry, and list the dataset's hash, the
validator's report and the rollout as missing with the reason; an unknown
prediction id is NOT_FOUND; a reader key may call it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "registry" / "tests"))

from obs_test_data import T0, log, log_actuals, record, rpc_error
from registry_testenv import RegistryEnv, in_thread, log_sklearn_model

from modelplane.kit.clients import channel
from modelplane.kit.errors import InvalidArgument, NotFound, Unauthenticated
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.observability.main import build
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2 as pb
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc
from modelplane.registry.v1 import registry_pb2 as rpb

pytestmark = pytest.mark.timeout(900)  # the first test pays for starting MLflow


@dataclass
class Env:
    registry: RegistryEnv
    address: str
    model: str
    channels: dict[str | None, Any] = field(default_factory=dict)

    def stub(self, who: str | None = "reader") -> pb_grpc.ObservabilityServiceStub:
        """A stub sending the registry env's key of ``who`` (None: no key)."""
        if who not in self.channels:  # kept: a channel nobody holds is closed
            key = self.registry.keys[who] if who else None
            self.channels[who] = channel(self.address, api_key=key, tracing=False)
        return pb_grpc.ObservabilityServiceStub(self.channels[who])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory,
              shared_registry: RegistryEnv) -> AsyncIterator[Env]:
    root = tmp_path_factory.mktemp("lineage")
    reg = shared_registry
    model = reg.name("lineage")
    run_id, _ = await in_thread(log_sklearn_model, reg, "exp-lineage", None, {})
    mv = await reg.stub("writer").CreateModelVersion(rpb.CreateModelVersionRequest(
        model_name=model, run_id=run_id, lineage=rpb.Lineage(
            dataset_id="ds-lineage-7",
            feature_refs=["transactions:amount", "customers:age"])))
    await reg.stub("validator").AttachValidation(rpb.AttachValidationRequest(
        model_name=model, version=mv.version, validation=rpb.ValidationSummary(
            report_id="vr-lineage-1", status=rpb.VALIDATION_STATUS_PASS,
            report_uri="file:///reports/vr-lineage-1.json", summary="checks ran")))
    down = f"127.0.0.1:{_closed_port()}"
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(root / "obs"), "MODELPLANE_AUTH": "on",
        "MODELPLANE_API_KEYS_FILE": str(reg.keys_file),
        "MODELPLANE_API_KEY": reg.keys["reader"],
        "MODELPLANE_REGISTRY_TARGET": reg.address,
        "MODELPLANE_FEATURESTORE_TARGET": down, "MODELPLANE_VALIDATOR_TARGET": down,
        "MODELPLANE_SERVING_TARGET": down}).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr=None, monitor_tick_seconds=0)
    spec, _ = build(settings)
    async with running(spec, svc) as server:
        env = Env(reg, server.address, model)
        yield env
        for ch in env.channels.values():
            await ch.close()


async def test_lineage_of_a_logged_prediction_names_run_dataset_and_validation_report(
        env: Env) -> None:
    writer = env.stub("writer")
    rec = record("lin-1", env.model, "1", pb.ENVIRONMENT_PRODUCTION, T0,
                 {"amount": 12.5, "city": "nice"}, 1,
                 tags={"deployment": "fraud", "route": "challenger"})
    rec.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await log(writer, [rec])
    await log_actuals(writer, [("lin-1", 0)])
    lin = await env.stub("reader").GetPredictionLineage(
        pb.GetPredictionLineageRequest(prediction_id="lin-1"))
    assert (lin.model, lin.version) == (env.model, "1")
    assert (lin.deployment, lin.route) == ("fraud", "challenger")
    assert lin.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert lin.record.features["amount"].double_value == 12.5
    assert lin.record.prediction.int64_value == 1
    assert lin.record.actual.value.int64_value == 0
    # from the registry: the run, the dataset, the feature refs, the validation report
    mv = await env.registry.stub("reader").GetModelVersion(rpb.GetModelVersionRequest(
        model_name=env.model, version=1))
    assert lin.model_version.run_id == mv.lineage.run_id != ""
    assert lin.model_version.dataset_id == "ds-lineage-7"
    assert list(lin.model_version.feature_refs) == ["transactions:amount", "customers:age"]
    assert lin.validation.report_id == "vr-lineage-1"
    assert lin.validation.status == "PASS"
    assert not lin.validation.report_fetched
    # the peers that are down: named, with why; the rest of the answer stands
    missing = {(m.part, m.service): m.reason for m in lin.missing}
    assert set(missing) == {("dataset", "featurestore"), ("validation_report", "validator"),
                            ("rollout", "serving")}
    assert "UNAVAILABLE" in missing[("dataset", "featurestore")]
    assert "ds-lineage-7" in missing[("dataset", "featurestore")]
    assert "vr-lineage-1" in missing[("validation_report", "validator")]
    assert not lin.HasField("dataset") and not lin.HasField("rollout")
    assert lin.rollout_note.startswith("could not be determined")


async def test_lineage_of_an_unknown_version_or_prediction(env: Env) -> None:
    writer = env.stub("writer")
    await log(writer, [record("lin-2", env.model, "9", pb.ENVIRONMENT_PRODUCTION, T0,
                              {"amount": 1.0}, 0)])
    lin = await env.stub("reader").GetPredictionLineage(
        pb.GetPredictionLineageRequest(prediction_id="lin-2"))
    missing = {(m.part, m.service): m.reason for m in lin.missing}
    assert "NOT_FOUND" in missing[("model_version", "registry")]
    assert not lin.HasField("model_version") and not lin.HasField("validation")
    assert lin.deployment == ""  # the record names none
    unknown = await rpc_error(env.stub("reader").GetPredictionLineage(
        pb.GetPredictionLineageRequest(prediction_id="no-such-prediction")))
    assert isinstance(unknown, NotFound) and unknown.reason == "RECORD_NOT_FOUND"
    assert unknown.metadata == {"prediction_id": "no-such-prediction"}
    empty = await rpc_error(env.stub("reader").GetPredictionLineage(
        pb.GetPredictionLineageRequest()))
    assert isinstance(empty, InvalidArgument)
    anonymous = await rpc_error(env.stub(None).GetPredictionLineage(
        pb.GetPredictionLineageRequest(prediction_id="lin-2")))
    assert isinstance(anonymous, Unauthenticated)
