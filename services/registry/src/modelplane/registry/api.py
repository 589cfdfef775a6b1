"""gRPC adapter: ``modelplane.registry.v1`` messages <-> the registry's domain calls.

Translation only; errors travel as ``ModelplaneError`` to the kit's interceptor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from google.protobuf import empty_pb2, timestamp_pb2

from modelplane.kit.auth import current_principal
from modelplane.registry import model as m
from modelplane.registry.registry import ModelRegistry
from modelplane.registry.v1 import registry_pb2 as pb
from modelplane.registry.v1 import registry_pb2_grpc

_VALIDATION_TO_PB = {m.ValidationStatus.PASS: pb.VALIDATION_STATUS_PASS,
                     m.ValidationStatus.WARN: pb.VALIDATION_STATUS_WARN,
                     m.ValidationStatus.FAIL: pb.VALIDATION_STATUS_FAIL}
_VALIDATION_FROM_PB = {v: k for k, v in _VALIDATION_TO_PB.items()}
_STATUS_TO_PB = {m.VersionStatus.READY: pb.MODEL_VERSION_STATUS_READY,
                 m.VersionStatus.PENDING_REGISTRATION:
                     pb.MODEL_VERSION_STATUS_PENDING_REGISTRATION,
                 m.VersionStatus.FAILED_REGISTRATION: pb.MODEL_VERSION_STATUS_FAILED_REGISTRATION}
_ORIGIN_TO_PB = {m.ChangeOrigin.GRPC: pb.CHANGE_ORIGIN_GRPC,
                 m.ChangeOrigin.MLFLOW: pb.CHANGE_ORIGIN_MLFLOW}
_EVENT_TO_PB = {t: pb.ModelEventType.Value(f"MODEL_EVENT_TYPE_{t.value}") for t in m.EventType}
_EVENT_FROM_PB = {v: k for k, v in _EVENT_TO_PB.items()}


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def validation_pb(v: m.ValidationSummary | None) -> pb.ValidationSummary | None:
    if v is None:
        return None
    return pb.ValidationSummary(report_id=v.report_id, status=_VALIDATION_TO_PB[v.status],
                                report_uri=v.report_uri, summary=v.summary,
                                attach_time=_ts(v.attach_time), attached_by=v.attached_by)


def _field_pb(f: m.SignatureField) -> pb.SignatureField:
    return pb.SignatureField(name=f.name, type=f.type, required=f.required,
                             tensor_dtype=f.tensor_dtype, tensor_shape=list(f.tensor_shape))


def lineage_pb(lin: m.Lineage) -> pb.Lineage:
    sig = None
    if lin.signature is not None:
        s = lin.signature
        sig = pb.Signature(inputs=[_field_pb(f) for f in s.inputs],
                           outputs=[_field_pb(f) for f in s.outputs], inputs_json=s.inputs_json,
                           outputs_json=s.outputs_json, params_json=s.params_json)
    return pb.Lineage(run_id=lin.run_id, experiment_id=lin.experiment_id,
                      dataset_id=lin.dataset_id, feature_refs=list(lin.feature_refs),
                      code_version=lin.code_version, signature=sig)


def version_pb(v: m.ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(
        model_name=v.model_name, version=v.version, description=v.description, source=v.source,
        status=_STATUS_TO_PB[v.status], aliases=list(v.aliases), tags=v.tags,
        lineage=lineage_pb(v.lineage), validation=validation_pb(v.validation),
        creator=v.creator, logged_model_id=v.logged_model_id, create_time=_ts(v.create_time),
        update_time=_ts(v.update_time))


def alias_pb(a: m.Alias) -> pb.Alias:
    return pb.Alias(model_name=a.model_name, alias=a.alias, version=a.version,
                    protected=a.protected, update_time=_ts(a.update_time),
                    updated_by=a.updated_by)


def model_pb(x: m.Model) -> pb.Model:
    return pb.Model(name=x.name, description=x.description, tags=x.tags,
                    aliases=[alias_pb(a) for a in x.aliases], latest_version=x.latest_version,
                    create_time=_ts(x.create_time), update_time=_ts(x.update_time))


def alias_change_pb(c: m.AliasChange) -> pb.AliasChange:
    return pb.AliasChange(
        id=str(c.id), model_name=c.model_name, alias=c.alias, from_version=c.from_version,
        to_version=c.to_version, principal=c.principal, reason=c.reason, override=c.override,
        validation=validation_pb(c.validation), origin=_ORIGIN_TO_PB[c.origin],
        change_time=_ts(c.change_time))


def event_pb(ev: m.ModelEvent) -> pb.ModelEvent:
    out = pb.ModelEvent(sequence=ev.sequence, type=_EVENT_TO_PB[ev.type],
                        event_time=_ts(ev.event_time), model_name=ev.model_name,
                        version=ev.version, alias=ev.alias, principal=ev.principal,
                        origin=_ORIGIN_TO_PB[ev.origin] if ev.origin else
                        pb.CHANGE_ORIGIN_UNSPECIFIED)
    if ev.alias_change is not None:
        out.alias_change.CopyFrom(alias_change_pb(ev.alias_change))
    elif ev.validation is not None:
        out.validation.CopyFrom(validation_pb(ev.validation))
    return out


class ModelRegistryApi(registry_pb2_grpc.ModelRegistryServiceServicer):
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
        return model_pb(await self.registry.create_model(
            x.name, x.description, dict(x.tags), current_principal()))

    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.Model:
        return model_pb(await self.registry.get_model(request.name))

    async def ListModels(self, request: pb.ListModelsRequest,
                         context: Any) -> pb.ListModelsResponse:
        page = await self.registry.list_models(request.name_prefix, dict(request.tags),
                                               request.page_size, request.page_token)
        return pb.ListModelsResponse(models=[model_pb(x) for x in page.items],
                                     next_page_token=page.next_page_token)

    async def UpdateModel(self, request: pb.UpdateModelRequest, context: Any) -> pb.Model:
        x = request.model
        return model_pb(await self.registry.update_model(
            x.name, x.description, dict(x.tags), list(request.update_mask.paths),
            current_principal()))

    async def DeleteModel(self, request: pb.DeleteModelRequest,
                          context: Any) -> empty_pb2.Empty:
        await self.registry.delete_model(request.name, request.force, current_principal())
        return empty_pb2.Empty()

    async def CreateModelVersion(self, request: pb.CreateModelVersionRequest,
                                 context: Any) -> pb.ModelVersion:
        lin = request.lineage
        return version_pb(await self.registry.create_version(
            model_name=request.model_name, run_id=request.run_id or lin.run_id,
            artifact_path=request.artifact_path, source=request.source,
            dataset_id=lin.dataset_id, feature_refs=list(lin.feature_refs),
            code_version=lin.code_version, description=request.description,
            tags=dict(request.tags), principal=current_principal()))

    async def GetModelVersion(self, request: pb.GetModelVersionRequest,
                              context: Any) -> pb.ModelVersion:
        return version_pb(await self.registry.get_version(request.model_name, request.version))

    async def ListModelVersions(self, request: pb.ListModelVersionsRequest,
                                context: Any) -> pb.ListModelVersionsResponse:
        page = await self.registry.list_versions(
            model_name=request.model_name, run_id=request.run_id,
            dataset_id=request.dataset_id,
            validation_status=_VALIDATION_FROM_PB.get(request.validation_status),
            page_size=request.page_size, page_token=request.page_token)
        return pb.ListModelVersionsResponse(model_versions=[version_pb(v) for v in page.items],
                                            next_page_token=page.next_page_token)

    async def UpdateModelVersion(self, request: pb.UpdateModelVersionRequest,
                                 context: Any) -> pb.ModelVersion:
        v = request.model_version
        return version_pb(await self.registry.update_version(
            model_name=v.model_name, version=v.version, description=v.description,
            tags=dict(v.tags), dataset_id=v.lineage.dataset_id,
            feature_refs=list(v.lineage.feature_refs), code_version=v.lineage.code_version,
            mask=list(request.update_mask.paths), principal=current_principal()))

    async def SetAlias(self, request: pb.SetAliasRequest, context: Any) -> pb.Alias:
        return alias_pb(await self.registry.set_alias(
            model_name=request.model_name, alias=request.alias, version=request.version,
            override_reason=request.override_reason, principal=current_principal()))

    async def GetAlias(self, request: pb.GetAliasRequest, context: Any) -> pb.Alias:
        return alias_pb(await self.registry.get_alias(request.model_name, request.alias))

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
            model_version=version_pb(resolved.model_version), alias=resolved.alias,
            version_uri=resolved.version_uri, download_uri=resolved.download_uri,
            tracking_uri=resolved.tracking_uri)
        if len(self._resolved_pb) > 20000:
            self._resolved_pb.clear()
        self._resolved_pb[id(resolved)] = (resolved, answer)
        return answer

    async def AttachValidation(self, request: pb.AttachValidationRequest,
                               context: Any) -> pb.ModelVersion:
        v = request.validation
        return version_pb(await self.registry.attach_validation(
            model_name=request.model_name, version=request.version, report_id=v.report_id,
            status=_VALIDATION_FROM_PB.get(v.status), report_uri=v.report_uri,
            summary=v.summary, principal=current_principal()))

    async def ListAliasChanges(self, request: pb.ListAliasChangesRequest,
                               context: Any) -> pb.ListAliasChangesResponse:
        page = await self.registry.list_alias_changes(request.model_name, request.alias,
                                                      request.page_size, request.page_token)
        return pb.ListAliasChangesResponse(alias_changes=[alias_change_pb(c) for c in page.items],
                                           next_page_token=page.next_page_token)

    async def WatchModelEvents(self, request: pb.WatchModelEventsRequest,
                               context: Any) -> AsyncIterator[pb.ModelEvent]:
        types = [_EVENT_FROM_PB[t] for t in request.types if t in _EVENT_FROM_PB]
        after = request.after_sequence if request.HasField("after_sequence") else None
        async for ev in self.registry.watch(list(request.model_names), types, after):
            yield event_pb(ev)
