"""Online feature lookups: modelplane featurestore (gRPC) vs Feast's Python feature server (HTTP).

For each online store (embedded SQLite, Redis, PostgreSQL) both servers read
the same Feast registry and the same online store (10k entities x 50 float
features, materialized once through our API). Each scenario (1 entity x 50
features, 100 x 50) runs the same closed-loop load (CONCURRENCY coroutines,
each with its own connection) against one side, then the other, and prints
throughput, p50/p99 latency, server CPU per request and the ratios.

    uv run python bench/online_features.py --seconds 6          # every store it can reach
    uv run python bench/online_features.py --backends sqlite    # one store
    uv run python bench/online_features.py --feast-sweep        # find feast serve's best setting
    uv run python bench/online_features.py --floor --ours-only  # + gRPC's floor (ready-made bytes)
    uv run python bench/online_features.py --ours-only --profile DIR   # py-spy of our server
    uv run python bench/online_features.py --ours-processes 2   # two featurestore replicas

Redis and PostgreSQL come from ``--redis`` / ``--postgres`` (default
``$MODELPLANE_TEST_REDIS`` / ``$MODELPLANE_TEST_POSTGRES``); each run uses its own
Feast project (Redis keys deleted afterwards) or its own database (dropped).
Every server listens on a free port.

``feast serve`` runs at its best setting on this 2-core machine kind, found
with ``--feast-sweep`` (workers 1/2/4 x registry TTL; see the featurestore
README): ``-w 2 --registry_ttl_sec 3600 --keep-alive-timeout 30
--no-access-log --max-requests 0``. ``--max-requests 0`` because its default
recycles a worker every 1000 requests (a ~1.3 s pause and failed requests);
no access log because it logs every request otherwise. The load client runs in
this process; its CPU and the servers' CPU are printed beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from local_processes import cpu_seconds, free_port

N_FEATURES = 50
VIEW = "bench_features"
KEY = "customer_id"
PROJECT = "bench"


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

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu / self.requests if self.requests else float("nan")

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def run_load(name: str, make_worker, concurrency: int, seconds: float,
                   server_pids: list[int], warmup: float = 1.0) -> Result:
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
    cpu0, client0 = sum(map(tree_cpu, server_pids)), time.process_time()
    start = time.perf_counter()
    stop_at = start + seconds
    await asyncio.gather(*(loop(w) for w in workers))
    elapsed = time.perf_counter() - start
    result = Result(name, len(latencies), errors, elapsed, latencies,
                    sum(map(tree_cpu, server_pids)) - cpu0, time.process_time() - client0)
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


@dataclass(frozen=True)
class FeastSetting:
    workers: int = 2
    registry_ttl: int = 3600
    keep_alive: int = 30

    def args(self) -> list[str]:
        return ["-w", str(self.workers), "--registry_ttl_sec", str(self.registry_ttl),
                "--keep-alive-timeout", str(self.keep_alive), "--no-access-log",
                "--max-requests", "0"]

    def __str__(self) -> str:
        return "feast serve " + " ".join(self.args())


@dataclass
class Backend:
    """One online store setup: our server's environment and Feast's online_store block."""

    name: str
    env: dict[str, str]
    feast_online: dict[str, object]
    cleanup: list = field(default_factory=list)
    after_seed: list = field(default_factory=list)


def stop(procs: list[subprocess.Popen]) -> None:
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
            p.wait()
    procs.clear()


def make_backend(name: str, project: str, fs_dir: Path, args: argparse.Namespace) -> Backend:
    from modelplane.featurestore.feast_config import PostgresParams, redis_connection_string

    if name == "sqlite":
        return Backend(name, {}, {"type": "sqlite", "path": str(fs_dir / "online_store.db")})
    if name == "redis":
        import redis

        def drop_keys(url: str = args.redis, suffix: bytes = project.encode()) -> None:
            client = redis.Redis.from_url(url)
            batch = [k for k in client.scan_iter(match=b"*" + suffix, count=1000)
                     if k.endswith(suffix)]
            for i in range(0, len(batch), 1000):
                client.delete(*batch[i:i + 1000])
            client.close()

        return Backend(name, {"MODELPLANE_FEATURESTORE_ONLINE_STORE": "redis",
                              "MODELPLANE_FEATURESTORE_REDIS_URL": args.redis},
                       {"type": "redis", "connection_string": redis_connection_string(args.redis)},
                       [drop_keys])
    if name == "postgres":
        import psycopg

        admin = PostgresParams.from_url(args.postgres)
        database = f"mp_bench_online_{os.getpid()}"
        with psycopg.connect(admin.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")

        def drop_database() -> None:
            with psycopg.connect(admin.conninfo, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

        params = PostgresParams(admin.host, admin.port, database, admin.user, admin.password)

        def analyze() -> None:
            # The steady state autovacuum reaches a little later: planner statistics for the
            # freshly materialized online table (else the first minutes may scan it whole).
            with psycopg.connect(params.conninfo, autocommit=True) as conn:
                conn.execute("ANALYZE")
        url = args.postgres.rsplit("/", 1)[0] + "/" + database
        return Backend(name, {"MODELPLANE_FEATURESTORE_DATABASE_URL": url,
                              "MODELPLANE_FEATURESTORE_ONLINE_STORE": "postgres",
                              "MODELPLANE_FEATURESTORE_OFFLINE_STORE": "duckdb",
                              "MODELPLANE_FEATURESTORE_REGISTRY": "file"},
                       {"type": "postgres", **params.feast_dict()}, [drop_database], [analyze])
    raise SystemExit(f"unknown backend {name!r}")


async def start_ours(tmp: Path, project: str, backend: Backend, args: argparse.Namespace,
                     procs: list[subprocess.Popen]) -> tuple[list[int], list[int]]:
    """``--ours-processes`` featurestore processes on one data directory and store, each
    on its own port (replicas, as behind a Kubernetes Service): their pids and ports."""
    pids, ports = [], []
    for _ in range(args.ours_processes):
        proc, port = start_one_of_ours(tmp, project, backend, procs)
        pids.append(proc.pid)
        ports.append(port)
    return pids, ports


def start_one_of_ours(tmp: Path, project: str, backend: Backend,
                      procs: list[subprocess.Popen]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, MODELPLANE_DATA_DIR=str(tmp / "data"), MODELPLANE_AUTH="off",
               MODELPLANE_FEATURESTORE_ADDR=f"127.0.0.1:{port}", MODELPLANE_METRICS_ADDR="",
               MODELPLANE_FEATURESTORE_PROJECT=project, OTEL_SDK_DISABLED="true")
    for name in ("DATABASE_URL", "REDIS_URL", "ONLINE_STORE", "OFFLINE_STORE", "REGISTRY"):
        env.pop(f"MODELPLANE_FEATURESTORE_{name}", None)
    env.update(backend.env)
    # Servers start before any timing: blocking Popen is fine here.
    ours = subprocess.Popen(
        [sys.executable, "-m", "modelplane.featurestore.main"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs.append(ours)
    wait_port(port, ours)
    return ours, port


def start_feast(tmp: Path, project: str, backend: Backend, setting: FeastSetting,
                procs: list[subprocess.Popen]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    repo = tmp / f"feast_repo_{port}"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text(json.dumps({
        "project": project, "provider": "local",
        "registry": {"registry_type": "file",
                     "path": str(tmp / "data" / "featurestore" / "registry.db")},
        "online_store": backend.feast_online,
        "offline_store": {"type": "duckdb"}, "entity_key_serialization_version": 3}))
    feast_bin = Path(sys.executable).with_name("feast")
    feast = subprocess.Popen(
        [str(feast_bin), "-c", str(repo), "serve", "-p", str(port), *setting.args()],
        env=dict(os.environ, OTEL_SDK_DISABLED="true"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    procs.append(feast)
    wait_port(port, feast)
    return feast, port


def features() -> list[str]:
    return [f"{VIEW}:f{i}" for i in range(N_FEATURES)]


async def load_ours(ports: list[int], pids: list[int], n_keys: int, args: argparse.Namespace,
                    rnd: random.Random) -> Result:
    import grpc

    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.v1 import featurestore_pb2 as pb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc

    refs = features()
    connections = 0

    async def make_grpc():
        nonlocal connections
        port = ports[connections % len(ports)]  # the connections spread over the processes
        connections += 1
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                            options=[("grpc.use_local_subchannel_pool", 1)])
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(channel)

        async def call() -> None:
            req = pb.GetOnlineFeaturesRequest(feature_refs=refs)
            req.entities[KEY].values.extend(
                types_pb2.Value(int64_value=rnd.randint(1, args.entities)) for _ in range(n_keys))
            resp = await stub.GetOnlineFeatures(req)
            assert len(resp.columns) == N_FEATURES + 1
        call.aclose = channel.close  # type: ignore[attr-defined]
        return call

    spy = None
    if args.profile:
        # py-spy samples our server through the warm-up and the timed run (raw collapsed stacks).
        out = Path(args.profile) / f"{args.backend_now}-{n_keys}x{N_FEATURES}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(  # noqa: ASYNC220 - started before the timed run
            ["uvx", "py-spy", "record", "--nonblocking", "-r", "200", "--format", "raw",
             "-d", str(int(args.seconds + 2)), "-o", str(out), "-p", str(pids[0])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    result = await run_load(f"modelplane {n_keys}x{N_FEATURES}", make_grpc, args.concurrency,
                            args.seconds, pids)
    if spy is not None:
        spy.wait()
    return result


async def load_feast(port: int, pid: int, n_keys: int, args: argparse.Namespace,
                     rnd: random.Random) -> Result:
    import httpx

    refs = features()
    if args.feast_client == "aiohttp":
        return await run_load(f"feast serve {n_keys}x{N_FEATURES}",
                              lambda: _aiohttp_caller(port, refs, n_keys, args, rnd),
                              args.concurrency, args.seconds, [pid])

    async def make_http():
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)

        async def call() -> None:
            keys = [rnd.randint(1, args.entities) for _ in range(n_keys)]
            r = await client.post("/get-online-features",
                                  json={"features": refs, "entities": {KEY: keys}})
            r.raise_for_status()
            assert len(r.json()["results"]) == N_FEATURES + 1
        call.aclose = client.aclose  # type: ignore[attr-defined]
        return call

    return await run_load(f"feast serve {n_keys}x{N_FEATURES}", make_http, args.concurrency,
                          args.seconds, [pid])


async def _aiohttp_caller(port: int, refs: list[str], n_keys: int, args: argparse.Namespace,
                          rnd: random.Random) -> Any:
    """One connection's caller of Feast's HTTP API with aiohttp (less client CPU per
    request than httpx, so on 2 shared cores more is left to the server)."""
    import aiohttp

    session = aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                    connector=aiohttp.TCPConnector(limit=1))

    async def call() -> None:
        keys = [rnd.randint(1, args.entities) for _ in range(n_keys)]
        async with session.post("/get-online-features",
                                json={"features": refs, "entities": {KEY: keys}}) as r:
            r.raise_for_status()
            body = await r.json()
        assert len(body["results"]) == N_FEATURES + 1
    call.aclose = session.close  # type: ignore[attr-defined]
    return call


def print_results(backend: str, setting: FeastSetting, args: argparse.Namespace,
                  results: list[tuple[str, Result, Result]]) -> None:
    print(f"\n== {backend} online store: {args.entities} entities x {N_FEATURES} float features, "
          f"concurrency {args.concurrency}, {args.seconds:g} s per run\n"
          f"   baseline: {setting}")
    head = (f"{'scenario':<22}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
            f"{'srv cpu/s':>10}{'srv ms/req':>11}{'cli cpu/s':>10}")
    print(head)
    print("-" * len(head))
    for label, ours_r, feast_r in results:
        for r in (feast_r, ours_r):
            print(f"{r.name:<22}{r.rps:>9.1f}{r.pct(50):>9.2f}{r.pct(99):>9.2f}{r.errors:>7}"
                  f"{r.server_cpu / r.seconds:>10.2f}{r.cpu_ms_per_request:>11.2f}"
                  f"{r.client_cpu / r.seconds:>10.2f}")
        print(f"  {backend} {label}: throughput {ours_r.rps / feast_r.rps:.1f}x feast, "
              f"p99 {ours_r.pct(99) / feast_r.pct(99):.2f} of feast's, "
              f"server CPU per request {ours_r.cpu_ms_per_request / feast_r.cpu_ms_per_request:.2f}"
              " of feast's")
    sys.stdout.flush()


async def run_backend(name: str, args: argparse.Namespace, settings: list[FeastSetting],
                      ) -> list[tuple[FeastSetting, list[tuple[str, Result, Result]]]]:
    """Seed one store through our server, then load both sides (Feast once per setting)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"mp-bench-online-{name}-"))
    project = f"bench{os.getpid()}{name}"
    backend = make_backend(name, project, tmp / "data" / "featurestore", args)
    args.backend_now = name
    procs: list[subprocess.Popen] = []
    out = []
    try:
        our_pids, our_ports = await start_ours(tmp, project, backend, args, procs)
        now = datetime.now(UTC)
        await seed(f"127.0.0.1:{our_ports[0]}", build_rows(args.entities, now), now)
        for step in backend.after_seed:
            step()
        rnd = random.Random(5)
        our_results = {n: await load_ours(our_ports, our_pids, n, args, rnd) for n in args.shapes}
        if args.ours_only:
            for r in our_results.values():
                print(f"{name:<9}{r.name:<22}{r.rps:>9.1f} req/s  p50 {r.pct(50):.2f} ms  "
                      f"p99 {r.pct(99):.2f} ms  {r.cpu_ms_per_request:.3f} ms server CPU/request  "
                      f"client {r.client_cpu / r.seconds:.2f} cpu/s  errors {r.errors}")
            settings = []
        for setting in settings:
            feast_procs: list[subprocess.Popen] = []
            feast, feast_port = start_feast(tmp, project, backend, setting, feast_procs)
            try:
                results = []
                for n in args.shapes:
                    feast_r = await load_feast(feast_port, feast.pid, n, args, rnd)
                    results.append((f"{n}x{N_FEATURES}", our_results[n], feast_r))
            finally:
                stop(feast_procs)
            out.append((setting, results))
            if not args.feast_sweep:
                print_results(name, setting, args, results)
    finally:
        stop(procs)
        for step in backend.cleanup:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - cleanup is best effort, reported
                print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)  # ~100 MB of SQLite and parquet per store
    return out


def serve_floor(port: int, with_kit: bool) -> None:
    """A server whose GetOnlineFeatures answers with ready-made bytes of the benchmark's
    response shapes: the CPU gRPC (and, ``with_kit``, the kit's interceptors) costs per
    request before any lookup. Run as ``--serve-floor PORT 0|1``."""
    import grpc

    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.runtime import OUR_SERVICE
    from modelplane.featurestore.v1 import featurestore_pb2 as pb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc
    from modelplane.featurestore.wire_handlers import with_wire_responses

    def response(n: int) -> bytes:
        msg = pb.GetOnlineFeaturesResponse()
        key = msg.columns.add(name=KEY, statuses=[pb.FEATURE_STATUS_PRESENT] * n)
        key.values.extend(types_pb2.Value(int64_value=i) for i in range(n))
        key.event_times.extend(Timestamp() for _ in range(n))
        for f in range(N_FEATURES):
            col = msg.columns.add(name=f"f{f}", statuses=[pb.FEATURE_STATUS_PRESENT] * n)
            col.values.extend(types_pb2.Value(double_value=0.1 * i + f) for i in range(n))
            col.event_times.extend(Timestamp(seconds=1_800_000_000) for _ in range(n))
        return msg.SerializeToString()

    from google.protobuf.timestamp_pb2 import Timestamp

    ready = {1: response(1), 100: response(100)}

    class Floor(featurestore_pb2_grpc.FeatureStoreServiceServicer):
        async def GetOnlineFeatures(self, request: Any, context: Any) -> bytes:
            n = len(request.entities[KEY].values)
            return ready.get(n) or response(n)

    add = with_wire_responses(featurestore_pb2_grpc.add_FeatureStoreServiceServicer_to_server,
                              OUR_SERVICE, ["GetOnlineFeatures"])
    if with_kit:
        from modelplane.kit.auth import Role
        from modelplane.kit.server import Servicer, ServiceSpec, serve
        from modelplane.kit.settings import ServiceSettings

        spec = ServiceSpec(name="featurestore", servicers=[Servicer(add, Floor(), OUR_SERVICE)],
                           method_access={f"/{OUR_SERVICE}/GetOnlineFeatures": Role.READER})
        asyncio.run(serve(spec, ServiceSettings.from_env("featurestore")))
        return

    async def bare() -> None:
        server = grpc.aio.server()
        add(Floor(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(bare())


async def measure_floor(args: argparse.Namespace) -> None:
    procs: list[subprocess.Popen] = []
    cleanup: list[str] = []
    rnd = random.Random(5)
    try:
        for with_kit, label in ((False, "bare grpc.aio server"),
                                (True, "kit server (OTel + auth/errors/metrics interceptors)")):
            port = free_port()
            data_dir = tempfile.mkdtemp(prefix="mp-bench-floor-")
            cleanup.append(data_dir)
            env = dict(os.environ, MODELPLANE_AUTH="off", OTEL_SDK_DISABLED="true",
                       MODELPLANE_FEATURESTORE_ADDR=f"127.0.0.1:{port}",
                       MODELPLANE_DATA_DIR=data_dir)
            proc = subprocess.Popen(  # noqa: ASYNC220 - before any timing
                [sys.executable, __file__, "--serve-floor", str(port), str(int(with_kit))],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            procs.append(proc)
            wait_port(port, proc)
            for n in args.shapes:
                r = await load_ours([port], [proc.pid], n, args, rnd)
                print(f"floor, {label}: {n}x{N_FEATURES} ready-made response: {r.rps:.1f} req/s, "
                      f"p50 {r.pct(50):.2f} ms, p99 {r.pct(99):.2f} ms, "
                      f"{r.cpu_ms_per_request:.3f} ms server CPU/request, "
                      f"client {r.client_cpu / r.seconds:.2f} cpu/s")
                sys.stdout.flush()
    finally:
        stop(procs)
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,redis,postgres",
                        help="comma-separated online stores (skipped when their URL is unset)")
    parser.add_argument("--redis", default=os.environ.get("MODELPLANE_TEST_REDIS", ""))
    parser.add_argument("--postgres", default=os.environ.get("MODELPLANE_TEST_POSTGRES", ""))
    parser.add_argument("--shapes", default="1,100",
                        help="entities per request, comma-separated (50 features each)")
    parser.add_argument("--feast-workers", type=int, default=FeastSetting.workers)
    parser.add_argument("--feast-registry-ttl", type=int, default=FeastSetting.registry_ttl)
    parser.add_argument("--feast-keep-alive", type=int, default=FeastSetting.keep_alive)
    parser.add_argument("--feast-client", choices=["httpx", "aiohttp"], default="aiohttp",
                        help="the HTTP client the load uses against feast serve: aiohttp "
                             "costs ~1 ms of client CPU per 1x50 request against httpx's "
                             "~3.4 ms, which on 2 shared cores held feast serve back")
    parser.add_argument("--profile", default="",
                        help="directory: record our server with py-spy (uvx) during its runs")
    parser.add_argument("--ours-only", action="store_true", help="skip feast serve")
    parser.add_argument("--ours-processes", type=int, default=1,
                        help="featurestore processes (replicas on one store, each on its own "
                             "port); the load's connections spread over them")
    parser.add_argument("--feast-sweep", action="store_true",
                        help="try feast serve's settings (workers 1/2/4 x registry TTL) on the "
                             "first backend and print them side by side")
    parser.add_argument("--floor", action="store_true",
                        help="also load servers that answer with ready-made bytes (the gRPC "
                             "floor, bare and with the kit's interceptors)")
    args = parser.parse_args()
    args.shapes = [int(s) for s in args.shapes.split(",")]
    args.backend_now = "floor"
    print(f"load average before: {os.getloadavg()}")
    if args.floor:
        await measure_floor(args)

    backends = []
    for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
        url = {"redis": args.redis, "postgres": args.postgres}.get(name, "-")
        if not url:
            print(f"skipping {name}: give --{name} or set MODELPLANE_TEST_{name.upper()}")
            continue
        backends.append(name)

    if args.feast_sweep:
        settings = [FeastSetting(w, ttl, args.feast_keep_alive)
                    for w in (1, 2, 4) for ttl in (60, 3600)]
        runs = await run_backend(backends[0], args, settings)
        print(f"\nfeast serve settings on {backends[0]}, concurrency {args.concurrency}, "
              f"{args.seconds:g} s per run (modelplane measured once, for scale)")
        for setting, results in runs:
            cells = "  ".join(f"{label}: {f.rps:7.1f} req/s p99 {f.pct(99):7.1f} ms "
                              f"{f.cpu_ms_per_request:6.1f} ms cpu/req"
                              for label, _, f in results)
            print(f"  {' '.join(setting.args()):<75} {cells}")
        print(f"load average after: {os.getloadavg()}")
        return

    setting = FeastSetting(args.feast_workers, args.feast_registry_ttl, args.feast_keep_alive)
    for name in backends:
        await run_backend(name, args, [setting])
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-floor":
        serve_floor(int(sys.argv[2]), sys.argv[3] == "1")
    else:
        asyncio.run(main())
