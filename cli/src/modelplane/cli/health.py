"""Is each part of the platform answering? (grpc.health.v1 and the gateway's /healthz)."""

from __future__ import annotations

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

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
