"""Container health check for modelplane images (Docker HEALTHCHECK and compose).

    modelplane-healthcheck grpc 127.0.0.1:7102            # grpc.health.v1 Check, overall server
    modelplane-healthcheck http http://127.0.0.1:7100/healthz

Exit status 0 when the server answers SERVING (gRPC) or 2xx (HTTP), 1 otherwise.
Kubernetes does not use this: its probes are native (``grpc:`` / ``httpGet:``).
Plain-text gRPC only; with MODELPLANE_TLS_* set, use the Kubernetes probes instead.
"""

from __future__ import annotations

import sys
import urllib.request

TIMEOUT_SECONDS = 3.0


def grpc_serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            print(f"{target}: {exc.code().name}", file=sys.stderr)
            return False
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}",
              file=sys.stderr)
    return serving


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("grpc", "http"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, target = argv
    return 0 if (grpc_serving(target) if kind == "grpc" else http_ok(target)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
