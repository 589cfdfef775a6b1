"""Weighted canary split, stickiness, run-time changes that survive a restart (SQLite,
PostgreSQL)."""

from __future__ import annotations

import asyncio
import collections

import grpc
import numpy as np
import tritonclient.grpc as tgrpc

from modelplane.kit.auth import ANONYMOUS_ADMIN
from modelplane.serving.predictor import InferenceRequest
from modelplane.serving.servable_model import ModelInput
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X1 = np.zeros((1, 4))


def canary(weights: tuple[float, float] = (90, 10), **extra) -> pb.Deployment:
    return pb.Deployment(
        name="churn", model="churn",
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=pb.ModelTarget(alias="champion"), weight=weights[0]),
            pb.Route(target=pb.ModelTarget(alias="challenger"), weight=weights[1])]),
        **extra)


async def _versions(server, n: int, sticky: str | None = None) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for i in range(n):
        params = {"user_id": sticky} if sticky is not None else {}
        resp = await server.predictor.infer(
            InferenceRequest("churn", ModelInput(1, matrix=X1, matrix_name="x"), str(i), params),
            ANONYMOUS_ADMIN)
        counts[resp.model_version] += 1
    return counts


async def test_weights_within_two_points_over_10k_requests_and_split_changes_live(
        make_settings, sv):
    async with sv.run_server(make_settings(), ) as server:  # noqa: SIM117 - the inner block needs the server's address
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=canary(prediction_logging=pb.PREDICTION_LOGGING_OFF)))
            counts = await _versions(server, 10_000)
            assert abs(counts["2"] / 10_000 - 0.10) <= 0.02, counts
            # Change at run time, no restart.
            await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                name="churn", traffic_split=canary((50, 50)).traffic_split))
            counts = await _versions(server, 10_000)
            assert abs(counts["2"] / 10_000 - 0.50) <= 0.02, counts


async def test_sticky_key_pins_a_user_to_one_version_by_parameter_or_header(make_settings, sv):
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=canary((50, 50), sticky_key="user_id")))
        seen: dict[str, set[str]] = {}
        for user in range(40):
            counts = await _versions(server, 5, sticky=f"user-{user}")
            seen[f"user-{user}"] = set(counts)
        assert all(len(v) == 1 for v in seen.values()), seen
        # Both versions get users (the split still applies across users).
        assert {next(iter(v)) for v in seen.values()} == {"1", "2"}

        def over_grpc() -> tuple[set[str], set[str]]:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            inp = tgrpc.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X1)
            by_param = {c.infer("churn", [inp], parameters={"user_id": "user-7"})
                        .get_response().model_version for _ in range(10)}
            by_header = {c.infer("churn", [inp], headers={"user_id": "user-7"})
                         .get_response().model_version for _ in range(10)}
            c.close()
            return by_param, by_header

        by_param, by_header = await asyncio.to_thread(over_grpc)
        assert by_param == seen["user-7"] == by_header

        def pinned() -> tuple[str, str]:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            inp = tgrpc.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X1)
            v2 = c.infer("churn", [inp], model_version="2").get_response().model_version
            try:
                c.infer("churn", [inp], model_version="9")
                missing = ""
            except Exception as exc:  # noqa: BLE001
                missing = exc.status()
            c.close()
            return v2, missing

        assert await asyncio.to_thread(pinned) == ("2", "StatusCode.NOT_FOUND")


async def _restart_keeps_split(settings, sv) -> None:
    async with sv.run_server(settings) as server:  # noqa: SIM117 - the inner block needs the server's address
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            created = await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=canary()))
            updated = await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                name="churn", traffic_split=canary((0, 100)).traffic_split, etag=created.etag))
            assert updated.etag != created.etag
            # A stale etag is refused.
            try:
                await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                    name="churn", traffic_split=canary((50, 50)).traffic_split,
                    etag=created.etag))
                raise AssertionError("stale etag accepted")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.ABORTED
    async with sv.run_server(settings) as server:
        assert (await _versions(server, 50)) == {"2": 50}
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            got = await stub.GetDeployment(pb.GetDeploymentRequest(name="churn"))
            assert [r.weight for r in got.traffic_split.routes] == [0, 100]
            assert got.state == pb.DEPLOYMENT_STATE_READY
            listed = await stub.ListDeployments(pb.ListDeploymentsRequest())
            assert [d.name for d in listed.deployments] == ["churn"]
            await stub.DeleteDeployment(pb.DeleteDeploymentRequest(name="churn"))


async def test_split_survives_restart_sqlite(make_settings, sv):
    await _restart_keeps_split(make_settings(), sv)


async def test_split_survives_restart_postgresql(make_settings, sv, make_postgres_database):
    dsn = make_postgres_database("serving_routing")
    await _restart_keeps_split(make_settings(MODELPLANE_SERVING_DATABASE_URL=dsn), sv)


async def test_invalid_deployments_are_refused_with_field_violations(make_settings, sv):
    from google.rpc import error_details_pb2, status_pb2

    async with sv.run_server(make_settings()) as server:  # noqa: SIM117 - the inner block needs the server's address
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            bad = canary((-1, 0))
            bad.name = "Bad Name"
            try:
                await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=bad))
                raise AssertionError("accepted")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                md = dict(exc.trailing_metadata())
                status = status_pb2.Status.FromString(md["grpc-status-details-bin"])
                fields = set()
                for d in status.details:
                    if d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                        br = error_details_pb2.BadRequest()
                        d.Unpack(br)
                        fields |= {v.field for v in br.field_violations}
                assert "deployment.name" in fields
                assert "deployment.traffic_split.routes[0].weight" in fields
            missing = pb.Deployment(name="ghost", model="no-such-model")
            try:
                await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=missing))
                raise AssertionError("accepted")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
                assert "no-such-model" in exc.details()
