"""Registry benchmark: resolving ``name@alias`` over our gRPC vs the stock MLflow client.

    uv run python bench/registry.py [--seconds 8] [--concurrency 8]

One registry process (``python -m modelplane.registry.main``, API keys on) which
supervises one ``mlflow server`` (uvicorn, 2 workers, SQLite backend); one
load-client process (this one). Same server, same model, same alias, same
concurrency, one side after the other:

  (a) ``ModelRegistryService.ResolveModelUri("models:/bench@challenger")``, one
      grpc.aio channel per coroutine;
  (b) ``MlflowClient.get_model_version_by_alias("bench", "challenger")`` against
      the same mlflow server over REST, one thread per concurrent caller.

Prints throughput, p50 and p99 per side, the CPU seconds the registry and the
mlflow server used during each side, and the ratio (target: a >= 5x b). Then
checks the cache is never stale: the stock client moves the alias and the very
next resolve must name the new version.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

from local_processes import free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL, ALIAS = "bench", "challenger"


def summary(name: str, lat: list[float], seconds: float, errors: int) -> dict[str, Any]:
    lat = sorted(lat)
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: 0.0)
    out = {"side": name, "requests": len(lat), "rps": len(lat) / seconds, "p50_ms": p(0.50),
           "p99_ms": p(0.99), "errors": errors}
    print(f"  {name:<44} {out['rps']:>9.0f} req/s   p50 {out['p50_ms']:7.2f} ms   "
          f"p99 {out['p99_ms']:7.2f} ms   errors {errors}")
    return out


class CpuMeter:
    """CPU seconds of the registry process and of the mlflow server tree, separately."""

    def __init__(self, registry_pid: int) -> None:
        import psutil

        self.registry = psutil.Process(registry_pid)

    def _times(self) -> tuple[float, float]:
        import psutil

        def cpu(p: Any) -> float:
            try:
                t = p.cpu_times()
                return float(t.user + t.system)
            except psutil.Error:
                return 0.0

        children = self.registry.children(recursive=True)
        return cpu(self.registry), sum(cpu(c) for c in children)

    def __enter__(self) -> Self:
        self.start = self._times()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._times()
        self.registry_cpu = end[0] - self.start[0]
        self.mlflow_cpu = end[1] - self.start[1]


async def grpc_side(address: str, key: str, seconds: float, concurrency: int
                    ) -> tuple[list[float], int]:
    import grpc

    from modelplane.registry.v1 import registry_pb2 as pb
    from modelplane.registry.v1 import registry_pb2_grpc

    lat: list[float] = []
    errors = [0]
    md = (("authorization", f"Bearer {key}"),)
    req = pb.ResolveModelUriRequest(uri=f"models:/{MODEL}@{ALIAS}")

    async def worker(stop: float) -> None:
        async with grpc.aio.insecure_channel(address) as ch:
            stub = registry_pb2_grpc.ModelRegistryServiceStub(ch)
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    got = await stub.ResolveModelUri(req, metadata=md)
                    assert got.model_version.version == 1
                    lat.append(time.perf_counter() - t0)
                except Exception:  # noqa: BLE001
                    errors[0] += 1

    # warm up (channels, cache), then measure
    await asyncio.gather(*(worker(time.perf_counter() + 0.5) for _ in range(concurrency)))
    lat.clear()
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(worker(stop) for _ in range(concurrency)))
    return lat, errors[0]


def mlflow_side(uri: str, seconds: float, concurrency: int) -> tuple[list[float], int]:
    from mlflow.tracking import MlflowClient

    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(stop: float) -> None:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        mine = []
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                mv = client.get_model_version_by_alias(MODEL, ALIAS)
                assert mv.version == "1"
                mine.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001
                with lock:
                    errors[0] += 1
        with lock:
            lat.extend(mine)

    def run(duration: float) -> None:
        stop = time.perf_counter() + duration
        threads = [threading.Thread(target=worker, args=(stop,)) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run(0.5)
    lat.clear()
    run(seconds)
    return lat, errors[0]


def wait_serving(address: str, key: str, timeout: float) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise SystemExit(f"registry did not become SERVING on {address} within {timeout:.0f}s")


def log_model(uri: str) -> None:
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(0).normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    mlflow.set_tracking_uri(uri)
    for _ in range(2):
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL,
                                     signature=infer_signature(X, y),
                                     pip_requirements=["scikit-learn"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()

    from modelplane.kit.auth import Role, add_key

    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    keys_file = tmp / "api_keys.json"
    key = add_key(keys_file, "bench", Role.ADMIN)
    grpc_port, mlflow_port = free_port(), free_port()
    address, mlflow_uri = f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{mlflow_port}"
    env = {**os.environ, "MODELPLANE_DATA_DIR": str(tmp / "data"),
           "MODELPLANE_API_KEYS_FILE": str(keys_file), "MODELPLANE_AUTH": "on",
           "MODELPLANE_REGISTRY_ADDR": address,
           "MODELPLANE_MLFLOW_ADDR": f"127.0.0.1:{mlflow_port}",
           "MODELPLANE_REGISTRY_MLFLOW_WORKERS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp / "registry.log"
    print(f"starting registry + mlflow server (log: {log_path}) ...", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "modelplane.registry.main"], env=env,
                            stdout=open(log_path, "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        t0 = time.monotonic()
        wait_serving(address, key, 600)
        print(f"  serving after {time.monotonic() - t0:.1f}s", flush=True)
        os.environ["MLFLOW_TRACKING_TOKEN"] = key
        log_model(mlflow_uri)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
        client.set_registered_model_alias(MODEL, ALIAS, "1")
        meter = CpuMeter(proc.pid)

        print(f"\nresolve {MODEL}@{ALIAS}: {args.seconds:.0f}s per side, concurrency "
              f"{args.concurrency}")
        with meter:
            lat, errs = asyncio.run(grpc_side(address, key, args.seconds, args.concurrency))
        a = summary("(a) modelplane gRPC ResolveModelUri", lat, args.seconds, errs)
        a_cpu = (meter.registry_cpu, meter.mlflow_cpu)
        with meter:
            lat, errs = mlflow_side(mlflow_uri, args.seconds, args.concurrency)
        b = summary("(b) MlflowClient.get_model_version_by_alias", lat, args.seconds, errs)
        b_cpu = (meter.registry_cpu, meter.mlflow_cpu)
        print(f"  server CPU during (a): registry {a_cpu[0]:.1f}s, mlflow {a_cpu[1]:.1f}s; "
              f"during (b): registry {b_cpu[0]:.1f}s, mlflow {b_cpu[1]:.1f}s")
        ratio = a["rps"] / b["rps"] if b["rps"] else float("inf")
        print(f"\nthroughput ratio (a)/(b): {ratio:.1f}x  (target >= 5x); "
              f"p50 ratio (b)/(a): {b['p50_ms'] / max(a['p50_ms'], 1e-9):.1f}x")

        # Never stale: the stock client moves the alias, the next resolve sees it.
        import grpc

        from modelplane.registry.v1 import registry_pb2 as pb
        from modelplane.registry.v1 import registry_pb2_grpc

        with grpc.insecure_channel(address) as ch:
            stub = registry_pb2_grpc.ModelRegistryServiceStub(ch)
            md = (("authorization", f"Bearer {key}"),)
            uri = f"models:/{MODEL}@{ALIAS}"
            stale = 0
            for target in ("2", "1", "2", "1"):
                client.set_registered_model_alias(MODEL, ALIAS, target)
                got = stub.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri), metadata=md)
                stale += got.model_version.version != int(target)
        print(f"fresh after 4 alias moves by the stock client: "
              f"{'yes' if stale == 0 else f'NO ({stale} stale answers)'}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
