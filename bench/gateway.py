"""One unary RPC through the HTTP gateway vs the same RPC over direct gRPC.

    uv run python bench/gateway.py                      # 20000 requests a side, concurrency 16
    uv run python bench/gateway.py --requests 5000 --concurrency 8 --rounds 2

The RPC is the registry contract's ``GetModel`` (``GET /v1/models/{name}``),
answered by a stub servicer on the kit's real server (interceptors, health,
reflection; auth off) in its own process; the gateway runs as it does in
production (``python -m modelplane.gateway.main``, uvicorn + uvloop +
httptools) in another. The client runs in this process, one connection per
concurrent worker on both sides; the HTTP client is a minimal keep-alive
HTTP/1.1 client on asyncio streams that parses every JSON response, the gRPC
client a grpc.aio channel that parses every protobuf response. Both sides get
the same payload and concurrency; the script prints throughput, latency
percentiles and the CPU seconds each process used, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keepalive import timed_requests
from local_processes import cpu_seconds, free_port

MODEL_NAME = "fraud-detector"


# --------------------------------------------------------------------------- backend process


def run_backend(port: int) -> None:
    from google.protobuf import timestamp_pb2

    from modelplane.kit.server import Servicer, ServiceSpec, serve
    from modelplane.kit.settings import ServiceSettings
    from modelplane.registry.v1 import registry_pb2, registry_pb2_grpc

    created = timestamp_pb2.Timestamp(seconds=1_790_000_000)
    model = registry_pb2.Model(
        name=MODEL_NAME, description="Card fraud classifier (gradient boosting)",
        tags={"team": "risk", "domain": "payments", "tier": "1", "owner": "ml-platform",
              "pii": "false"},
        aliases=[registry_pb2.Alias(alias="champion", version=7),
                 registry_pb2.Alias(alias="challenger", version=8)],
        latest_version=8, create_time=created, update_time=created)

    class Registry(registry_pb2_grpc.ModelRegistryServiceServicer):
        async def GetModel(self, request, context):
            return model

    spec = ServiceSpec(name="registry", servicers=[Servicer(
        registry_pb2_grpc.add_ModelRegistryServiceServicer_to_server, Registry(),
        "modelplane.registry.v1.ModelRegistryService")])
    settings = ServiceSettings.from_env("registry", {
        **os.environ, "MODELPLANE_AUTH": "off", "MODELPLANE_REGISTRY_ADDR": f"127.0.0.1:{port}"})
    asyncio.run(serve(spec, settings))


# --------------------------------------------------------------------------- clients


async def _grpc_worker(target: str, count: int, latencies: list[float]) -> None:
    import grpc

    from modelplane.registry.v1 import registry_pb2

    # A local subchannel pool gives this worker its own connection.
    async with grpc.aio.insecure_channel(target, options=[
            ("grpc.use_local_subchannel_pool", 1)]) as channel:
        call = channel.unary_unary(
            "/modelplane.registry.v1.ModelRegistryService/GetModel",
            request_serializer=registry_pb2.GetModelRequest.SerializeToString,
            response_deserializer=registry_pb2.Model.FromString)
        request = registry_pb2.GetModelRequest(name=MODEL_NAME)
        for _ in range(count):
            start = time.perf_counter()
            reply = await call(request, timeout=30)
            latencies.append(time.perf_counter() - start)
            assert reply.name == MODEL_NAME


async def _http_worker(host: str, port: int, count: int, latencies: list[float]) -> None:
    request = (f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Accept: application/json\r\n\r\n").encode()

    def check(status: int, body: bytes) -> None:
        assert status == 200 and json.loads(body)["name"] == MODEL_NAME, (status, body[:200])

    await timed_requests(host, port, request, count, latencies, check)


async def _run(make: Callable[[int, list[float]], Awaitable[None]], requests: int,
               concurrency: int) -> tuple[float, list[float], float]:
    latencies: list[float] = []
    per_worker = [requests // concurrency + (1 if i < requests % concurrency else 0)
                  for i in range(concurrency)]
    cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(make(n, latencies) for n in per_worker))
    elapsed = time.perf_counter() - start
    return elapsed, latencies, time.process_time() - cpu0


def _wait_http(port: int, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("gateway did not start")


def _wait_grpc(port: int, timeout: float = 60.0) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise SystemExit("backend did not start")


@dataclass
class _Totals:
    """One side's sums over the rounds: wall time, CPU seconds, latencies."""

    elapsed: float = 0.0
    client: float = 0.0
    backend: float = 0.0
    gateway: float = 0.0
    latencies: list[float] = field(default_factory=list)


def _summary(name: str, elapsed: float, latencies: list[float], client_cpu: float,
             server_cpu: dict[str, float], requests: int) -> float:
    rps = requests / elapsed
    qs = statistics.quantiles(latencies, n=100)
    cpu = ", ".join(f"{k} {v:.1f}s" for k, v in server_cpu.items())
    print(f"{name:<12} {rps:8.0f} req/s   p50 {qs[49] * 1e3:6.2f} ms   p99 {qs[98] * 1e3:6.2f} ms"
          f"   CPU: client {client_cpu:.1f}s, {cpu}  ({elapsed:.1f}s wall)")
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate direct and gateway this many times")
    parser.add_argument("--role", choices=["bench", "backend"], default="bench",
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "backend":
        run_backend(args.port)
        return

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    grpc_port, http_port = free_port(), free_port()
    env = {**os.environ, "MODELPLANE_AUTH": "off", "MODELPLANE_LOG_LEVEL": "WARNING",
           "MODELPLANE_REGISTRY_TARGET": f"127.0.0.1:{grpc_port}",
           "MODELPLANE_GATEWAY_ADDR": f"127.0.0.1:{http_port}"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    backend = subprocess.Popen([sys.executable, __file__, "--role", "backend",
                                "--port", str(grpc_port)], env=env)
    gateway = subprocess.Popen([sys.executable, "-m", "modelplane.gateway.main"], env=env)
    try:
        _wait_grpc(grpc_port)
        _wait_http(http_port)
        target = f"127.0.0.1:{grpc_port}"
        print(f"GetModel, {args.requests} requests, concurrency {args.concurrency}, "
              f"{os.cpu_count()} CPUs; backend pid {backend.pid}, gateway pid {gateway.pid}")

        def direct(n: int, lat: list[float]) -> Awaitable[None]:
            return _grpc_worker(target, n, lat)

        def through_gateway(n: int, lat: list[float]) -> Awaitable[None]:
            return _http_worker("127.0.0.1", http_port, n, lat)

        sides = {"direct gRPC": direct, "gateway": through_gateway}
        for make in sides.values():
            asyncio.run(_run(make, args.warmup, args.concurrency))
        # Alternate the two sides in rounds so that load from other processes on a
        # shared machine falls on both alike; totals are over all rounds.
        per_round = max(1, args.requests // args.rounds)
        totals = {name: _Totals() for name in sides}
        for round_no in range(1, args.rounds + 1):
            line = []
            for name, make in sides.items():
                cpu0 = {"backend": cpu_seconds(backend.pid),
                        "gateway": cpu_seconds(gateway.pid)}
                elapsed, latencies, client_cpu = asyncio.run(
                    _run(make, per_round, args.concurrency))
                total = totals[name]
                total.elapsed += elapsed
                total.client += client_cpu
                total.latencies.extend(latencies)
                total.backend += cpu_seconds(backend.pid) - cpu0["backend"]
                total.gateway += cpu_seconds(gateway.pid) - cpu0["gateway"]
                line.append(f"{name} {per_round / elapsed:6.0f} req/s")
            print(f"  round {round_no}: " + ", ".join(line))
        results: dict[str, float] = {}
        cpu_per_request: dict[str, float] = {}
        for name, total in totals.items():
            server_cpu = {"backend": total.backend}
            if name == "gateway":
                server_cpu["gateway"] = total.gateway
            n = per_round * args.rounds
            results[name] = _summary(name, total.elapsed, total.latencies, total.client,
                                     server_cpu, n)
            cpu_per_request[name] = (total.client + sum(server_cpu.values())) / n
        ratio = results["gateway"] / results["direct gRPC"]
        direct_ms = cpu_per_request["direct gRPC"] * 1e3
        gateway_ms = cpu_per_request["gateway"] * 1e3
        print(f"CPU per request (client + servers): direct {direct_ms:.2f} ms, "
              f"through the gateway {gateway_ms:.2f} ms")
        print(f"ratio gateway/direct = {ratio:.2f}  (target >= 0.5)")
    finally:
        for proc in (gateway, backend):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, backend):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
