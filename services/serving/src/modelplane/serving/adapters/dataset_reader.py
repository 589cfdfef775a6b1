"""Featurestore datasets as pandas chunks, through ``FeatureStoreService.ReadDataset``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from modelplane.featurestore.v1 import featurestore_pb2, featurestore_pb2_grpc
from modelplane.kit.arrow_ipc import ArrowLimits, read_ipc_stream
from modelplane.kit.status import raise_from_rpc_error


class FeaturestoreDatasetReader:
    def __init__(self, channel: grpc.aio.Channel, arrow_limits: ArrowLimits | None = None
                 ) -> None:
        self._stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        self._arrow_limits = arrow_limits or ArrowLimits()

    async def __call__(self, dataset_id: str) -> AsyncIterator[Any]:
        call = self._stub.ReadDataset(featurestore_pb2.ReadDatasetRequest(id=dataset_id,
                                                                          chunk_rows=10_000))
        try:
            async for chunk in call:
                # chunk by chunk (a batch job streams): each chunk is bounded on its own
                yield read_ipc_stream(chunk.arrow_ipc, self._arrow_limits,
                                      "ReadDatasetResponse.arrow_ipc").to_pandas()
        except grpc.aio.AioRpcError as exc:
            raise_from_rpc_error(exc)
