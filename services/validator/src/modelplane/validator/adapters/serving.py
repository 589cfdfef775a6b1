"""The stress check's load client: a named deployment behind serving, called with the Open
Inference Protocol v2 over gRPC (``inference.GRPCInferenceService.ModelInfer``, the stubs
``tritonclient`` ships), the same way any KServe / Triton client calls it.

The requests run on the service's event loop (``concurrency`` coroutines sharing the
peer channel); the check, in its worker thread, waits for the result.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence

import grpc
import pandas as pd
from tritonclient.grpc import service_pb2, service_pb2_grpc

from modelplane.validator.checks.base import DeploymentLoad, LoadResult


def infer_request(deployment: str, frame: pd.DataFrame) -> service_pb2.ModelInferRequest:
    """One request: one [N] input tensor per column, named as the column."""
    request = service_pb2.ModelInferRequest(model_name=deployment)
    for column in frame.columns:
        values = frame[column].to_numpy()
        tensor = request.inputs.add(name=str(column), shape=[len(values)])
        kind = values.dtype.kind
        if kind == "b":
            tensor.datatype = "BOOL"
            tensor.contents.bool_contents.extend(bool(v) for v in values)
        elif kind in "iu":
            tensor.datatype = "INT64"
            tensor.contents.int64_contents.extend(int(v) for v in values)
        elif kind == "f":
            tensor.datatype = "FP64"
            tensor.contents.fp64_contents.extend(float(v) for v in values)
        else:
            tensor.datatype = "BYTES"
            tensor.contents.bytes_contents.extend(
                b"" if v is None else str(v).encode() for v in values)
    return request


class ServingLoad:
    """``DeploymentLoad`` over serving's OIP gRPC port."""

    def __init__(self, channel: grpc.aio.Channel, loop: asyncio.AbstractEventLoop,
                 timeout_s: float = 30.0) -> None:
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        self._loop = loop
        self._timeout = timeout_s

    def load_test(self, deployment: str, requests: Sequence[pd.DataFrame], *, concurrency: int,
                  duration_s: float, max_requests: int) -> LoadResult:
        future = asyncio.run_coroutine_threadsafe(
            self._load(deployment, requests, concurrency, duration_s, max_requests), self._loop)
        return future.result(timeout=duration_s + self._timeout * 2 + 60)

    async def _load(self, deployment: str, frames: Sequence[pd.DataFrame], concurrency: int,
                    duration_s: float, max_requests: int) -> LoadResult:
        messages = [infer_request(deployment, f) for f in frames]
        latencies: list[float] = []
        codes: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        versions: Counter[str] = Counter()
        fallbacks = 0
        sent = 0
        start = time.perf_counter()
        deadline = start + duration_s

        def more() -> bool:
            if max_requests:
                return sent < max_requests
            return time.perf_counter() < deadline

        async def worker() -> None:
            nonlocal sent, fallbacks
            while more():
                message = messages[sent % len(messages)]
                sent += 1
                t0 = time.perf_counter()
                try:
                    reply = await self._stub.ModelInfer(message, timeout=self._timeout)
                except grpc.aio.AioRpcError as err:
                    codes[err.code().name] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                params = reply.parameters
                if "fallback" in params and params["fallback"].bool_param:
                    fallbacks += 1
                    reasons[params["fallback_reason"].string_param
                            if "fallback_reason" in params else "UNKNOWN"] += 1
                versions[reply.model_version or "?"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return LoadResult(deployment=deployment, latencies_s=latencies,
                          errors=sum(codes.values()), error_codes=dict(codes),
                          fallbacks=fallbacks, fallback_reasons=dict(reasons),
                          versions=dict(versions), wall_s=time.perf_counter() - start,
                          rows_per_request=len(frames[0]) if frames else 0)


def _check_protocol(load: ServingLoad) -> DeploymentLoad:  # mypy: the port is implemented
    return load


__all__ = ["ServingLoad", "infer_request"]
