"""Featurestore datasets as pandas chunks, through ``FeatureStoreService.ReadDataset``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from modelplane.featurestore.v1 import featurestore_pb2, featurestore_pb2_grpc
from modelplane.kit.status import raise_from_rpc_error


class FeaturestoreDatasetReader:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)

    async def __call__(self, dataset_id: str) -> AsyncIterator[Any]:
        import pyarrow as pa

        call = self._stub.ReadDataset(featurestore_pb2.ReadDatasetRequest(id=dataset_id,
                                                                          chunk_rows=10_000))
        try:
            async for chunk in call:
                with pa.ipc.open_stream(chunk.arrow_ipc) as reader:
                    yield reader.read_all().to_pandas()
        except grpc.aio.AioRpcError as exc:
            raise_from_rpc_error(exc)
