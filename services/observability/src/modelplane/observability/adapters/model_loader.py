"""Registered model versions as model objects: the registry's ``ResolveModelUri``
(gRPC) names the artifacts, the stock MLflow client downloads them, and the
native flavour loads them — the path the validator's ``MlflowModelLoader`` takes.

scikit-learn models load with ``mlflow.sklearn`` (so ``predict_proba`` and the
estimator's trees are there), anything else as an ``mlflow.pyfunc`` model.
Downloads are cached on disk per (model, version) (registered versions do not
change), loaded models in memory (the last ``cache_size``).

Blocking: called from the analysis threads. The gRPC call runs on the
service's event loop (``asyncio.run_coroutine_threadsafe``), where its channel
lives.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import grpc

from modelplane.kit.errors import ModelplaneError
from modelplane.kit.status import raise_from_rpc_error
from modelplane.observability.model_explanation import ModelUnavailable
from modelplane.registry.v1 import registry_pb2 as rpb
from modelplane.registry.v1 import registry_pb2_grpc as rpb_grpc


class RegistryModelLoader:
    """A :class:`~modelplane.observability.model_explanation.ModelLoader` over the
    registry service."""

    def __init__(self, channel: grpc.aio.Channel, loop: asyncio.AbstractEventLoop,
                 cache_dir: Path, *, api_key: str | None = None, cache_size: int = 4,
                 timeout_s: float = 10.0) -> None:
        self._stub = rpb_grpc.ModelRegistryServiceStub(channel)
        self._loop = loop
        self._cache_dir = cache_dir
        self._cache_size = max(cache_size, 1)
        self._timeout = timeout_s
        self._models: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._download_lock = threading.Lock()
        if api_key:
            # The stock client sends it as `Authorization: Bearer` to the registry's
            # tracking server when artifacts download (as the validator does).
            os.environ["MLFLOW_TRACKING_TOKEN"] = api_key

    def load(self, model: str, version: str) -> Any:
        key = (model, version)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        if not version.isdigit():
            raise ModelUnavailable(f"version {version!r} of model {model!r} is not a registry "
                                   f"version number", model=model, version=version)
        resolved = self._resolve(model, version)
        try:
            obj = self._load(model, version, resolved)
        except ModelUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - MLflow, the network or the model's code
            raise ModelUnavailable(f"model {model!r} version {version} could not be loaded: "
                                   f"{type(exc).__name__}: {exc}", model=model,
                                   version=version) from None
        with self._lock:
            self._models[key] = obj
            while len(self._models) > self._cache_size:
                self._models.popitem(last=False)
        return obj

    def _resolve(self, model: str, version: str) -> rpb.ResolveModelUriResponse:
        async def call() -> rpb.ResolveModelUriResponse:
            try:
                return await self._stub.ResolveModelUri(  # type: ignore[no-any-return]
                    rpb.ResolveModelUriRequest(uri=f"models:/{model}/{version}"),
                    timeout=self._timeout)
            except grpc.aio.AioRpcError as err:
                raise_from_rpc_error(err)

        try:
            return asyncio.run_coroutine_threadsafe(call(), self._loop).result(
                self._timeout + 5)
        except ModelplaneError as exc:
            raise ModelUnavailable(f"the registry could not resolve models:/{model}/{version}: "
                                   f"{exc.code} {exc.message}", model=model,
                                   version=version) from None
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            raise ModelUnavailable(f"the registry did not answer for models:/{model}/{version}:"
                                   f" {exc}", model=model, version=version) from None

    def _load(self, model: str, version: str, resolved: rpb.ResolveModelUriResponse) -> Any:
        import yaml

        target = self._cache_dir / _safe(model) / version
        done = target / ".complete"
        with self._download_lock:
            if not done.exists():
                self._download(target, resolved)
        path = Path((target / "path").read_text())
        mlmodel = path / "MLmodel"
        if not mlmodel.exists():
            raise ModelUnavailable(f"model {model!r} version {version}: no MLmodel file",
                                   model=model, version=version)
        flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
        if "sklearn" in flavors:
            import mlflow.sklearn

            return mlflow.sklearn.load_model(str(path))
        import mlflow.pyfunc

        return mlflow.pyfunc.load_model(str(path))


    @staticmethod
    def _download(target: Path, resolved: rpb.ResolveModelUriResponse) -> None:
        import mlflow.artifacts

        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        uri = resolved.download_uri or resolved.version_uri
        tracking = resolved.tracking_uri or None
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(target / "download"), tracking_uri=tracking,
            registry_uri=tracking)
        (target / "path").write_text(str(Path(local).resolve()))
        (target / ".complete").touch()


def _safe(name: str) -> str:
    """A model name as one directory name (never "..", never a path)."""
    return "m_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
