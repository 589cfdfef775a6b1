"""Exported Bentos serve: ``ExportBento`` for a scikit-learn model and for an MLflow pyfunc
model, each Bento run with ``bentoml serve`` from the local BentoML store (the current
environment already has its packages, so no network), answering the same rows as the
platform's Open Inference Protocol endpoint does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np

from modelplane.kit.pytest_plugin import free_port
from modelplane.serving.bento_export import parse_requirements
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

PYFUNC = "linear_pyfunc"
WEIGHTS = [1.0, -2.0, 0.5, 3.0]


def _linear_model() -> Any:
    """A pyfunc model (defined in a function so cloudpickle stores it by value)."""
    import mlflow.pyfunc

    class Linear(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            x = np.asarray(model_input, dtype=np.float64)
            return x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.25

    return Linear()


# What the data scientist recorded with the pyfunc model; the Bento must carry these.
PYFUNC_REQUIREMENTS = [f"mlflow=={version('mlflow')}", f"cloudpickle=={version('cloudpickle')}",
                       f"numpy=={version('numpy')}", f"pandas=={version('pandas')}"]


def _log_pyfunc(registry: Any) -> None:
    import mlflow
    import mlflow.pyfunc

    registry.use()  # its store and experiment: another module may have left its own
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=_linear_model(),
                                       registered_model_name=PYFUNC,
                                       pip_requirements=PYFUNC_REQUIREMENTS)
    registry.set_alias(PYFUNC, "champion", str(info.registered_model_version))


@contextlib.asynccontextmanager
async def bentoml_serve(bento_tag: str, log: Path) -> AsyncIterator[str]:
    """``bentoml serve <tag>`` from the local store, in the current environment."""
    port = free_port()
    bentoml_cli = Path(sys.executable).parent / "bentoml"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(bentoml_cli), "serve", bento_tag, "--host", "127.0.0.1", "--port", str(port),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env={**os.environ},
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            for _ in range(900):
                if proc.returncode is not None:
                    raise AssertionError(f"bentoml serve exited: {log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"bentoml serve never ready: {log.read_text()[-3000:]}")
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this test started
                await proc.wait()


def _bento_requirements(bento_tag: str) -> list[str]:
    import bentoml

    path = Path(bentoml.bentos.get(bento_tag).path) / "env" / "python" / "requirements.txt"
    return parse_requirements(path.read_text())


async def test_exported_bentos_serve_the_platforms_predictions(make_settings: Any, sv: Any,
                                                              registry: Any,
                                                              tmp_path: Path) -> None:
    _log_pyfunc(registry)
    X = np.asarray(sv.make_data(7, n=16)[0], dtype=np.float64)
    exported: dict[str, Any] = {}
    platform: dict[str, list[Any]] = {}
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            for name, model in (("churn", "churn"), ("lin", PYFUNC)):
                await stub.CreateDeployment(pb.CreateDeploymentRequest(
                    deployment=pb.Deployment(name=name, model=model)))
                exported[name] = await stub.ExportBento(pb.ExportBentoRequest(
                    name=name,
                    output_path=str(tmp_path / "serving" / "exports" / f"{name}.bento")),
                    timeout=300)
        async with httpx.AsyncClient(base_url=f"http://{server.http_address}",
                                     timeout=30) as http:
            for name in exported:
                r = await http.post(f"/v2/models/{name}/infer", json={"inputs": [
                    {"name": "x", "shape": list(X.shape), "datatype": "FP64",
                     "data": X.ravel().tolist()}]})
                assert r.status_code == 200, r.text
                platform[name] = r.json()["outputs"][0]["data"]

    # The Bentos' packages are the models' own MLflow requirements.
    pyfunc_reqs = _bento_requirements(exported["lin"].bento_tag)
    assert set(PYFUNC_REQUIREMENTS) <= set(pyfunc_reqs), pyfunc_reqs
    sklearn_reqs = _bento_requirements(exported["churn"].bento_tag)
    assert any(r.startswith("scikit-learn==") for r in sklearn_reqs), sklearn_reqs
    assert any(r.startswith("mlflow") for r in sklearn_reqs)  # MLflow records it for every model

    async with (bentoml_serve(exported["churn"].bento_tag, tmp_path / "churn.log") as churn,
                bentoml_serve(exported["lin"].bento_tag, tmp_path / "lin.log") as lin,
                httpx.AsyncClient(timeout=30) as http):
        bento = {}
        for name, url in (("churn", churn), ("lin", lin)):
            r = await http.post(f"{url}/predict", json={"inputs": X.tolist()})
            assert r.status_code == 200, r.text
            bento[name] = r.json()

    assert bento["churn"] == platform["churn"]  # the same scikit-learn model, same labels
    np.testing.assert_allclose(bento["lin"], platform["lin"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(platform["lin"], X @ np.array(WEIGHTS) + 0.25, atol=1e-12)
