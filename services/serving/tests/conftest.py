"""Fixtures for the serving tests: a real MLflow registry with real models, a real server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# BentoML reads its home once, at import: a throwaway model store for the whole session.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mp-serving-tests-"))
os.environ.setdefault("BENTOML_HOME", str(_SESSION_DIR / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from modelplane.serving.settings import ServingSettings

N_FEATURES = 4

#: Requirements given to the test models that no Bento is built from. Left out, MLflow infers
#: them on each log_model (``uv export`` of this workspace: ~2 s a model here), which only the
#: Bento test needs (it checks the inferred ones of its scikit-learn model).
PYFUNC_REQUIREMENTS = ["mlflow", "cloudpickle", "numpy", "pandas"]


def make_data(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int64)
    return X, y


def _broken_models() -> dict[str, Any]:
    """pyfunc models that misbehave (defined in a function so cloudpickle stores them by value)."""
    import time

    import mlflow.pyfunc

    class Raises(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            raise RuntimeError("this model is broken")

    class Hangs(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            time.sleep(60)
            return [0] * len(model_input)

    class Garbage(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return "not a prediction"

    class Constant(mlflow.pyfunc.PythonModel):
        """A baseline: always predicts 7."""

        def predict(self, context, model_input, params=None):
            return np.full(len(model_input), 7, dtype=np.int64)

    return {"raises": Raises(), "hangs": Hangs(), "garbage": Garbage(), "constant": Constant()}


class Registry:
    """A real MLflow tracking store (SQLite) with registered models and aliases."""

    def __init__(self, uri: str) -> None:
        from mlflow import MlflowClient

        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        #: this store's experiment for the runs logged here (set by the session fixture)
        self.experiment_id: str | None = None

    def use(self) -> None:
        """Point the process's MLflow at this store and its experiment, each time: a test
        module run before on the same worker may have left another store's experiment id
        in ``MLFLOW_EXPERIMENT_ID`` (which ``start_run`` would look up here, and fail)."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        if self.experiment_id is not None:
            mlflow.set_experiment(experiment_id=self.experiment_id)

    def log_sklearn(self, name: str, C: float = 1.0, seed: int = 0) -> str:
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature
        from sklearn.linear_model import LogisticRegression

        X, y = make_data(seed)
        clf = LogisticRegression(C=C).fit(X, y)
        self.use()
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(clf, name="model", registered_model_name=name,
                                            signature=infer_signature(X, clf.predict(X)))
        return str(info.registered_model_version)

    def log_pyfunc(self, name: str, kind: str) -> str:
        import mlflow
        import mlflow.pyfunc

        self.use()
        with mlflow.start_run():
            info = mlflow.pyfunc.log_model(name="model", python_model=_broken_models()[kind],
                                           registered_model_name=name,
                                           pip_requirements=PYFUNC_REQUIREMENTS)
        return str(info.registered_model_version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)


@pytest.fixture(scope="session")
def registry() -> Registry:
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    reg = Registry(f"sqlite:///{_SESSION_DIR / 'mlflow.db'}")
    import mlflow

    mlflow.set_tracking_uri(reg.uri)
    # Artifacts under the session dir, not ./mlruns of whoever runs the tests.
    reg.experiment_id = reg.client.create_experiment(
        "serving-tests", artifact_location=(_SESSION_DIR / "artifacts").as_uri())
    mlflow.set_experiment("serving-tests")
    reg.log_sklearn("churn", C=1.0, seed=0)       # v1
    reg.log_sklearn("churn", C=0.01, seed=1)      # v2
    reg.set_alias("churn", "champion", "1")
    reg.set_alias("churn", "challenger", "2")
    reg.log_pyfunc("broken", "raises")           # v1
    reg.log_pyfunc("broken", "hangs")            # v2
    reg.log_pyfunc("broken", "garbage")          # v3
    reg.log_pyfunc("baseline", "constant")       # v1
    return reg


def serving_settings(tmp: Path, registry_uri: str, **env: str) -> ServingSettings:
    environ = {"MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_AUTH": "off",
               "MODELPLANE_SERVING_ADDR": "127.0.0.1:0",
               "MODELPLANE_SERVING_HTTP_ADDR": "127.0.0.1:0",
               "MODELPLANE_SERVING_MODEL_SOURCE": registry_uri,
               "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
               "MODELPLANE_SERVING_OBSERVABILITY_TARGET": "none",
               "MODELPLANE_SERVING_ALIAS_POLL_SECONDS": "0.2",
               "MODELPLANE_SERVING_LOG_FLUSH_SECONDS": "0.05",
               # These tests serve unvalidated versions on purpose (routing, fallback,
               # broken models); the validation requirement is tested in tests/security.
               "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off",
               "BENTOML_HOME": os.environ["BENTOML_HOME"], **env}
    return ServingSettings.from_env(environ)


@contextlib.asynccontextmanager
async def run_server(settings: ServingSettings, **inject: Any) -> AsyncIterator[Any]:
    from modelplane.kit.server import running
    from modelplane.serving.runtime import ServingRuntime

    server = ServingRuntime(settings, **inject)
    async with running(server.spec, settings.service) as svc:
        server.grpc_address = svc.address
        yield server


@pytest.fixture
def make_settings(tmp_path: Path, registry: Registry) -> Callable[..., ServingSettings]:
    def make(**env: str) -> ServingSettings:
        return serving_settings(tmp_path, registry.uri, **env)
    return make


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)




def log_two_versions(mlflow_uri: str, key: str, model: str, experiment: str) -> None:
    """Register two scikit-learn versions of ``model`` (v1 C=1.0, v2 C=0.01) with the
    stock mlflow client, as a data scientist would; the process's MLflow URIs and
    token are put back afterwards."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    old = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = key
    previous_uri, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        mlflow.set_tracking_uri(mlflow_uri)
        mlflow.set_registry_uri(mlflow_uri)
        mlflow.set_experiment(experiment)
        for seed, C in ((0, 1.0), (1, 0.01)):
            X, y = make_data(seed)
            clf = LogisticRegression(C=C).fit(X, y)
            with mlflow.start_run():
                mlflow.sklearn.log_model(clf, name="model", registered_model_name=model,
                                         signature=infer_signature(X, clf.predict(X)),
                                         pip_requirements=["scikit-learn"])
    finally:
        mlflow.set_tracking_uri(previous_uri)
        mlflow.set_registry_uri(previous_registry)
        if old is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = old


class ServingHelpers:
    """Helpers for the test modules (importlib mode: they cannot import conftest)."""

    make_data = staticmethod(make_data)
    run_server = staticmethod(run_server)
    wait_until = staticmethod(wait_until)
    serving_settings = staticmethod(serving_settings)
    log_two_versions = staticmethod(log_two_versions)


@pytest.fixture(scope="session")
def sv() -> type[ServingHelpers]:
    return ServingHelpers


def records_from_arrow(ipc: bytes) -> list[Any]:
    """The rows of a LogRecordsRequest.arrow_ipc stream as EvaluationRecord messages,
    read by the column names and types the contract documents."""
    import pyarrow as pa

    from modelplane.observability.v1 import observability_pb2 as obs
    from modelplane.serving.adapters.observability_sink import _set_value

    table = pa.ipc.open_stream(ipc).read_all()
    out = []
    for row in table.to_pylist():
        rec = obs.EvaluationRecord(
            prediction_id=row.pop("prediction_id"), model=row.pop("model"),
            version=row.pop("version"), environment=row.pop("environment"),
            trace_id=row.pop("trace_id", None) or "", span_id=row.pop("span_id", None) or "")
        rec.prediction_time.FromDatetime(row.pop("prediction_time"))
        latency = row.pop("latency_us", None)
        if latency is not None:
            rec.latency.FromMicroseconds(latency)
        pred = row.pop("prediction", None)
        for name, value in [("prediction", pred), *row.items()]:
            if value is None:
                continue
            kind, _, key = name.partition(".")
            if kind == "tag":
                rec.tags[key] = value
            elif kind == "score":
                rec.scores[key] = value
            else:
                assert kind in ("prediction", "feature"), name
                _set_value(rec.prediction if kind == "prediction" else rec.features[key], value)
        out.append(rec)
    return out


class ObservabilityStandIn:
    """A real gRPC server speaking observability's LogRecords contract (both the
    per-record and the columnar ``arrow_ipc`` form), that can go down and come back
    on the same port. It stores what it receives, deduplicating by id; ``reject``
    (record -> (field, reason) or None) makes it refuse records as observability does;
    ``columnar=False`` makes it an observability older than ``arrow_ipc`` (ignores it)."""

    def __init__(self, *, reject: Callable[[Any], tuple[str, str] | None] | None = None,
                 columnar: bool = True) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.records: dict[str, Any] = {}
        self.received = 0
        self.arrow_messages = 0
        self.reject = reject
        self.columnar = columnar
        self._server: Any = None

    async def start(self) -> None:
        import grpc

        from modelplane.observability.v1 import observability_pb2 as obs
        from modelplane.observability.v1 import observability_pb2_grpc

        outer = self

        class Servicer(observability_pb2_grpc.ObservabilityServiceServicer):
            async def LogRecords(self, request_iterator, context):
                accepted = duplicate = index = 0
                rejected = []
                async for req in request_iterator:
                    records = list(req.records)
                    if req.arrow_ipc and outer.columnar:
                        outer.arrow_messages += 1
                        records = records_from_arrow(req.arrow_ipc)
                    for rec in records:
                        outer.received += 1
                        problem = outer.reject(rec) if outer.reject else None
                        if problem is not None:
                            rejected.append(obs.RejectedRecord(
                                index=index, prediction_id=rec.prediction_id,
                                field=problem[0], reason=problem[1]))
                        elif rec.prediction_id in outer.records:
                            duplicate += 1
                        else:
                            outer.records[rec.prediction_id] = rec
                            accepted += 1
                        index += 1
                return obs.LogRecordsResponse(accepted_count=accepted, duplicate_count=duplicate,
                                              rejected=rejected)

        self._server = grpc.aio.server()
        observability_pb2_grpc.add_ObservabilityServiceServicer_to_server(Servicer(),
                                                                          self._server)
        self._server.add_insecure_port(self.address)
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None


ServingHelpers.ObservabilityStandIn = ObservabilityStandIn  # type: ignore[attr-defined]
