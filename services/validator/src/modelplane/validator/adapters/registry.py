"""ModelRegistry over the registry's gRPC contract (modelplane.registry.v1)."""

from __future__ import annotations

import grpc

from modelplane.kit.errors import InvalidArgument, NotFound
from modelplane.kit.status import raise_from_rpc_error
from modelplane.registry.v1 import registry_pb2 as pb
from modelplane.registry.v1 import registry_pb2_grpc as pb_grpc
from modelplane.validator.ports import ModelVersionInfo
from modelplane.validator.report import CheckStatus, ValidationReport

_STATUS = {
    CheckStatus.PASS: pb.VALIDATION_STATUS_PASS,
    CheckStatus.WARN: pb.VALIDATION_STATUS_WARN,
    CheckStatus.FAIL: pb.VALIDATION_STATUS_FAIL,
    CheckStatus.ERROR: pb.VALIDATION_STATUS_FAIL,
}


class RegistryClient:
    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 30.0) -> None:
        self._stub = pb_grpc.ModelRegistryServiceStub(channel)
        self._timeout = timeout_s

    async def _resolve(self, uri: str) -> pb.ResolveModelUriResponse:
        try:
            return await self._stub.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri),
                                                    timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)

    async def get_version(self, model: str, version: str) -> ModelVersionInfo:
        if not version.isdigit():
            raise InvalidArgument(f"version {version!r} is not a version number",
                                  metadata={"model": model, "version": version})
        try:
            resolved = await self._resolve(f"models:/{model}/{version}")
        except NotFound as exc:
            raise NotFound(f"model {model!r} version {version} not found in the registry: "
                           f"{exc.message}",
                           reason=exc.reason,
                           metadata={"model": model, "version": version}) from None
        return _info(resolved)

    async def resolve_alias(self, model: str, alias: str) -> ModelVersionInfo | None:
        try:
            return _info(await self._resolve(f"models:/{model}@{alias}"))
        except NotFound as exc:
            if exc.metadata.get("alias") or "alias" in exc.message.lower():
                return None
            raise NotFound(f"model {model!r} not found in the registry: {exc.message}",
                           reason=exc.reason, metadata={"model": model}) from None

    async def attach_validation(self, model: str, version: str, report: ValidationReport) -> None:
        try:
            await self._stub.AttachValidation(pb.AttachValidationRequest(
                model_name=model, version=int(version),
                validation=pb.ValidationSummary(report_id=report.id, status=_STATUS[report.status],
                                                report_uri=report.report_uri,
                                                summary=report.summary)), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise_from_rpc_error(err)


def _info(resolved: pb.ResolveModelUriResponse) -> ModelVersionInfo:
    mv = resolved.model_version
    return ModelVersionInfo(
        model=mv.model_name, version=str(mv.version),
        download_uri=resolved.download_uri or resolved.version_uri,
        tracking_uri=resolved.tracking_uri,
        input_columns=[f.name for f in mv.lineage.signature.inputs if f.name],
        run_id=mv.lineage.run_id, dataset_id=mv.lineage.dataset_id,
        feature_refs=list(mv.lineage.feature_refs))
