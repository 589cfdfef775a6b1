"""Writes to the online store: one push of rows (``PushOnlineRows``) and a stream of
batches (``StreamOnlineRows``), both keeping a row only when its event is newer than
what the store holds for its key (``stored_event_seconds``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa

from modelplane.featurestore.definitions import FeatureViewSpec, ValueKind
from modelplane.featurestore.feature_repository import FeatureRepository
from modelplane.featurestore.online_stream import OnlineRowStream, RowBatch, StreamPushResult


class OnlineWriter:
    def __init__(self, repository: FeatureRepository, stream_batch_rows: int) -> None:
        self.repository = repository
        self.stream_batch_rows = stream_batch_rows

    def stored_event_seconds(self, view: FeatureViewSpec,
                             keys: dict[str, list[Any]]) -> list[float]:
        """Event time (epoch seconds) the online store holds for each key row; -inf when
        none, so that an event stamped at the epoch still counts as newer."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        kinds = self.repository.key_kinds()
        protos = []
        for row in zip(*(keys[k] for k in view.join_keys)):
            values = []
            for k, v in zip(view.join_keys, row):
                kind = kinds[k]
                if kind == ValueKind.STRING:
                    values.append(Value(string_val=v))
                elif kind == ValueKind.INT32:
                    values.append(Value(int32_val=int(v)))
                elif kind == ValueKind.BYTES:
                    values.append(Value(bytes_val=v))
                else:
                    values.append(Value(int64_val=int(v)))
            protos.append(EntityKey(join_keys=list(view.join_keys), entity_values=values))
        store = self.repository.store
        feast_view = self.repository.feast_view(view.name)
        provider = store._get_provider()
        found = provider.online_read(config=store.config, table=feast_view, entity_keys=protos,
                                     requested_features=[f.name for f in feast_view.features])
        return [ts.timestamp() if ts is not None else float("-inf") for ts, _ in found]

    def push(self, view: str, rows: pa.Table, also_offline: bool) -> int:
        return self.repository.push_online(view, rows, also_offline, self.stored_event_seconds)

    async def push_stream(self, batches: AsyncIterator[RowBatch]) -> StreamPushResult:
        """Batches of rows from a stream, screened row by row and written in batches."""
        return await OnlineRowStream(self.repository, self.stored_event_seconds,
                                     batch_rows=self.stream_batch_rows).push(batches)
