"""API keys and roles on both contracts served by the featurestore."""

from __future__ import annotations

from typing import Any

import grpc
import pyarrow as pa
import pytest
from feast.protos.feast.serving import ServingService_pb2 as feast_pb
from feast.protos.feast.serving import ServingService_pb2_grpc

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.demo_data import arrow_ipc
from modelplane.featurestore.runtime import build_spec
from modelplane.featurestore.settings import FeatureStoreSettings
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.featurestore.v1 import featurestore_pb2_grpc
from modelplane.kit.auth import Role, add_key
from modelplane.kit.server import running
from modelplane.kit.settings import ServiceSettings


async def test_readers_read_writers_write_and_only_admins_apply_directories(tmp_path: Any) -> None:
    keys_file = tmp_path / "keys.json"
    reader = add_key(keys_file, "reader", Role.READER)
    writer = add_key(keys_file, "writer", Role.WRITER)
    settings = ServiceSettings(service="featurestore", listen="127.0.0.1:0", data_root=tmp_path,
                               auth_enabled=True, api_keys_file=keys_file)
    spec, _ = build_spec(settings, FeatureStoreSettings(data_dir=tmp_path / "fs"))
    async with running(spec, settings) as svc, grpc.aio.insecure_channel(svc.address) as channel:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)
        feast = ServingService_pb2_grpc.ServingServiceStub(channel)

        def auth(key: str) -> list[tuple[str, str]]:
            return [("authorization", f"Bearer {key}")]

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await feast.GetFeastServingInfo(feast_pb.GetFeastServingInfoRequest())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (await feast.GetFeastServingInfo(feast_pb.GetFeastServingInfoRequest(),
                                                metadata=auth(reader))).version

        fv = pb.FeatureView(name="acc_view", entities=["acc"], online=True,
                            features=[pb.Feature(name="x", value_type=pb.VALUE_TYPE_DOUBLE)])
        apply = pb.ApplyRepoRequest(entities=[pb.Entity(name="acc")], feature_views=[fv])
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ApplyRepo(apply, metadata=auth(reader))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await stub.ApplyRepo(apply, metadata=auth(writer))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ApplyRepo(pb.ApplyRepoRequest(repo_path=str(tmp_path)),
                                 metadata=auth(writer))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED

        rows = pa.table({"acc": pa.array([1], pa.int64()),
                         "event_timestamp": pa.array([0], pa.timestamp("s", tz="UTC")), "x": [2.0]})
        push = pb.PushOnlineRowsRequest(feature_view="acc_view",
                                        rows=types_pb2.TableData(arrow_ipc=arrow_ipc(rows)))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.PushOnlineRows(push, metadata=auth(reader))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        await stub.PushOnlineRows(push, metadata=auth(writer))

        async def one_message() -> Any:
            yield pb.StreamOnlineRowsRequest(feature_view="acc_view", rows=push.rows)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StreamOnlineRows(one_message(), metadata=auth(reader))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        streamed = await stub.StreamOnlineRows(one_message(), metadata=auth(writer))
        assert streamed.received_count == 1 and streamed.superseded_count == 1  # same event

        lookup = pb.GetOnlineFeaturesRequest(feature_refs=["acc_view:x"])
        lookup.entities["acc"].values.append(types_pb2.Value(int64_value=1))
        got = await stub.GetOnlineFeatures(lookup, metadata=auth(reader))
        assert got.columns[1].values[0].double_value == 2.0
        req = feast_pb.GetOnlineFeaturesRequest(features=feast_pb.FeatureList(val=["acc_view:x"]))
        req.entities["acc"].val.add(int64_val=1)
        resp = await feast.GetOnlineFeatures(req, metadata=auth(reader))
        assert resp.results[1].values[0].double_val == 2.0


async def test_both_contracts_refuse_calls_as_starting_until_the_runtime_is_built(
        tmp_path: Any) -> None:
    from modelplane.kit.errors import Unavailable

    settings = ServiceSettings(service="featurestore", listen="127.0.0.1:0", data_root=tmp_path,
                               auth_enabled=False)
    spec, runtime = build_spec(settings, FeatureStoreSettings(data_dir=tmp_path / "fs"))
    ours, feasts = (s.implementation for s in spec.servicers)
    with pytest.raises(Unavailable) as info:
        await ours.ListEntities(pb.ListEntitiesRequest(), None)
    assert (info.value.reason, info.value.message) == ("STARTING",
                                                       "the featurestore is still starting")
    with pytest.raises(Unavailable):
        await feasts.GetOnlineFeatures(feast_pb.GetOnlineFeaturesRequest(), None)
    await runtime.start()
    try:
        assert list((await ours.ListEntities(pb.ListEntitiesRequest(), None)).entities) == []
    finally:
        await runtime.stop()
