"""Models from the real registry service: ``models:/name@alias`` resolved over its gRPC
contract, artifacts from its MLflow server, and its alias events followed live."""

from __future__ import annotations

import asyncio
import collections

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as tgrpc_aio

from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X = np.random.default_rng(8).normal(size=(1, 4))


@pytest.fixture(scope="module")
def registry_service(shared_registry):
    """The session's shared registry (this module's model and experiment names are its own)."""
    return shared_registry.address, shared_registry.mlflow_uri, shared_registry.keys["admin"]


@pytest.mark.timeout(600)
async def test_serves_models_resolved_by_the_registry_and_follows_its_alias_events(
        make_settings, sv, registry_service):
    from modelplane.registry.v1 import registry_pb2, registry_pb2_grpc

    address, mlflow_uri, admin = registry_service
    await asyncio.to_thread(sv.log_two_versions, mlflow_uri, admin, "fraud",
                            "serving-registry-test")
    md = (("authorization", f"Bearer {admin}"),)
    async with grpc.aio.insecure_channel(address) as rch:
        registry = registry_pb2_grpc.ModelRegistryServiceStub(rch)
        await registry.SetAlias(registry_pb2.SetAliasRequest(
            model_name="fraud", alias="live", version=1), metadata=md)
        settings = make_settings(MODELPLANE_SERVING_MODEL_SOURCE="registry",
                                 MODELPLANE_REGISTRY_TARGET=address,
                                 MODELPLANE_API_KEY=admin)
        async with sv.run_server(settings) as server:
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                d = await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                    pb.CreateDeploymentRequest(deployment=pb.Deployment(
                        name="fraud", model="fraud", traffic_split=pb.TrafficSplit(routes=[
                            pb.Route(target=pb.ModelTarget(alias="live"), weight=1)]))))
            assert [m.version for m in d.loaded_models] == ["1"]
            c = tgrpc_aio.InferenceServerClient(server.grpc_address)
            inp = tgrpc_aio.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X)
            seen: list[str] = []
            failures: list[str] = []
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    try:
                        r = await c.infer("fraud", [inp])
                        seen.append(r.get_response().model_version)
                    except Exception as exc:  # noqa: BLE001
                        failures.append(repr(exc))

            tasks = [asyncio.create_task(load()) for _ in range(3)]
            await sv.wait_until(lambda: len(seen) > 50)
            await registry.SetAlias(registry_pb2.SetAliasRequest(
                model_name="fraud", alias="live", version=2), metadata=md)
            await sv.wait_until(lambda: seen[-10:] == ["2"] * 10, timeout=60)
            stop.set()
            await asyncio.gather(*tasks)
            await c.close()
            assert failures == []
            assert collections.Counter(seen)["1"] > 50
