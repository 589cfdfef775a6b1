"""gRPC servicer: ``modelplane.registry.v1`` requests handed to the registry's
domain calls (:mod:`.registry`), answers built by :mod:`.convert`.

Translation only; errors travel as ``ModelplaneError`` to the kit's interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf import empty_pb2

from modelplane.kit.auth import current_principal
from modelplane.registry import model as m
from modelplane.registry.convert import (
    EVENT_FROM_PB,
    VALIDATION_FROM_PB,
    alias_change_to_pb,
    alias_to_pb,
    event_to_pb,
    model_to_pb,
    version_to_pb,
)
from modelplane.registry.registry import ModelRegistry
from modelplane.registry.v1 import registry_pb2 as pb
from modelplane.registry.v1 import registry_pb2_grpc


class RegistryServicer(registry_pb2_grpc.ModelRegistryServiceServicer):
    def __init__(self, registry: Callable[[], ModelRegistry]) -> None:
        """``registry`` returns the running registry (built when the service starts)."""
        self._registry = registry
        # Serialised answers of the resolve cache, keyed by the cached object.
        self._resolved_pb: dict[int, tuple[m.ResolvedModel, pb.ResolveModelUriResponse]] = {}

    @property
    def registry(self) -> ModelRegistry:
        return self._registry()

    async def CreateModel(self, request: pb.CreateModelRequest, context: Any) -> pb.Model:
        x = request.model
        return model_to_pb(await self.registry.create_model(
            x.name, x.description, dict(x.tags), current_principal()))

    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.Model:
        return model_to_pb(await self.registry.get_model(request.name))

    async def ListModels(self, request: pb.ListModelsRequest,
                         context: Any) -> pb.ListModelsResponse:
        page = await self.registry.list_models(request.name_prefix, dict(request.tags),
                                               request.page_size, request.page_token)
        return pb.ListModelsResponse(models=[model_to_pb(x) for x in page.items],
                                     next_page_token=page.next_page_token)

    async def UpdateModel(self, request: pb.UpdateModelRequest, context: Any) -> pb.Model:
        x = request.model
        return model_to_pb(await self.registry.update_model(
            x.name, x.description, dict(x.tags), list(request.update_mask.paths),
            current_principal()))

    async def DeleteModel(self, request: pb.DeleteModelRequest,
                          context: Any) -> empty_pb2.Empty:
        await self.registry.delete_model(request.name, request.force, current_principal())
        return empty_pb2.Empty()

    async def CreateModelVersion(self, request: pb.CreateModelVersionRequest,
                                 context: Any) -> pb.ModelVersion:
        lin = request.lineage
        return version_to_pb(await self.registry.create_version(
            model_name=request.model_name, run_id=request.run_id or lin.run_id,
            artifact_path=request.artifact_path, source=request.source,
            dataset_id=lin.dataset_id, feature_refs=list(lin.feature_refs),
            code_version=lin.code_version, description=request.description,
            tags=dict(request.tags), principal=current_principal()))

    async def GetModelVersion(self, request: pb.GetModelVersionRequest,
                              context: Any) -> pb.ModelVersion:
        return version_to_pb(await self.registry.get_version(request.model_name, request.version))

    async def ListModelVersions(self, request: pb.ListModelVersionsRequest,
                                context: Any) -> pb.ListModelVersionsResponse:
        page = await self.registry.list_versions(
            model_name=request.model_name, run_id=request.run_id,
            dataset_id=request.dataset_id,
            validation_status=VALIDATION_FROM_PB.get(request.validation_status),
            page_size=request.page_size, page_token=request.page_token)
        return pb.ListModelVersionsResponse(model_versions=[version_to_pb(v) for v in page.items],
                                            next_page_token=page.next_page_token)

    async def UpdateModelVersion(self, request: pb.UpdateModelVersionRequest,
                                 context: Any) -> pb.ModelVersion:
        v = request.model_version
        return version_to_pb(await self.registry.update_version(
            model_name=v.model_name, version=v.version, description=v.description,
            tags=dict(v.tags), dataset_id=v.lineage.dataset_id,
            feature_refs=list(v.lineage.feature_refs), code_version=v.lineage.code_version,
            mask=list(request.update_mask.paths), principal=current_principal()))

    async def SetAlias(self, request: pb.SetAliasRequest, context: Any) -> pb.Alias:
        return alias_to_pb(await self.registry.set_alias(
            model_name=request.model_name, alias=request.alias, version=request.version,
            override_reason=request.override_reason, principal=current_principal()))

    async def GetAlias(self, request: pb.GetAliasRequest, context: Any) -> pb.Alias:
        return alias_to_pb(await self.registry.get_alias(request.model_name, request.alias))

    async def DeleteAlias(self, request: pb.DeleteAliasRequest,
                          context: Any) -> empty_pb2.Empty:
        await self.registry.delete_alias(model_name=request.model_name, alias=request.alias,
                                         reason=request.reason, principal=current_principal())
        return empty_pb2.Empty()

    async def ResolveModelUri(self, request: pb.ResolveModelUriRequest,
                              context: Any) -> pb.ResolveModelUriResponse:
        resolved = await self.registry.resolve(request.uri)
        cached = self._resolved_pb.get(id(resolved))
        if cached is not None and cached[0] is resolved:
            return cached[1]
        answer = pb.ResolveModelUriResponse(
            model_version=version_to_pb(resolved.model_version), alias=resolved.alias,
            version_uri=resolved.version_uri, download_uri=resolved.download_uri,
            tracking_uri=resolved.tracking_uri)
        if len(self._resolved_pb) > 20000:
            self._resolved_pb.clear()
        self._resolved_pb[id(resolved)] = (resolved, answer)
        return answer

    async def AttachValidation(self, request: pb.AttachValidationRequest,
                               context: Any) -> pb.ModelVersion:
        v = request.validation
        return version_to_pb(await self.registry.attach_validation(
            model_name=request.model_name, version=request.version, report_id=v.report_id,
            status=VALIDATION_FROM_PB.get(v.status), report_uri=v.report_uri,
            summary=v.summary, principal=current_principal()))

    async def ListAliasChanges(self, request: pb.ListAliasChangesRequest,
                               context: Any) -> pb.ListAliasChangesResponse:
        page = await self.registry.list_alias_changes(request.model_name, request.alias,
                                                      request.page_size, request.page_token)
        return pb.ListAliasChangesResponse(
            alias_changes=[alias_change_to_pb(c) for c in page.items],
            next_page_token=page.next_page_token)

    async def WatchModelEvents(self, request: pb.WatchModelEventsRequest,
                               context: Any) -> AsyncIterator[pb.ModelEvent]:
        types = [EVENT_FROM_PB[t] for t in request.types if t in EVENT_FROM_PB]
        after = request.after_sequence if request.HasField("after_sequence") else None
        async for ev in self.registry.watch(list(request.model_names), types, after):
            yield event_to_pb(ev)
