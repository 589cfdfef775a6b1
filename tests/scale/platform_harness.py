"""A real local platform for the scale tests: ``modelplane up --detach`` in a temporary
data directory, a tiny model deployed through the registry's MLflow, inference through
the gateway, the evaluation store counted through observability's contract.

Shared by ``tests/test_platform_cli.py`` and ``test_platform_replicas.py`` (imported by
path: the tests run in importlib mode).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

MODEL = "supervised-model"
DEPLOYMENT = "supervised"
ALIAS = "live"
PARTS = ("featurestore", "registry", "validator", "serving", "observability", "gateway")


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 400
        ) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELPLANE_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "modelplane.cli.main", *args], env=base,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class LocalPlatform:
    data: Path
    base: int
    env: dict[str, str] = field(default_factory=dict)
    up: subprocess.CompletedProcess[str] | None = None

    @property
    def common(self) -> tuple[str, ...]:
        return ("--data-dir", str(self.data), "--base-port", str(self.base))

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.base}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.base + 10}"

    @property
    def key(self) -> str:
        return (self.data / "admin.key").read_text().strip()

    def grpc_address(self, service: str) -> str:
        return f"127.0.0.1:{self.base + 1 + PARTS.index(service)}"

    def state(self) -> dict[str, Any]:
        for _ in range(20):  # written atomically, but it may be between two writes
            try:
                return dict(json.loads((self.data / "platform.json").read_text()))
            except (OSError, json.JSONDecodeError):
                time.sleep(0.05)
        raise AssertionError("platform.json unreadable")

    def instance(self, name: str) -> dict[str, Any]:
        return dict(self.state()["instances"][name])

    def status(self) -> dict[str, Any]:
        out = cli("status", "--json", *self.common, timeout=60)
        return dict(json.loads(out.stdout))

    def supervisor_log(self) -> str:
        path = self.data / "logs" / "supervisor.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, name: str) -> int:
        pid = int(self.instance(name)["pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, restarts: int, timeout: float = 300) -> float:
        """Seconds until ``name`` has restarted ``restarts`` times and answers SERVING."""
        from modelplane.cli.health import grpc_status

        started = time.monotonic()
        address = self.grpc_address(name)
        while time.monotonic() - started < timeout:
            view = self.instance(name)
            if int(view["restarts"]) >= restarts and grpc_status(address) == "SERVING":
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"{name} not back after {timeout:.0f}s: {self.instance(name)}\n"
                             f"{self.supervisor_log()[-3000:]}")


def start(data: Path, base: int, *extra: str, env: dict[str, str] | None = None
          ) -> LocalPlatform:
    platform = LocalPlatform(data, base, dict(env or {}))
    platform.up = cli("up", "--detach", "--timeout", "360", *platform.common, *extra,
                      env=platform.env, timeout=420)
    return platform


def session_processes(sids: list[int]) -> list[str]:
    """``pid command`` of every live process in any of these sessions (orphans)."""
    from modelplane.cli.supervisor import session_members

    out = []
    for sid in sids:
        for pid in session_members(sid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            out.append(f"{pid} {cmd.decode(errors='replace')[:120]}")
    return out


def stop(platform: LocalPlatform) -> list[str]:
    """``modelplane down``; what was left behind (must be nothing)."""
    try:
        state = platform.state()
    except AssertionError:
        state = {"pids": {}}
    sids = [int(p) for p in state.get("pids", {}).values()]
    cli("down", *platform.common, timeout=120)
    return session_processes(sids)


# a model -----------------------------------------------------------------------------------


def deploy_tiny_model(platform: LocalPlatform, timeout: float = 240) -> None:
    """A two-feature LogisticRegression logged with the stock MLflow client, alias ``live``,
    deployed as ``supervised``; returns once the deployment is READY."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from modelplane.registry.v1 import registry_pb2 as rg
    from modelplane.registry.v1 import registry_pb2_grpc as rg_grpc
    from modelplane.serving.v1 import serving_pb2 as sv
    from modelplane.serving.v1 import serving_pb2_grpc as sv_grpc

    os.environ["MLFLOW_TRACKING_TOKEN"] = platform.key
    os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
    mlflow.set_tracking_uri(platform.mlflow)
    mlflow.set_registry_uri(platform.mlflow)  # not a registry an earlier module named
    mlflow.set_experiment("supervision")
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    y = (x["x1"] + x["x2"] > 0).astype(np.int64)
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model",
                                        signature=infer_signature(x, model.predict(x)),
                                        pip_requirements=["scikit-learn"],
                                        registered_model_name=MODEL)
    metadata = (("authorization", f"Bearer {platform.key}"),)
    with grpc.insecure_channel(platform.grpc_address("registry")) as ch:
        rg_grpc.ModelRegistryServiceStub(ch).SetAlias(rg.SetAliasRequest(
            model_name=MODEL, alias=ALIAS, version=int(info.registered_model_version)),
            metadata=metadata, timeout=60)
    deployment = sv.Deployment(name=DEPLOYMENT, model=MODEL, traffic_split=sv.TrafficSplit(
        routes=[sv.Route(target=sv.ModelTarget(alias=ALIAS), weight=100, label=ALIAS)]))
    with grpc.insecure_channel(platform.grpc_address("serving")) as ch:
        stub = sv_grpc.ServingServiceStub(ch)
        # the registry resolves the alias and serving starts the load: minutes at load 15
        stub.CreateDeployment(sv.CreateDeploymentRequest(
            deployment=deployment,
            # the gate stays on: the admin overrides it, audited, for an unvalidated toy
            validation_override_reason="scale test: a two-feature toy model, not validated"),
            metadata=metadata, timeout=300)
        deadline = time.monotonic() + timeout
        while True:
            d = stub.GetDeployment(sv.GetDeploymentRequest(name=DEPLOYMENT),
                                   metadata=metadata, timeout=30)
            if d.state == sv.DEPLOYMENT_STATE_READY:
                return
            assert d.state != sv.DEPLOYMENT_STATE_FAILED, d.state_message
            assert time.monotonic() < deadline, f"not READY: {d.state_message}"
            time.sleep(0.5)


def infer_body(i: int) -> dict[str, Any]:
    return {"inputs": [
        {"name": "x1", "datatype": "FP64", "shape": [1], "data": [((i % 17) - 8) / 4]},
        {"name": "x2", "datatype": "FP64", "shape": [1], "data": [((i % 5) - 2) / 3]}]}


@dataclass
class Traffic:
    ok: list[str] = field(default_factory=list)  # prediction ids of answered requests
    errors: list[str] = field(default_factory=list)


async def send_traffic(platform: LocalPlatform, n: int, *, concurrency: int = 4,
                       on_answer: Any = None, pace: float = 0.0) -> Traffic:
    """``n`` inference requests through the gateway (OIP REST); ``on_answer(count)`` after
    each answer (the test's hook to kill something mid-traffic)."""
    url = f"{platform.gateway}/v2/models/{DEPLOYMENT}/infer"
    traffic = Traffic()
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30.0, headers={
            "authorization": f"Bearer {platform.key}"}) as client:
        async def one(i: int) -> None:
            async with sem:
                try:
                    r = await client.post(url, json=infer_body(i))
                except httpx.HTTPError as exc:
                    traffic.errors.append(f"{type(exc).__name__}: {exc}")
                    return
                finally:
                    if pace:
                        await asyncio.sleep(pace)
            if r.status_code == 200:
                traffic.ok.append(str(r.json()["parameters"]["prediction_id"]))
            else:
                traffic.errors.append(f"{r.status_code} {r.text[:200]}")
            if on_answer is not None:
                on_answer(len(traffic.ok) + len(traffic.errors))

        await asyncio.gather(*(one(i) for i in range(n)))
    return traffic


def observed_records(platform: LocalPlatform) -> int:
    from modelplane.observability.v1 import observability_pb2 as ob
    from modelplane.observability.v1 import observability_pb2_grpc as ob_grpc

    with grpc.insecure_channel(platform.grpc_address("observability")) as ch:
        models = ob_grpc.ObservabilityServiceStub(ch).ListObservedModels(
            ob.ListObservedModelsRequest(page_size=1000),
            metadata=(("authorization", f"Bearer {platform.key}"),), timeout=30)
    found = next((m for m in models.models if m.model == MODEL), None)
    return int(found.record_count) if found else 0


def wait_records(platform: LocalPlatform, expected: int, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        try:
            seen = observed_records(platform)
        except grpc.RpcError:
            seen = -1
        if seen >= expected:
            return seen
        time.sleep(1.0)
    return seen


def health_samples(platform: LocalPlatform, parts: tuple[str, ...], stop: Any,
                   period: float = 0.5) -> Iterator[dict[str, str]]:
    """Health of ``parts`` every ``period`` until ``stop()`` is true."""
    from modelplane.cli.health import grpc_status, http_status

    while not stop():
        yield {p: (http_status(platform.gateway) if p == "gateway"
                   else grpc_status(platform.grpc_address(p))) for p in parts}
        time.sleep(period)
