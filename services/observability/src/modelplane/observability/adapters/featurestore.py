"""The featurestore's datasets, for lineage (``GetDataset``: the content hash)."""

from __future__ import annotations

import grpc

from modelplane.featurestore.v1 import featurestore_pb2 as fpb
from modelplane.featurestore.v1 import featurestore_pb2_grpc as fpb_grpc
from modelplane.observability.adapters.peer_call import DEFAULT_TIMEOUT_S, call_peer
from modelplane.observability.lineage import DatasetInfo


class FeaturestoreDatasets:
    """:class:`~modelplane.observability.lineage.Datasets` over the featurestore service."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = fpb_grpc.FeatureStoreServiceStub(channel)
        self._timeout = timeout_s

    async def dataset(self, dataset_id: str) -> DatasetInfo:
        d = await call_peer(self._stub.GetDataset, fpb.GetDatasetRequest(id=dataset_id),
                            f"GetDataset {dataset_id}", self._timeout)
        return DatasetInfo(d.id, d.name, d.version, d.content_hash, d.row_count, d.storage_uri)


__all__ = ["FeaturestoreDatasets"]
