"""Online feature lookups: modelplane featurestore (gRPC) vs Feast's Python feature server (HTTP).

Both serve the same Feast registry and the same SQLite online store (10k
entities x 50 float features, materialized once through our API). Each
scenario runs the same closed-loop load (CONCURRENCY coroutines, each with
its own connection) against one side, then the other, and prints p50/p99
latency and throughput for both and the ratios.

    uv run python bench/online_features.py                 # 10k entities, 6 s per run
    uv run python bench/online_features.py --seconds 10 --entities 20000

Feast is started as the NOTES advise for a fair run:
``feast serve --no-access-log --max-requests 0`` (one worker, its default).
The load client runs in this process (one core of the two); its CPU and the
servers' CPU are printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

N_FEATURES = 50
VIEW = "bench_features"
KEY = "customer_id"
PROJECT = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def tree_cpu(pid: int) -> float:
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        try:
            total += tree_cpu(int(child))
        except OSError:
            pass
    return total


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    server_cpu: float
    client_cpu: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def run_load(name: str, make_worker, concurrency: int, seconds: float, server_pid: int,
                   warmup: float = 1.0) -> Result:
    workers = [await make_worker() for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    stop_at = 0.0
    recording = False

    async def loop(call) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                await call()
            except Exception:  # noqa: BLE001 - counted
                errors += 1
                continue
            if recording:
                latencies.append((time.perf_counter() - t0) * 1000)

    stop_at = time.perf_counter() + warmup
    await asyncio.gather(*(loop(w) for w in workers))
    recording = True
    cpu0, client0 = tree_cpu(server_pid), time.process_time()
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(loop(w) for w in workers))
    elapsed = time.perf_counter() - start
    result = Result(name, len(latencies), errors, elapsed, latencies,
                    tree_cpu(server_pid) - cpu0, time.process_time() - client0)
    for w in workers:
        close = getattr(w, "aclose", None)
        if close:
            await close()
    return result


def build_rows(n_entities: int, now: datetime) -> pa.Table:
    rng = np.random.default_rng(1)
    cols = {KEY: pa.array(np.arange(1, n_entities + 1, dtype=np.int64)),
            "event_timestamp": pa.array([now - timedelta(minutes=5)] * n_entities,
                                        pa.timestamp("us", tz="UTC"))}
    for i in range(N_FEATURES):
        cols[f"f{i}"] = pa.array(rng.normal(size=n_entities))
    return pa.table(cols)


async def seed(address: str, rows: pa.Table, now: datetime) -> None:
    import grpc

    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.demo_data import arrow_ipc
    from modelplane.featurestore.v1 import featurestore_pb2 as pb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc

    async with grpc.aio.insecure_channel(address) as ch:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(ch)
        fv = pb.FeatureView(name=VIEW, entities=["customer"], online=True,
                            features=[pb.Feature(name=f"f{i}", value_type=pb.VALUE_TYPE_DOUBLE)
                                      for i in range(N_FEATURES)])
        fv.ttl.FromTimedelta(timedelta(days=30))
        await stub.ApplyRepo(pb.ApplyRepoRequest(
            entities=[pb.Entity(name="customer", join_key=KEY, value_type=pb.VALUE_TYPE_INT64)],
            feature_views=[fv]))
        await stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(
            feature_view=VIEW, rows=types_pb2.TableData(arrow_ipc=arrow_ipc(rows))))
        req = pb.MaterializeRequest(feature_views=[VIEW])
        req.end_time.FromDatetime(now)
        async for _ in stub.Materialize(req):
            pass


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"port {port} did not open")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    import grpc
    import httpx

    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.v1 import featurestore_pb2 as pb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-online-"))
    data_root = tmp / "data"
    fs_dir = data_root / "featurestore"
    our_port, feast_port = free_port(), free_port()
    env = dict(os.environ, MODELPLANE_DATA_DIR=str(data_root), MODELPLANE_AUTH="off",
               MODELPLANE_FEATURESTORE_ADDR=f"127.0.0.1:{our_port}",
               MODELPLANE_FEATURESTORE_PROJECT=PROJECT, OTEL_SDK_DISABLED="true")
    env.pop("MODELPLANE_FEATURESTORE_DATABASE_URL", None)
    procs: list[subprocess.Popen] = []
    try:
        # Servers start once, before any timing: blocking Popen is fine here.
        ours = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "modelplane.featurestore.main"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(ours)
        wait_port(our_port, ours)
        now = datetime.now(UTC)
        rows = build_rows(args.entities, now)
        await seed(f"127.0.0.1:{our_port}", rows, now)

        repo = tmp / "feast_repo"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(json.dumps({
            "project": PROJECT, "provider": "local",
            "registry": {"registry_type": "file", "path": str(fs_dir / "registry.db")},
            "online_store": {"type": "sqlite", "path": str(fs_dir / "online_store.db")},
            "offline_store": {"type": "duckdb"}, "entity_key_serialization_version": 3}))
        feast_bin = Path(sys.executable).with_name("feast")
        feast = subprocess.Popen(  # noqa: ASYNC220
            [str(feast_bin), "-c", str(repo), "serve", "-p", str(feast_port),
             "--no-access-log", "--max-requests", "0"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(feast)
        wait_port(feast_port, feast)

        features = [f"{VIEW}:f{i}" for i in range(N_FEATURES)]
        rnd = random.Random(5)
        results: list[tuple[str, Result, Result]] = []
        for n_keys in (1, 100):
            def keys(n_keys: int = n_keys) -> list[int]:
                return [rnd.randint(1, args.entities) for _ in range(n_keys)]

            async def make_grpc():
                channel = grpc.aio.insecure_channel(f"127.0.0.1:{our_port}",
                                                    options=[("grpc.use_local_subchannel_pool", 1)])
                stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)

                async def call() -> None:
                    req = pb.GetOnlineFeaturesRequest(feature_refs=features)
                    req.entities[KEY].values.extend(types_pb2.Value(int64_value=k) for k in keys())
                    resp = await stub.GetOnlineFeatures(req)
                    assert len(resp.columns) == N_FEATURES + 1
                call.aclose = channel.close  # type: ignore[attr-defined]
                return call

            async def make_http():
                client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{feast_port}", timeout=30)

                async def call() -> None:
                    r = await client.post("/get-online-features",
                                          json={"features": features, "entities": {KEY: keys()}})
                    r.raise_for_status()
                    assert len(r.json()["results"]) == N_FEATURES + 1
                call.aclose = client.aclose  # type: ignore[attr-defined]
                return call

            label = f"{n_keys}x{N_FEATURES}"
            feast_res = await run_load(f"feast serve {label}", make_http, args.concurrency,
                                       args.seconds, feast.pid)
            our_res = await run_load(f"modelplane {label}", make_grpc, args.concurrency,
                                     args.seconds, ours.pid)
            results.append((label, our_res, feast_res))

        print(f"\n{args.entities} entities x {N_FEATURES} float features, SQLite online store, "
              f"concurrency {args.concurrency}, {args.seconds:.0f} s per run\n")
        head = (f"{'scenario':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
                f"{'srv cpu/s':>11}{'cli cpu/s':>11}")
        print(head)
        print("-" * len(head))
        for label, ours_r, feast_r in results:
            for r in (feast_r, ours_r):
                print(f"{r.name:<26}{r.rps:>9.1f}{r.pct(50):>9.2f}{r.pct(99):>9.2f}{r.errors:>8}"
                      f"{r.server_cpu / r.seconds:>11.2f}{r.client_cpu / r.seconds:>11.2f}")
            print(f"{'  ratio ' + label:<26}{ours_r.rps / feast_r.rps:>8.1f}x"
                  f"{ours_r.pct(50) / feast_r.pct(50):>9.2f}"
                  f"{ours_r.pct(99) / feast_r.pct(99):>9.2f}"
                  "   (throughput ours/feast; latency ours/feast)")
        print()
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main())
