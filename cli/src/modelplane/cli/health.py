"""Is each part of the platform answering? (grpc.health.v1 and the gateway's /healthz, and
what the supervisor knows of each process: ``status_report``)."""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelplane.cli.platform import Platform, alive, instance_name
from modelplane.kit.settings import SERVICES

UNREACHABLE = "UNREACHABLE"


def grpc_status(address: str, timeout: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(address) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.RpcError:
        return UNREACHABLE
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def http_status(url: str, timeout: float = 1.0) -> str:
    try:
        resp = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout)
    except httpx.HTTPError:
        return UNREACHABLE
    return "SERVING" if resp.status_code == 200 else f"HTTP_{resp.status_code}"


def _supervised(platform: Platform, name: str) -> dict[str, object]:
    """What the supervisor says of one process (state, restarts, last exit code)."""
    view = platform.instances.get(name, {})
    return {k: view[k] for k in ("pid", "state", "restarts", "last_exit_code", "message")
            if k in view}


def status_report(platform: Platform) -> dict[str, object]:
    """Health of every part, and what the supervisor knows of its processes.

    ``services[<svc>]``: ``status`` (health of its first replica), ``restarts``
    (over all its replicas), ``last_exit_code``, ``state`` (``running``,
    ``backoff``, ``crash-loop``); with several replicas, ``replicas`` lists each.
    """
    services: dict[str, dict[str, object]] = {}
    for component in (*SERVICES, "gateway"):
        replicas = []
        for r in range(platform.replica_count(component)):
            name = instance_name(component, r)
            if component == "gateway":
                entry: dict[str, object] = {"http": platform.gateway_url,
                                            "status": http_status(platform.gateway_url)}
            else:
                address = platform.grpc_address(component, r)
                entry = {"grpc": address, "status": grpc_status(address)}
            entry.update(_supervised(platform, name))
            replicas.append(entry)
        summary = dict(replicas[0])
        summary.pop("pid", None)
        summary["restarts"] = sum(int(str(e.get("restarts", 0))) for e in replicas)
        if len(replicas) > 1:
            summary["status"] = ("SERVING" if all(e["status"] == "SERVING" for e in replicas)
                                 else next(str(e["status"]) for e in replicas
                                           if e["status"] != "SERVING"))
            summary["replicas"] = replicas
        services[component] = summary
    key = platform.admin_key_file.read_text().strip() if platform.admin_key_file.exists() else ""
    supervisor = platform.supervisor_pid
    return {"services": services, "mlflow": {"tracking_uri": platform.mlflow_uri},
            "api_key": key,
            "supervisor": {"pid": supervisor,
                           "running": bool(supervisor and alive(supervisor))}}


def all_serving(report: dict[str, object]) -> bool:
    services = report["services"]
    assert isinstance(services, dict)
    return all(s["status"] == "SERVING" for s in services.values())
