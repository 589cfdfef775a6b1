"""Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``, tritonclient's stubs).

A thin adapter over :class:`.predictor.Predictor`: decode tensors, call, encode. Errors
are raised as ``ModelplaneError`` and mapped once by the kit's interceptor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from modelplane.kit.auth import Role, current_principal
from modelplane.kit.errors import InvalidArgument
from modelplane.serving.deployment import DeploymentState
from modelplane.serving.deployment_access import check_infer
from modelplane.serving.oip_tensors import (
    DTYPES,
    bad_tensor,
    decode_bytes_array,
    from_raw,
    output_raw,
    reshape,
    to_model_input,
)
from modelplane.serving.predictor import OUTPUT_NAME, InferenceRequest, Predictor
from modelplane.serving.servable_model import ServableModel

SERVICE_NAME = "inference.GRPCInferenceService"
SERVER_NAME = "modelplane-serving"
SERVER_VERSION = "0.1.0"
#: Least role per OIP method (per-deployment rights are checked on top).
METHOD_ACCESS: dict[str, Role] = {
    f"/{SERVICE_NAME}/{m}": Role.READER
    for m in ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
              "ModelInfer")
}

_CONTENTS_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
_KIND_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "string": "BYTES"}


def _param_value(p: Any) -> Any:
    kind = p.WhichOneof("parameter_choice")
    return getattr(p, kind) if kind else None


def _set_param(target: Any, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_param = value
    elif isinstance(value, int):
        target.int64_param = value
    elif isinstance(value, float):
        target.double_param = value
    else:
        target.string_param = str(value)


def decode_inputs(request: Any) -> list[tuple[str, np.ndarray]]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs",
            reason="INPUT_CONTENTS_INVALID")
    tensors = []
    for i, t in enumerate(request.inputs):
        datatype = t.datatype.upper()
        if datatype not in DTYPES:
            raise bad_tensor(t.name, "datatype", f"unknown datatype {t.datatype!r}")
        if raw:
            arr = from_raw(t.name, datatype, t.shape, raw[i])
        else:
            values = getattr(t.contents, _CONTENTS_FIELD[datatype])
            if datatype == "BYTES":
                arr = decode_bytes_array(np.array(list(values), dtype=object))
            else:
                arr = np.asarray(values, dtype=DTYPES[datatype])
            arr = reshape(t.name, arr, t.shape)
        tensors.append((t.name, arr))
    return tensors


def tensor_metadata(model: ServableModel | None) -> tuple[list[Any], list[Any]]:
    TM = service_pb2.ModelMetadataResponse.TensorMetadata
    inputs: list[Any] = []
    if model is not None:
        sig = model.signature
        if sig.columns:
            inputs = [TM(name=c.name, datatype=_KIND_DATATYPE.get(c.kind, "FP64"), shape=[-1])
                      for c in sig.columns]
        else:
            inputs = [TM(name="input-0", datatype="FP64", shape=[-1, sig.width or -1])]
    return inputs, [TM(name=OUTPUT_NAME, datatype="FP64", shape=[-1])]


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    async def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION,
                                                  extensions=["binary_tensor_data"])

    async def ModelReady(self, request: Any, context: Any) -> Any:
        rt = self.predictor.models.runtime(request.name)
        check_infer(rt, current_principal())
        return service_pb2.ModelReadyResponse(ready=rt.state is DeploymentState.READY)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        rt = self.predictor.models.runtime(request.name)
        check_infer(rt, current_principal())
        primary = rt.models.get(rt.routes[0].target.key) if rt.routes else None
        if rt.deployment.ensemble is not None:
            primary = rt.models.get(rt.deployment.ensemble_members()[0].key)
        inputs, outputs = tensor_metadata(primary)
        versions = sorted({m.version for m in rt.models.values()}, key=lambda v: int(v))
        return service_pb2.ModelMetadataResponse(name=request.name, versions=versions,
                                                 platform="bentoml", inputs=inputs,
                                                 outputs=outputs)

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        for out in request.outputs:
            if out.name != OUTPUT_NAME:
                raise InvalidArgument(
                    f"model {request.model_name!r} has no output {out.name!r} "
                    f"(outputs: {OUTPUT_NAME})", reason="UNKNOWN_OUTPUT",
                    metadata={"output": out.name})
        params = {k: _param_value(v) for k, v in request.parameters.items()}
        headers: dict[str, str] = {}
        md = context.invocation_metadata()
        if md:
            headers = {k: v for k, v in md if isinstance(v, str)}
        # Resolve the deployment first so an unknown model is NOT_FOUND before tensor checks.
        self.predictor.models.runtime(request.model_name)
        inputs = to_model_input(decode_inputs(request))
        resp = await self.predictor.infer(
            InferenceRequest(request.model_name, inputs, request.id, params, headers,
                             request.model_version),
            current_principal())
        reply = service_pb2.ModelInferResponse(model_name=resp.model_name,
                                               model_version=resp.model_version,
                                               id=resp.request_id)
        for key, value in resp.parameters.items():
            _set_param(reply.parameters[key], value)
        for name, arr in resp.outputs:
            datatype, raw = output_raw(arr)
            reply.outputs.add(name=name, datatype=datatype, shape=list(arr.shape))
            reply.raw_output_contents.append(raw)
        return reply
