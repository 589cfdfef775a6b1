"""The registry's model versions, for lineage (``GetModelVersion``)."""

from __future__ import annotations

import grpc

from modelplane.observability.adapters.peer_call import DEFAULT_TIMEOUT_S, call_peer
from modelplane.observability.lineage import ValidationRef, VersionInfo
from modelplane.registry.v1 import registry_pb2 as rpb
from modelplane.registry.v1 import registry_pb2_grpc as rpb_grpc

_STATUS = {rpb.VALIDATION_STATUS_PASS: "PASS", rpb.VALIDATION_STATUS_WARN: "WARN",
           rpb.VALIDATION_STATUS_FAIL: "FAIL"}


class RegistryVersions:
    """:class:`~modelplane.observability.lineage.ModelVersions` over the registry service."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = rpb_grpc.ModelRegistryServiceStub(channel)
        self._timeout = timeout_s

    async def model_version(self, model: str, version: str) -> VersionInfo:
        mv = await call_peer(self._stub.GetModelVersion,
                             rpb.GetModelVersionRequest(model_name=model, version=int(version)),
                             f"GetModelVersion {model}/{version}", self._timeout)
        lin = mv.lineage
        validation = None
        if mv.HasField("validation"):
            v = mv.validation
            validation = ValidationRef(v.report_id, _STATUS.get(v.status, ""), v.summary,
                                       v.report_uri)
        return VersionInfo(lin.run_id, lin.experiment_id, lin.dataset_id,
                           list(lin.feature_refs), lin.code_version, mv.source,
                           list(mv.aliases), validation)


__all__ = ["RegistryVersions"]
