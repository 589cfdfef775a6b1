"""Feast's own gRPC contract, ``feast.serving.ServingService``, over the same online lookup.

Served from the stubs the ``feast`` package ships, so Feast's gRPC clients
(and serving's feature fetcher) work against this server unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from feast.protos.feast.serving import ServingService_pb2 as feast_pb
from feast.protos.feast.serving import ServingService_pb2_grpc as feast_grpc

from modelplane.featurestore.wire import feast_response
from modelplane.kit.auth import Role

if TYPE_CHECKING:
    from modelplane.featurestore.parts import FeatureStoreParts

SERVICE_NAME = "feast.serving.ServingService"
METHOD_ACCESS = {f"/{SERVICE_NAME}/GetFeastServingInfo": Role.READER,
                 f"/{SERVICE_NAME}/GetOnlineFeatures": Role.READER}

_SCALARS = ("int64_val", "int32_val", "string_val", "bytes_val", "unix_timestamp_val")


def _python(value: Any) -> Any:
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    return getattr(value, kind)


def feast_version() -> str:
    import feast

    return f"feast {feast.__version__} (modelplane featurestore)"


class FeastServingServicer(feast_grpc.ServingServiceServicer):
    def __init__(self, parts: Callable[[], FeatureStoreParts]) -> None:
        #: the runtime's parts (UNAVAILABLE/STARTING until the runtime has built them)
        self.parts = parts
        self._version = feast_version()

    async def GetFeastServingInfo(self, request: feast_pb.GetFeastServingInfoRequest,
                                  context: Any) -> feast_pb.GetFeastServingInfoResponse:
        return feast_pb.GetFeastServingInfoResponse(version=self._version)

    async def GetOnlineFeatures(self, request: feast_pb.GetOnlineFeaturesRequest,
                                context: Any) -> bytes:
        online = self.parts().online
        refs = list(request.features.val) if request.HasField("features") else []
        plan = await online.plan(refs, request.feature_service, request.full_feature_names)
        entities = {k: [_python(v) for v in rv.val] for k, rv in request.entities.items()}
        result = await online.lookup(plan, entities)
        # wire bytes, sent as they are (registered through wire_handlers, see runtime.py)
        return feast_response(result)
