"""Model versions from the registry service: ``ResolveModelUri`` and ``WatchModelEvents``."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from modelplane.kit.errors import Unavailable
from modelplane.kit.status import raise_from_rpc_error
from modelplane.registry.v1 import registry_pb2, registry_pb2_grpc
from modelplane.serving.deployment import ModelTarget
from modelplane.serving.model_source import AliasEvent, ResolvedModel, local_path_of

log = logging.getLogger("modelplane.serving.registry_source")


class RegistryModelSource:
    """A :class:`ModelSource` over the registry's gRPC contract."""

    def __init__(self, channel: grpc.aio.Channel, api_key: str | None = None) -> None:
        self._channel = channel
        if api_key:
            # The stock MLflow client sends it to the registry's tracking server
            # when artifacts are downloaded. The key this source was given wins over
            # a token left in the environment (it may belong to another registry).
            os.environ["MLFLOW_TRACKING_TOKEN"] = api_key
        self._stub = registry_pb2_grpc.ModelRegistryServiceStub(channel)
        self._tracking_uri = ""

    def _use_tracking_uri(self, uri: str) -> None:
        # Artifacts download with the stock MLflow client from the registry's tracking server.
        if uri and uri != self._tracking_uri:
            import mlflow

            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            os.environ.setdefault("MLFLOW_TRACKING_URI", uri)
            self._tracking_uri = uri

    async def resolve(self, target: ModelTarget) -> ResolvedModel:
        try:
            r = await self._stub.ResolveModelUri(
                registry_pb2.ResolveModelUriRequest(uri=target.uri), timeout=10.0)
        except grpc.aio.AioRpcError as exc:
            raise_from_rpc_error(exc)
            raise Unavailable(f"the registry did not answer for {target.uri}",
                              reason="REGISTRY_UNAVAILABLE") from None
        self._use_tracking_uri(r.tracking_uri)
        mv = r.model_version
        run_id = getattr(getattr(mv, "lineage", None), "run_id", "") or ""
        status = registry_pb2.ValidationStatus.Name(mv.validation.status).removeprefix(
            "VALIDATION_STATUS_") if mv.HasField("validation") else ""
        return ResolvedModel(mv.model_name, str(mv.version),
                             local_path_of(r.download_uri or r.version_uri), run_id,
                             "" if status == "UNSPECIFIED" else status)

    async def alias_events(self, watched: Callable[[], set[tuple[str, str]]],
                           on_connected: Callable[[], None] | None = None
                           ) -> AsyncIterator[AliasEvent]:
        types = [registry_pb2.MODEL_EVENT_TYPE_ALIAS_SET,
                 registry_pb2.MODEL_EVENT_TYPE_ALIAS_DELETED]
        call: Any = self._stub.WatchModelEvents(registry_pb2.WatchModelEventsRequest(types=types))
        try:
            async for event in call:
                if event.type == registry_pb2.MODEL_EVENT_TYPE_WATCH_STARTED:
                    if on_connected is not None:
                        on_connected()  # the registry answers (again)
                    continue
                if (event.model_name, event.alias) not in watched():
                    continue
                version = "" if event.type == registry_pb2.MODEL_EVENT_TYPE_ALIAS_DELETED \
                    else str(event.version)
                yield AliasEvent(event.model_name, event.alias, version)
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"registry event stream ended: {exc.code().name}",
                              reason="REGISTRY_UNAVAILABLE") from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()


