"""A real registry for tests: the gRPC service in-process, a real ``mlflow server`` child.

Starting MLflow is slow (10-15 s, more on a loaded machine), so the modules that
only register and read models share one per session (``shared_registry`` in the
root ``conftest.py``) and keep apart by their own model and experiment names;
modules that stop, restart or reconfigure the registry start their own with
``registry_env``. The stock MLflow client talks to it over REST with API keys,
exactly as data scientists do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from modelplane.kit.auth import Role, add_key
from modelplane.kit.clients import channel
from modelplane.kit.pytest_plugin import (
    free_port,
    rpc_error,  # noqa: F401 - the tests import it from here
)
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings
from modelplane.registry.runtime import RegistryRuntime, build
from modelplane.registry.settings import RegistrySettings
from modelplane.registry.v1 import registry_pb2_grpc

T = TypeVar("T")


@dataclass
class RegistryEnv:
    backend: str
    address: str
    mlflow_uri: str
    keys: dict[str, str]
    service: RegistryRuntime
    channels: dict[str, grpc.aio.Channel]
    keys_file: Path

    def stub(self, who: str = "admin") -> registry_pb2_grpc.ModelRegistryServiceStub:
        return registry_pb2_grpc.ModelRegistryServiceStub(self.channels[who])

    def service_key(self, name: str) -> str:
        """The key of the service identity ``name`` (a writer, as ``modelplane up`` makes
        them), added to the keys file the first time it is asked for: on a shared
        registry every module gets the same key, none replaces another's."""
        if name not in self.keys:
            self.keys[name] = add_key(self.keys_file, name, Role.WRITER, service=True)
        return self.keys[name]

    def name(self, base: str) -> str:
        return f"{base}-{self.backend}"

    @contextlib.contextmanager
    def mlflow_as(self, who: str | None) -> Iterator[Any]:
        """The stock client, authenticated with one of our API keys (None: no key)."""
        import mlflow
        from mlflow.tracking import MlflowClient

        old = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if who is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.keys[who]
        # Both URIs: a registry URI left set by another test module would send
        # registered_model_name to that module's (stopped) registry.
        mlflow.set_tracking_uri(self.mlflow_uri)
        mlflow.set_registry_uri(self.mlflow_uri)
        try:
            yield MlflowClient(tracking_uri=self.mlflow_uri, registry_uri=self.mlflow_uri)
        finally:
            if old is None:
                os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
            else:
                os.environ["MLFLOW_TRACKING_TOKEN"] = old


@contextlib.asynccontextmanager
async def registry_env(backend: str, root: Path, database_url: str | None = None,
                       backend_store_uri: str | None = None) -> AsyncIterator[RegistryEnv]:
    keys_file = root / "api_keys.json"
    keys = {role: add_key(keys_file, f"{role}-key", Role.parse(role))
            for role in ("admin", "writer", "reader")}
    # The validator service's own identity: the only one whose AttachValidation counts.
    keys["validator"] = add_key(keys_file, "validator", Role.WRITER, service=True)
    # A writer key past its expiry: refused on every path, saying so.
    keys["expired"] = add_key(keys_file, "expired-key", Role.WRITER,
                              expires=datetime.now(UTC) - timedelta(minutes=1))
    mlflow_port = free_port()
    environ = {
        **os.environ,
        "MODELPLANE_DATA_DIR": str(root / "data"),
        "MODELPLANE_AUTH": "on",
        "MODELPLANE_API_KEYS_FILE": str(keys_file),
        "MODELPLANE_REGISTRY_ADDR": "127.0.0.1:0",
        "MODELPLANE_MLFLOW_ADDR": f"127.0.0.1:{mlflow_port}",
        "MODELPLANE_REGISTRY_MLFLOW_WORKERS": "1",
        "MODELPLANE_REGISTRY_EVENT_POLL_SECONDS": "0.05",
        "MODELPLANE_REGISTRY_PROTECTED_ALIASES": "champion,production",
    }
    environ.pop("MLFLOW_TRACKING_URI", None)
    if database_url:
        environ["MODELPLANE_REGISTRY_DATABASE_URL"] = database_url
    if backend_store_uri:
        environ["MODELPLANE_REGISTRY_MLFLOW_BACKEND_STORE_URI"] = backend_store_uri
    settings = RegistrySettings.from_service(ServiceSettings.from_env("registry", environ))
    spec, service = build(settings)
    async with running(spec, settings.service) as svc:
        channels = {who: channel(svc.address, api_key=key, tracing=False)
                    for who, key in keys.items()}
        try:
            yield RegistryEnv(backend, svc.address, settings.mlflow_uri, keys, service,
                              channels, keys_file)
        finally:
            for ch in channels.values():
                await ch.close()


def log_sklearn_model(env: RegistryEnv, experiment: str, registered_name: str | None,
                      run_tags: dict[str, str]) -> tuple[str, Any]:
    """The data scientist's side: a run with a scikit-learn model, logged by the stock client."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["amount", "age", "score"])
    y = (X["amount"] + 0.5 * X["score"] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    with env.mlflow_as("writer"):
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            mlflow.set_tags(run_tags)
            mlflow.log_param("C", 1.0)
            mlflow.log_metric("accuracy", float(model.score(X, y)))
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=registered_name,
                signature=infer_signature(X, model.predict(X)),
                pip_requirements=["scikit-learn"])
    return run.info.run_id, info


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)
