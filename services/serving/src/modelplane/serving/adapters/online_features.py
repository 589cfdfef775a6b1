"""Online features from the featurestore, through Feast's ``feast.serving.ServingService``
contract."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelplane.kit.errors import FieldViolation, InvalidArgument, ModelplaneError, Unavailable


def _to_feast_value(v: Any) -> Any:
    from feast.protos.feast.types import Value_pb2

    if isinstance(v, (bool, np.bool_)):
        return Value_pb2.Value(bool_val=bool(v))
    if isinstance(v, (int, np.integer)):
        return Value_pb2.Value(int64_val=int(v))
    if isinstance(v, (float, np.floating)):
        return Value_pb2.Value(double_val=float(v))
    if isinstance(v, bytes):
        return Value_pb2.Value(bytes_val=v)
    return Value_pb2.Value(string_val=str(v))


def _from_feast_value(v: Any) -> Any:
    kind = v.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    return getattr(v, kind)


class FeastServingClient:
    """Calls ``GetOnlineFeatures`` on the featurestore's gRPC port."""

    def __init__(self, channel: Any) -> None:
        from feast.protos.feast.serving import ServingService_pb2_grpc

        self._channel = channel
        self._stub = ServingService_pb2_grpc.ServingServiceStub(channel)

    async def get_online_features(self, feature_refs: Sequence[str],
                                  entities: dict[str, np.ndarray],
                                  full_feature_names: bool) -> dict[str, np.ndarray]:
        import grpc
        from feast.protos.feast.serving import ServingService_pb2
        from feast.protos.feast.types import Value_pb2

        from modelplane.kit.status import raise_from_rpc_error

        request = ServingService_pb2.GetOnlineFeaturesRequest(
            features=ServingService_pb2.FeatureList(val=list(feature_refs)),
            full_feature_names=full_feature_names)
        for name, values in entities.items():
            request.entities[name].CopyFrom(
                Value_pb2.RepeatedValue(val=[_to_feast_value(x) for x in values.tolist()]))
        try:
            response = await self._stub.GetOnlineFeatures(request, timeout=5.0)
        except grpc.aio.AioRpcError as exc:
            try:
                raise_from_rpc_error(exc)
            except ModelplaneError as err:
                raise Unavailable(f"online features unavailable: {err.message}",
                                  reason="FEATURESTORE_UNAVAILABLE",
                                  metadata={"features": ",".join(feature_refs)}) from None
            raise
        names = list(response.metadata.feature_names.val)
        out: dict[str, np.ndarray] = {}
        for name, vector in zip(names, response.results, strict=False):
            if name in entities:
                continue
            got = [_from_feast_value(v) for v in vector.values]
            if any(v is None for v in got):
                raise InvalidArgument(
                    f"feature {name!r} has no online value for some entity keys",
                    reason="FEATURE_VALUE_MISSING", metadata={"feature": name},
                    field_violations=[FieldViolation("inputs", f"no online value for {name}")])
            out[name] = np.asarray(got)
        return out

    async def close(self) -> None:
        await self._channel.close()
