"""Alias swap under load with no failed request; the prediction log through an outage;
the ServingService before and after the runtime has started."""

from __future__ import annotations

import asyncio
import collections

import grpc
import numpy as np
import pytest
import tritonclient.grpc.aio as tgrpc_aio

from modelplane.kit.errors import Unavailable
from modelplane.kit.server import running
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X = np.random.default_rng(11).normal(size=(1, 4))


async def _client_loop(address: str, stop: asyncio.Event, seen: list, failures: list) -> None:
    c = tgrpc_aio.InferenceServerClient(address)
    inp = tgrpc_aio.InferInput("x", [1, 4], "FP64")
    inp.set_data_from_numpy(X)
    try:
        while not stop.is_set():
            try:
                r = await c.infer("churn", [inp])
                seen.append(r.get_response().model_version)
            except Exception as exc:  # noqa: BLE001 - counted, the test asserts none
                failures.append(repr(exc))
    finally:
        await c.close()


async def test_moving_the_alias_swaps_the_model_under_load_without_a_failed_request(
        make_settings, sv, registry):
    registry.set_alias("churn", "live", "1")
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=pb.Deployment(
                    name="churn", model="churn", traffic_split=pb.TrafficSplit(routes=[
                        pb.Route(target=pb.ModelTarget(alias="live"), weight=1)]))))
        stop = asyncio.Event()
        seen: list[str] = []
        failures: list[str] = []
        clients = [asyncio.create_task(_client_loop(server.grpc_address, stop, seen, failures))
                   for _ in range(4)]
        await sv.wait_until(lambda: len(seen) > 100)
        await asyncio.to_thread(registry.set_alias, "churn", "live", "2")
        await sv.wait_until(lambda: seen[-1] == "2" and seen[-20:] == ["2"] * 20, timeout=20)
        n_after = len(seen)
        await sv.wait_until(lambda: len(seen) > n_after + 100)
        stop.set()
        await asyncio.gather(*clients)
        assert failures == []
        counts = collections.Counter(seen)
        assert counts["1"] > 100 and counts["2"] > 100
        # Once swapped, it stays swapped.
        first_two = seen.index("2")
        assert set(seen[first_two + 20:]) == {"2"}


async def test_an_alias_moved_before_the_watcher_first_looks_is_still_followed(
        make_settings, sv, registry):
    """The alias moves right after the deployment loads, before the (slow) poll has
    looked at it once: the first look must count as a change, not as the baseline."""
    registry.set_alias("churn", "live", "1")
    settings = make_settings(MODELPLANE_SERVING_ALIAS_POLL_SECONDS="3")
    async with sv.run_server(settings) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=pb.Deployment(
                    name="churn", model="churn", traffic_split=pb.TrafficSplit(routes=[
                        pb.Route(target=pb.ModelTarget(alias="live"), weight=1)]))))
        await asyncio.to_thread(registry.set_alias, "churn", "live", "2")
        c = tgrpc_aio.InferenceServerClient(server.grpc_address)
        inp = tgrpc_aio.InferInput("x", [1, 4], "FP64")
        inp.set_data_from_numpy(X)
        versions: list[str] = []

        async def served() -> str:
            r = await c.infer("churn", [inp])
            return str(r.get_response().model_version)

        try:
            deadline = asyncio.get_running_loop().time() + 20
            while asyncio.get_running_loop().time() < deadline:
                versions.append(await served())
                if versions[-1] == "2":
                    break
                await asyncio.sleep(0.2)
        finally:
            await c.close()
        assert versions[0] == "1" and versions[-1] == "2", versions[-5:]


async def test_observability_outage_spools_and_exactly_n_records_arrive(make_settings, sv):
    obs = sv.ObservabilityStandIn()
    await obs.start()
    settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
    n = 60
    c = None
    try:
        async with sv.run_server(settings) as server:
            server.logger.retry_seconds = 0.2
            server.logger.max_retry_seconds = 1.0
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                    pb.CreateDeploymentRequest(deployment=pb.Deployment(name="churn",
                                                                        model="churn")))
            c = tgrpc_aio.InferenceServerClient(server.grpc_address)
            inp = tgrpc_aio.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X)
            await c.infer("churn", [inp])
            await sv.wait_until(lambda: len(obs.records) == 1 and server.logger.pending == 0)
            await obs.stop()                       # observability goes down
            ids = set()
            for _ in range(n):
                r = await c.infer("churn", [inp])  # no request fails
                ids.add(r.get_response().parameters["prediction_id"].string_param)
            assert server.logger.pending == n     # each answered record is on disk
            assert list(settings.spool_dir.glob("wal/0/*.seg"))
            await obs.start()                      # and comes back
            await sv.wait_until(lambda: len(obs.records) == n + 1, timeout=15)
            await sv.wait_until(lambda: server.logger.pending == 0)
            assert ids <= set(obs.records)
            assert obs.received == n + 1           # exactly N: nothing twice

            # Graceful shutdown while observability is down: records stay on disk ...
            await obs.stop()
            for _ in range(n):
                await c.infer("churn", [inp])
            await c.close()
            c = None
        # ... and the next start delivers them.
        await obs.start()
        async with sv.run_server(settings) as server:
            assert server.logger.pending == n
            await sv.wait_until(lambda: len(obs.records) == 2 * n + 1, timeout=15)
        assert obs.received == 2 * n + 1
    finally:
        if c is not None:
            await c.close()
        await obs.stop()


async def test_the_serving_service_is_unavailable_starting_until_the_runtime_has_started(
        make_settings):
    """The servicer answers from the control plane the runtime builds at start: before
    that, UNAVAILABLE / STARTING (not an error from a half-built servicer); once started,
    the control plane's own answers (here NOT_FOUND for an unknown deployment)."""
    from modelplane.serving.runtime import ServingRuntime

    settings = make_settings()
    server = ServingRuntime(settings)
    with pytest.raises(Unavailable) as err:
        await server.api.GetDeployment(pb.GetDeploymentRequest(name="churn"), None)
    assert err.value.reason == "STARTING"
    async with running(server.spec, settings.service) as svc, \
            grpc.aio.insecure_channel(svc.address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as rpc:
            await serving_pb2_grpc.ServingServiceStub(ch).GetDeployment(
                pb.GetDeploymentRequest(name="no-such-deployment"))
        assert rpc.value.code() == grpc.StatusCode.NOT_FOUND, rpc.value.details()


async def test_stop_closes_the_channels_to_the_peers_made_by_the_runtime(make_settings):
    """The clients of observability (prediction log, rollout evidence and alerts) and
    of the featurestore (online features, datasets) use channels the runtime made
    through the kit base: the runtime's stop closes all of them."""
    from modelplane.serving.runtime import ServingRuntime

    settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET="127.0.0.1:1",
                             MODELPLANE_SERVING_FEATURESTORE_TARGET="127.0.0.1:1")
    server = ServingRuntime(settings)
    channels = list(server._channels)
    assert len(channels) == 5  # observability x3, featurestore x2 (the model source: MLflow)
    async with running(server.spec, settings.service):
        assert all(ch.get_state() is not grpc.ChannelConnectivity.SHUTDOWN for ch in channels)
    assert [ch.get_state() for ch in channels] == [grpc.ChannelConnectivity.SHUTDOWN] * 5
