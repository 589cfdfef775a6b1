"""Open Inference Protocol REST through the gateway, against the real serving service.

Serving runs for real (its gRPC server and its OIP REST listener, a scikit-learn model
from a SQLite MLflow registry, API keys on); the gateway runs on a real uvicorn
server in front of it. tritonclient.http, unmodified, talks to the gateway.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

# BentoML reads its home once, at import: a throwaway model store for this module.
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="mp-gateway-oip-bentoml-"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import grpc
import httpx
import numpy as np
import pytest
import uvicorn
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelplane.gateway.app import create_app
from modelplane.gateway.settings import GatewaySettings
from modelplane.kit.auth import Role, add_key
from modelplane.kit.telemetry import setup_tracing

pytestmark = pytest.mark.timeout(300)

TRACE_ID = "5af92f3577b34da6a3ce929d0e0e4799"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
exporter = InMemorySpanExporter()


setup_tracing("gateway-oip-test", [SimpleSpanProcessor(exporter)])


def _data(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] - X[:, 2] > 0).astype(np.int64)


def _log_model(uri: str, artifacts: Path) -> None:
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("gateway-oip", artifact_location=artifacts.as_uri())
    mlflow.set_experiment("gateway-oip")
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(clf, name="model", registered_model_name="churn",
                                 signature=infer_signature(X, clf.predict(X)),
                                 pip_requirements=["scikit-learn"])
    client.set_registered_model_alias("churn", "champion", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve_gateway(settings: GatewaySettings) -> tuple[uvicorn.Server, asyncio.Task[Any]]:
    app = create_app(settings)
    host, port = settings.host_port
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, lifespan="on",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    from modelplane.kit.server import running
    from modelplane.serving.runtime import ServingRuntime
    from modelplane.serving.settings import ServingSettings
    from modelplane.serving.v1 import serving_pb2 as pb
    from modelplane.serving.v1 import serving_pb2_grpc

    tmp = tmp_path_factory.mktemp("gateway_oip")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    await asyncio.to_thread(_log_model, uri, tmp / "artifacts")
    keys_file = tmp / "api_keys.json"
    keys = {"admin": add_key(keys_file, "ada", Role.ADMIN),
            "reader": add_key(keys_file, "rita", Role.READER)}
    env = {"MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_API_KEYS_FILE": str(keys_file),
           "MODELPLANE_SERVING_ADDR": "127.0.0.1:0",
           "MODELPLANE_SERVING_HTTP_ADDR": "127.0.0.1:0",
           "MODELPLANE_SERVING_MODEL_SOURCE": uri,
           "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
           "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
           "MODELPLANE_GRACE_SECONDS": "1",
           # the OIP plumbing under test, not the validation gate (tests/security)
           "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off",
           "BENTOML_HOME": os.environ["BENTOML_HOME"]}
    settings = ServingSettings.from_env(env)
    serving = ServingRuntime(settings)
    async with running(serving.spec, settings.service) as svc:
        async with grpc.aio.insecure_channel(svc.address) as ch:
            d = await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=pb.Deployment(name="churn", model="churn")),
                metadata=[("authorization", f"Bearer {keys['admin']}")])
            assert d.state == pb.DEPLOYMENT_STATE_READY
        gw_env = {**env, "MODELPLANE_GATEWAY_ADDR": f"127.0.0.1:{_free_port()}",
                  "MODELPLANE_SERVING_TARGET": svc.address,
                  "MODELPLANE_SERVING_HTTP_TARGET": serving.http_address,
                  "MODELPLANE_GATEWAY_MAX_BODY_BYTES": "200000"}
        gw_settings = GatewaySettings.from_env(gw_env)
        server, task = await _serve_gateway(gw_settings)
        host, port = gw_settings.host_port
        try:
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=30) as http:
                yield {"http": http, "gateway": f"{host}:{port}", "keys": keys,
                       "serving_http": serving.http_address, "env": gw_env}
        finally:
            server.should_exit = True
            await task


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _infer_body(X: np.ndarray) -> dict[str, Any]:
    return {"id": "r1", "inputs": [{"name": "input-0", "datatype": "FP64",
                                    "shape": list(X.shape), "data": X.reshape(-1).tolist()}]}


async def test_tritonclient_http_works_through_the_gateway(stack) -> None:
    """The stock OIP REST client, pointed at the gateway: health, metadata, binary and
    JSON tensors, with the answer serving gives directly."""
    import tritonclient.http as thttp

    X, _ = _data(5, 3)
    key = stack["keys"]["reader"]

    def client(url: str) -> tuple[Any, Any, Any]:
        c = thttp.InferenceServerClient(url)
        # a fresh dict per call: tritonclient adds Inference-Header-Content-Length to it
        assert c.is_server_live() and c.is_server_ready()
        assert c.is_model_ready("churn", headers=_auth(key))
        meta = c.get_model_metadata("churn", headers=_auth(key))
        inp = thttp.InferInput("input-0", list(X.shape), "FP64")
        inp.set_data_from_numpy(X)  # binary tensor extension
        binary = c.infer("churn", [inp], headers=_auth(key))
        inp_json = thttp.InferInput("input-0", list(X.shape), "FP64")
        inp_json.set_data_from_numpy(X, binary_data=False)
        out = thttp.InferRequestedOutput("output-0", binary_data=False)
        as_json = c.infer("churn", [inp_json], outputs=[out], headers=_auth(key))
        c.close()
        return meta, binary.as_numpy("output-0"), as_json

    _, direct, _ = await asyncio.to_thread(client, stack["serving_http"])
    meta, binary, as_json = await asyncio.to_thread(client, stack["gateway"])
    assert meta["name"] == "churn" and meta["inputs"][0]["shape"] == [-1, 4]
    np.testing.assert_array_equal(binary, direct)
    np.testing.assert_array_equal(as_json.as_numpy("output-0"), direct)
    params = as_json.get_response()["parameters"]
    assert params["model_version"] == "1" and len(params["prediction_id"]) == 32


async def test_one_request_is_one_trace_gateway_span_parent_of_servings(stack) -> None:
    exporter.clear()
    X, _ = _data(3, 2)
    r = await stack["http"].post("/v2/models/churn/infer", json=_infer_body(X), headers={
        **_auth(stack["keys"]["reader"]), "traceparent": TRACEPARENT, "x-request-id": "req-7"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "req-7"
    spans = exporter.get_finished_spans()
    gateway = [s for s in spans if s.name == "POST /v2/models/{name}/infer"
               and s.instrumentation_scope.name == "modelplane.gateway"]
    serving = [s for s in spans if s.name == "POST /v2/models/{name}/infer"
               and s.instrumentation_scope.name == "modelplane.serving.oip_http"]
    assert len(gateway) == 1 and len(serving) == 1, [(s.name, s.instrumentation_scope.name)
                                                      for s in spans]
    assert {format(s.context.trace_id, "032x") for s in gateway + serving} == {TRACE_ID}
    assert serving[0].parent is not None
    assert serving[0].parent.span_id == gateway[0].context.span_id
    assert gateway[0].parent is not None and gateway[0].parent.span_id == 0x00f067aa0ba902b7


@pytest.mark.parametrize("headers, status, reason", [
    ({}, 401, "API_KEY_MISSING"),
    ({"authorization": "Bearer nope"}, 401, "API_KEY_INVALID"),
])
async def test_the_gateway_checks_the_key(stack, headers, status, reason) -> None:
    X, _ = _data(1, 1)
    r = await stack["http"].post("/v2/models/churn/infer", json=_infer_body(X),
                                 headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["reason"] == reason and r.json()["error"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    # health needs no key, like serving's own (probes)
    assert (await stack["http"].get("/v2/health/live")).json() == {"live": True}


async def test_servings_errors_are_passed_on(stack) -> None:
    http, key = stack["http"], stack["keys"]["reader"]
    r = await http.post("/v2/models/nope/infer", json={"inputs": []}, headers=_auth(key))
    assert r.status_code == 404
    assert r.json()["reason"] == "DEPLOYMENT_NOT_FOUND" and "nope" in r.json()["error"]
    r = await http.post("/v2/models/churn/infer", headers=_auth(key), json={"inputs": [
        {"name": "input-0", "datatype": "FP64", "shape": [2, 4], "data": [1.0, 2.0]}]})
    assert r.status_code == 400 and r.json()["reason"] == "INPUT_SHAPE_INVALID", r.text
    huge = b'{"inputs": [{"name": "a", "datatype": "INT64", "shape": [1], "data": [1e400]}]}'
    for body in (b'{"inputs": ["x"]}', b"[" * 100_000, huge):
        r = await http.post("/v2/models/churn/infer", headers=_auth(key), content=body)
        assert r.status_code == 400, (body[:40], r.status_code, r.text)
        assert r.json()["error"]


async def test_unknown_routes_wrong_methods_and_big_bodies(stack) -> None:
    http, key = stack["http"], stack["keys"]["reader"]
    r = await http.get("/v2/nothing/here", headers=_auth(key))
    assert r.status_code == 404 and r.json()["reason"] == "ROUTE_NOT_FOUND"
    r = await http.get("/v2/models/churn/infer", headers=_auth(key))
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = await http.post("/v2/models/churn/infer", headers=_auth(key), content=b" " * 300_000)
    assert r.status_code == 413 and r.json()["reason"] == "REQUEST_TOO_LARGE"


async def test_unreachable_serving_is_a_503(stack) -> None:
    env = {**stack["env"], "MODELPLANE_SERVING_HTTP_TARGET": f"127.0.0.1:{_free_port()}"}
    app = create_app(GatewaySettings.from_env(env))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as http:
        r = await http.get("/v2/models/churn", headers=_auth(stack["keys"]["reader"]))
    assert r.status_code == 503
    assert r.json() == {"error": "service 'serving' (OIP REST) is unavailable",
                        "reason": "SERVICE_UNAVAILABLE", "service": "serving"}


async def test_openapi_documents_the_oip_routes(stack) -> None:
    document = (await stack["http"].get("/openapi.json")).json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["operationId"] == "OIP_ModelInfer"
    assert infer["x-modelplane-access"] == "reader"
    assert document["paths"]["/v2/health/live"]["get"]["security"] == []
    assert "oip.InferenceRequest" in document["components"]["schemas"]
