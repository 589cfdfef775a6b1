"""Serving started before the registry answers (``modelplane down`` then ``up``: both start
in parallel and the registry's MLflow server is slow): persisted deployments wait for the
registry, say so, and become ready by themselves once it answers, without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from modelplane.kit.auth import Role, add_key
from modelplane.kit.pytest_plugin import free_port
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

MODEL = "late-fraud"  # a name no other module registers (BentoML's store is per session)


class LateRegistry:
    """The real registry service (gRPC in-process, ``mlflow server`` child) on a fixed
    address and data dir, so it can be stopped and started again as ``modelplane`` does."""

    def __init__(self, root: Path) -> None:
        from modelplane.kit.settings import ServiceSettings
        from modelplane.registry.settings import RegistrySettings

        keys_file = root / "api_keys.json"
        self.admin = add_key(keys_file, "admin", Role.ADMIN)
        self.address = f"127.0.0.1:{free_port()}"
        environ = {**os.environ, "MODELPLANE_DATA_DIR": str(root / "data"),
                   "MODELPLANE_AUTH": "on", "MODELPLANE_API_KEYS_FILE": str(keys_file),
                   "MODELPLANE_REGISTRY_ADDR": self.address,
                   "MODELPLANE_MLFLOW_ADDR": f"127.0.0.1:{free_port()}",
                   "MODELPLANE_REGISTRY_MLFLOW_WORKERS": "1",
                   "MODELPLANE_REGISTRY_EVENT_POLL_SECONDS": "0.05",
                   "MODELPLANE_REGISTRY_PROTECTED_ALIASES": "champion"}
        environ.pop("MLFLOW_TRACKING_URI", None)
        self.settings = RegistrySettings.from_service(ServiceSettings.from_env("registry",
                                                                               environ))
        self.mlflow_uri = self.settings.mlflow_uri

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[None]:
        from modelplane.kit.server import running
        from modelplane.registry.main import build

        spec, _ = build(self.settings)
        async with running(spec, self.settings.service):
            yield

    def stub(self, ch: grpc.aio.Channel):
        from modelplane.registry.v1 import registry_pb2_grpc

        return registry_pb2_grpc.ModelRegistryServiceStub(ch)

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.admin}"),)


def _deployment(name: str, alias: str) -> pb.Deployment:
    return pb.Deployment(name=name, model=MODEL, traffic_split=pb.TrafficSplit(routes=[
        pb.Route(target=pb.ModelTarget(alias=alias), weight=1)]))


def _rest(server, path: str, body: dict | None = None) -> tuple[int, dict]:
    import httpx

    url = f"http://{server.http_address}/v2/models/{path}"
    r = httpx.post(url, json=body, timeout=10) if body is not None else httpx.get(url,
                                                                                  timeout=10)
    return r.status_code, r.json()


INFER = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                     "data": [0.1, -0.2, 0.3, 0.4]}]}


@pytest.mark.timeout(900)
async def test_deployments_persisted_while_the_registry_is_down_load_once_it_answers(
        make_settings, sv, tmp_path_factory):
    from modelplane.registry.v1 import registry_pb2

    reg = LateRegistry(tmp_path_factory.mktemp("late-registry"))
    settings = make_settings(MODELPLANE_SERVING_MODEL_SOURCE="registry",
                             MODELPLANE_REGISTRY_TARGET=reg.address,
                             MODELPLANE_API_KEY=reg.admin)

    # First life: two versions, deployments following "live" and "next", persisted.
    async with reg.up(), grpc.aio.insecure_channel(reg.address) as rch:
        await asyncio.to_thread(sv.log_two_versions, reg.mlflow_uri, reg.admin, MODEL,
                                "serving-late-registry-test")
        registry = reg.stub(rch)
        for alias in ("live", "next"):
            await registry.SetAlias(registry_pb2.SetAliasRequest(
                model_name=MODEL, alias=alias, version=1), metadata=reg.md)
        async with sv.run_server(settings) as server, \
                grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            for name, alias in (("late-live", "live"), ("late-next", "next")):
                d = await stub.CreateDeployment(pb.CreateDeploymentRequest(
                    deployment=_deployment(name, alias)))
                assert d.state == pb.DEPLOYMENT_STATE_READY
        # "next" goes away while serving is down: a permanent reason after the restart.
        await registry.DeleteAlias(registry_pb2.DeleteAliasRequest(
            model_name=MODEL, alias="next"), metadata=reg.md)

    # Second life: serving starts while nothing answers at the registry's address.
    async with sv.run_server(settings) as server:
        for name in ("late-live", "late-next"):
            rt = server.models.find(name)
            assert rt is not None and rt.state.value == "LOADING", (name, rt and rt.state)
            assert rt.state_message.startswith("waiting for the registry to answer"), \
                rt.state_message
        status, body = await asyncio.to_thread(_rest, server, "late-live/ready")
        assert status == 400 and body["ready"] is False
        assert "waiting for the registry" in body["reason"], body
        status, body = await asyncio.to_thread(_rest, server, "late-live/infer", INFER)
        assert status == 503 and body["reason"] == "DEPLOYMENT_NOT_READY", body

        # Retried with backoff meanwhile (not only once): the attempt count grows.
        first = server.models.find("late-live").attempts
        await sv.wait_until(lambda: server.models.find("late-live").attempts > first + 1,
                            timeout=30)

        # The registry comes back (same address and data, as after `modelplane up`).
        async with reg.up(), grpc.aio.insecure_channel(reg.address) as rch:
            answered = time.monotonic()
            await sv.wait_until(
                lambda: server.models.find("late-live").state.value == "READY", timeout=60)
            ready_after = time.monotonic() - answered
            status, body = await asyncio.to_thread(_rest, server, "late-live/ready")
            assert status == 200 and body == {"name": "late-live", "ready": True,
                                              "generation": body["generation"]}
            assert body["generation"] >= 1  # which write of it this replica serves
            status, body = await asyncio.to_thread(_rest, server, "late-live/infer", INFER)
            assert status == 200, body
            assert body["model_version"] == "1"

            # The deployment whose alias is gone says so, and waits for the alias.
            await sv.wait_until(
                lambda: server.models.find("late-next").state.value == "FAILED", timeout=30)
            msg = server.models.find("late-next").state_message
            assert "does not exist" in msg or "not found" in msg.lower(), msg
            assert "permanent" in msg, msg
            status, body = await asyncio.to_thread(_rest, server, "late-next/ready")
            assert status == 400 and "permanent" in body["reason"], body

            await reg.stub(rch).SetAlias(registry_pb2.SetAliasRequest(
                model_name=MODEL, alias="next", version=2), metadata=reg.md)
            await sv.wait_until(
                lambda: server.models.find("late-next").state.value == "READY", timeout=30)
            status, body = await asyncio.to_thread(_rest, server, "late-next/infer", INFER)
            assert status == 200 and body["model_version"] == "2", body
        print(f"late-live ready {ready_after:.1f}s after the registry reported SERVING")
