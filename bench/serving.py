"""Serving benchmark: the router's cost against a bare BentoML service, MLServer and itself.

    uv run python bench/serving.py [--seconds 8] [--rounds 3] [--concurrency 8] [--features 20]
        [--sides abcd] [--bento-workers 2] [--mlserver-workers 0] [--serving-processes 1]
        [--profile DIR]

Same scikit-learn model (LogisticRegression), same concurrency, one load-client
process (its own connection per coroutine). modelplane-serving runs as
``--serving-processes`` replicas (each its own port and data directory; the
client's connections spread over them), BentoML with its workers, MLServer as
one process:

  (a) modelplane-serving, OIP gRPC ModelInfer through the router: 90/10 canary
      (champion / challenger), fallback chain armed, prediction logging on
      (to a LogRecords sink process);
  (b) a bare ``@bentoml.service`` with one ``@bentoml.api`` calling predict, run
      by ``bentoml serve`` with 2 workers (its best here: when both cores are free
      it uses both, 1407 req/s at 1.68 cores against at most ~890 with 1 worker),
      over HTTP/JSON;
  (c) modelplane-serving with one route, no fallback, logging off;
  (d) MLServer 1.7.1 with its scikit-learn runtime (what KServe runs for this
      model), OIP gRPC, the champion as a joblib file, in its own virtual
      environment under ~/.cache/modelplane-bench (made on first run;
      ``MODELPLANE_BENCH_CACHE`` moves it). ``parallel_workers: 0`` (inference in
      the server process) is its fastest setting here; with >= 1 its workers
      need uvloop < 0.22, which that environment pins.

All servers run at once and are measured in alternation (a, b, c, d per round),
so load from elsewhere on the machine hits each alike; every port is a free one.
Prints every round (throughput, p50, p99, server and client CPU in cores, server
CPU per request), the median round per side, the ratios round by round (targets:
a/b >= 3x, a/c >= 0.9, a/d >= 1.5x, every round) and the load average.
``--profile DIR`` records each side's server with py-spy during its rounds (py-spy
from PATH or ``uvx``). On 2 cores the client competes with the server: compare
figures of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from local_processes import free_port

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MODELPLANE_BENCH_CACHE", Path.home() / ".cache" / "modelplane-bench"))
MLSERVER_VENV = CACHE / "mlserver-1.7.1"
# scikit-learn as in our environment, so the champion's joblib file loads as saved;
# uvloop < 0.22: MLServer 1.7.1's parallel workers fail on 0.22+ ("There is no current
# event loop in thread 'MainThread'"), which --mlserver-workers >= 1 needs.
MLSERVER_PACKAGES = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"]


# --------------------------------------------------------------------------- load client
async def _grpc_worker(address: str, model: str, row: Any, stop: float,
                       lat: list[float], errors: list[str]) -> None:
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    req = service_pb2.ModelInferRequest(model_name=model)
    req.inputs.add(name="input-0", datatype="FP64", shape=[1, len(row)])
    req.raw_input_contents.append(row.astype("float64").tobytes())
    req.parameters["user_id"].string_param = "bench"
    async with grpc.aio.insecure_channel(address) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                await stub.ModelInfer(req)
            except grpc.aio.AioRpcError as exc:
                errors.append(exc.code().name)
                continue
            lat.append(time.perf_counter() - t0)


async def _http_worker(url: str, row: Any, stop: float, lat: list[float],
                       errors: list[str]) -> None:
    import aiohttp

    body = json.dumps({"inputs": [row.tolist()]}).encode()
    conn = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=conn) as session:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            async with session.post(url, data=body,
                                    headers={"content-type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    errors.append(str(r.status))
                    continue
            lat.append(time.perf_counter() - t0)


def client_main(args: argparse.Namespace) -> None:
    import numpy as np
    import psutil

    row = np.random.default_rng(0).normal(size=args.features)

    async def run(seconds: float) -> tuple[list[float], list[str]]:
        lat: list[float] = []
        errors: list[str] = []
        stop = time.perf_counter() + seconds
        if args.kind == "grpc":
            # a comma-separated target is several server processes: connections spread
            addresses = args.target.split(",")
            workers = [_grpc_worker(addresses[i % len(addresses)], args.model, row, stop, lat,
                                    errors) for i in range(args.concurrency)]
        else:
            workers = [_http_worker(args.target, row, stop, lat, errors)
                       for _ in range(args.concurrency)]
        await asyncio.gather(*workers)
        return lat, errors

    asyncio.run(run(args.warmup))
    procs = []
    for pid in args.server_pid.split(","):
        server = psutil.Process(int(pid))
        procs += [server, *server.children(recursive=True)]

    def cpu() -> float:
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    me = psutil.Process()
    profiler = None
    if args.profile:
        # 200 samples/s without pausing the server; py-spy's own messages go next to it
        with open(f"{args.profile}.log", "w") as spy_log:
            profiler = subprocess.Popen(
                [*_py_spy(), "record", "--nonblocking", "-r", "200",
                 *args.profile_flags.split(), "--format", "raw", "-d", str(int(args.seconds)),
                 "-p", args.server_pid.split(",")[0], "-o", args.profile],
                stdout=spy_log, stderr=spy_log)
    s0, c0 = cpu(), me.cpu_times()
    t0 = time.perf_counter()
    lat, errors = asyncio.run(run(args.seconds))
    wall = time.perf_counter() - t0
    s1, c1 = cpu(), me.cpu_times()
    if profiler is not None:
        profiler.wait()
    lat.sort()
    print(json.dumps({
        "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else 0,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else 0,
        "server_cpu": (s1 - s0) / wall,
        "server_ms_per_req": (s1 - s0) * 1000 / len(lat) if lat else 0,
        "client_cpu": (c1.user + c1.system - c0.user - c0.system) / wall}))


def _py_spy() -> list[str]:
    import shutil

    exe = shutil.which("py-spy")
    return [exe] if exe else ["uvx", "py-spy"]


def measure(kind: str, target: str, server_pid: str, args: argparse.Namespace,
            model: str = "", profile: str = "") -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--client", "--kind", kind, "--target", target,
           "--model", model, "--server-pid", str(server_pid), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--concurrency", str(args.concurrency),
           "--features", str(args.features),
           *(["--profile", profile, f"--profile-flags={args.profile_flags}"] if profile else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------- servers
SINK = textwrap.dedent("""
    import asyncio, grpc, sys
    import pyarrow as pa
    from modelplane.observability.v1 import observability_pb2 as o, observability_pb2_grpc as g
    class S(g.ObservabilityServiceServicer):
        n = 0
        async def LogRecords(self, it, ctx):
            k = 0
            async for req in it:
                if req.arrow_ipc:  # the columnar form: read the batch, count its rows
                    k += pa.ipc.open_stream(req.arrow_ipc).read_all().num_rows
                else:
                    k += len(req.records)
            S.n += k
            return o.LogRecordsResponse(accepted_count=k)
    async def main():
        s = grpc.aio.server(); g.add_ObservabilityServiceServicer_to_server(S(), s)
        s.add_insecure_port(sys.argv[1]); await s.start(); await s.wait_for_termination()
    asyncio.run(main())
""")

# The floor: grpcio's asyncio server answering ModelInfer with a prebuilt response (no
# decoding, no model), on the same proto, under the same client. "kit" wraps it in the
# kit's server (OpenTelemetry interceptor, guard, health, reflection) as serving is.
FLOOR = textwrap.dedent("""
    import asyncio, sys
    import grpc, numpy as np
    from tritonclient.grpc import service_pb2 as pb, service_pb2_grpc as g
    reply = pb.ModelInferResponse(model_name="floor", model_version="1", id="")
    reply.outputs.add(name="output-0", datatype="INT64", shape=[1])
    reply.raw_output_contents.append(np.zeros(1, np.int64).tobytes())
    class Floor(g.GRPCInferenceServiceServicer):
        async def ModelInfer(self, request, context):
            return reply
    async def main():
        if sys.argv[2] == "kit":
            from modelplane.kit.server import Servicer, ServiceSpec, running
            from modelplane.kit.settings import ServiceSettings
            from modelplane.kit.auth import Role
            spec = ServiceSpec("floor", [Servicer(g.add_GRPCInferenceServiceServicer_to_server,
                                                  Floor(), "inference.GRPCInferenceService")],
                               method_access={"/inference.GRPCInferenceService/ModelInfer":
                                              Role.READER})
            from modelplane.kit.telemetry import setup_tracing
            setup_tracing("floor")  # as serve() does for serving
            settings = ServiceSettings.from_env("floor").with_listen(sys.argv[1])
            async with running(spec, settings):
                await asyncio.Event().wait()
        s = grpc.aio.server(); g.add_GRPCInferenceServiceServicer_to_server(Floor(), s)
        s.add_insecure_port(sys.argv[1]); await s.start(); await s.wait_for_termination()
    asyncio.run(main())
""")

BARE_SERVICE = textwrap.dedent("""
    import bentoml
    import numpy as np

    @bentoml.service(workers=WORKERS)
    class Bare:
        model_ref = bentoml.models.BentoModel("bench-churn:latest")

        def __init__(self) -> None:
            self.model = bentoml.sklearn.load_model(self.model_ref)

        @bentoml.api
        def predict(self, inputs: np.ndarray) -> np.ndarray:
            return self.model.predict(inputs)
""")


def ensure_mlserver_venv() -> Path:
    """MLServer's own environment (made once): it pins its own FastAPI, pydantic, uvloop."""
    python = MLSERVER_VENV / "bin" / "python"
    marker = MLSERVER_VENV / ".installed"
    if marker.exists():
        return MLSERVER_VENV
    import sklearn

    print(f"creating the MLServer environment in {MLSERVER_VENV} (first run only) ...",
          flush=True)
    MLSERVER_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["uv", "venv", "-q", "--python", "3.11", str(MLSERVER_VENV)], check=True)
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), *MLSERVER_PACKAGES,
                    f"scikit-learn=={sklearn.__version__}"], check=True)
    marker.touch()
    return MLSERVER_VENV


def mlserver_repository(tmp: Path, model: Any, workers: int) -> tuple[Path, int, int]:
    """A model repository for ``mlserver start``: server settings (free ports, no debug
    logging, no metrics server) and the champion as ``model.joblib``."""
    import joblib

    root = tmp / "mlserver"
    (root / "churn").mkdir(parents=True)
    joblib.dump(model, root / "churn" / "model.joblib")
    grpc_port, http_port = free_port(), free_port()
    (root / "settings.json").write_text(json.dumps({
        "debug": False, "parallel_workers": workers, "grpc_port": grpc_port,
        "http_port": http_port, "metrics_port": free_port(), "metrics_endpoint": None,
        "host": "127.0.0.1"}))
    (root / "churn" / "model-settings.json").write_text(json.dumps({
        "name": "churn", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    return root, grpc_port, http_port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"port {port} did not open")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} never became ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def prepare_models(tmp: Path, n_features: int) -> tuple[str, Any]:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    MlflowClient(uri, uri).create_experiment("bench",
                                             artifact_location=(tmp / "artifacts").as_uri())
    mlflow.set_experiment("bench")  # artifacts go to the experiment's location under tmp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, n_features))
    y = (X[:, 0] - X[:, 1] > 0).astype(int)
    models = [LogisticRegression(C=c).fit(X, y) for c in (1.0, 0.1, 0.01)]
    for m in models:
        with mlflow.start_run():
            mlflow.sklearn.log_model(m, name="model", registered_model_name="churn",
                                     signature=infer_signature(X, m.predict(X)))
    client = MlflowClient(uri, uri)
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("churn", "challenger", "2")
    # The bare BentoML service serves the champion from its own model store.
    import bentoml

    bentoml.sklearn.save_model("bench-churn", models[0])
    return uri, models[0]


def create_deployments(address: str) -> None:
    import grpc
    from google.protobuf import duration_pb2

    from modelplane.serving.v1 import serving_pb2 as pb
    from modelplane.serving.v1 import serving_pb2_grpc

    timeout = duration_pb2.Duration(nanos=500_000_000)
    routed = pb.Deployment(
        name="routed", model="churn", sticky_key="",
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=pb.ModelTarget(alias="champion"), weight=90),
            pb.Route(target=pb.ModelTarget(alias="challenger"), weight=10)]),
        fallback=pb.FallbackPolicy(chain=[pb.ModelTarget(version="3")], timeout=timeout),
        prediction_logging=pb.PREDICTION_LOGGING_ON)
    plain = pb.Deployment(
        name="plain", model="churn",
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=pb.ModelTarget(alias="champion"), weight=1)]),
        prediction_logging=pb.PREDICTION_LOGGING_OFF)
    with grpc.insecure_channel(address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        for d in (routed, plain):
            stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=d), timeout=120)


def start_serving(tmp: Path, env: dict[str, str], uri: str, sink_port: int, replica: int,
                  procs: list[subprocess.Popen[bytes]]) -> tuple[str, int]:
    """One modelplane-serving process (replica ``replica``: its own port and data
    directory, the same models and deployments) logging to the sink: its address, pid."""
    grpc_port = free_port()
    serving_env = {**env, "MODELPLANE_SERVING_ADDR": f"127.0.0.1:{grpc_port}",
                   "MODELPLANE_DATA_DIR": str(tmp / f"data-{replica}"),
                   "MODELPLANE_SERVING_HTTP_ADDR": "",
                   "MODELPLANE_SERVING_MODEL_SOURCE": uri,
                   "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
                   "MODELPLANE_SERVING_OBSERVABILITY_TARGET": f"127.0.0.1:{sink_port}",
                   "MODELPLANE_SERVING_ALIAS_POLL_SECONDS": "5",
                   # the benchmark's model is not validated; the gate is not measured
                   "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off"}
    # serving's own log is kept (not the other sides'): a failure names its cause
    serving_log = tmp / f"serving-{replica}.log"
    with serving_log.open("wb") as log_file:
        serving = subprocess.Popen([sys.executable, "-m", "modelplane.serving.main"],
                                   env=serving_env, start_new_session=True,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    procs.append(serving)
    wait_port(grpc_port, serving)
    try:
        create_deployments(f"127.0.0.1:{grpc_port}")
    except Exception:
        tail = serving_log.read_text(errors="replace").splitlines()[-40:]
        print(f"creating the deployments failed; the end of {serving_log}:\n"
              + "\n".join(tail), file=sys.stderr)
        raise
    return f"127.0.0.1:{grpc_port}", serving.pid


NAMES = {"a": "(a) modelplane gRPC, canary+fallback+log",
         "b": "(b) bare BentoML (bentoml serve, HTTP)",
         "c": "(c) modelplane gRPC, 1 route, no log",
         "d": "(d) MLServer 1.7.1 sklearn, OIP gRPC",
         "e": "(e) floor: grpc.aio, prebuilt reply",
         "f": "(f) floor in the kit's server"}
TARGETS = {("a", "b"): ("x", 3.0), ("a", "c"): ("", 0.9), ("a", "d"): ("x", 1.5)}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def report(rounds: dict[str, list[dict[str, Any]]]) -> None:
    sides = [k for k in NAMES if rounds.get(k)]
    for side in sides:
        for i, r in enumerate(rounds[side]):
            print(f"  {side} round {i + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, server cpu {r['server_cpu']:.2f} "
                  f"({r['server_ms_per_req']:.3f} ms/req), client cpu {r['client_cpu']:.2f}, "
                  f"errors {r['errors']} [{r['load']}]")
    # Per side, the median round by throughput.
    print(f"{'side (median round)':<44}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv cpu':>9}"
          f"{'ms/req':>9}{'cli cpu':>9}{'errors':>8}")
    for k in sides:
        rs = rounds[k]
        r = sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]
        print(f"{NAMES[k]:<44}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['server_cpu']:>9.2f}{r['server_ms_per_req']:>9.3f}{r['client_cpu']:>9.2f}"
              f"{r['errors']:>8}")
    # The ratios round by round (the sides of one round ran back to back, so load from
    # elsewhere on the machine drifts less between them than between rounds).
    for (x, y), (unit, target) in TARGETS.items():
        if not (rounds.get(x) and rounds.get(y)):
            continue
        per = [ra["rps"] / rb["rps"] for ra, rb in zip(rounds[x], rounds[y], strict=True)]
        met = "met every round" if min(per) >= target else "NOT met every round"
        print(f"{x}/{y} per round: {', '.join(f'{v:.2f}{unit}' for v in per)} "
              f"(min {min(per):.2f}{unit}, median {sorted(per)[len(per) // 2]:.2f}{unit}; "
              f"target >= {target}{unit}: {met})")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--sides", default="abcd",
                   help="which sides to run, e.g. 'ad'; 'e' and 'f' measure the floor: an "
                        "empty ModelInfer servicer, bare (e) and in the kit's server (f)")
    p.add_argument("--bento-workers", type=int, default=2,
                   help="bentoml serve workers for (b); 2 is its fastest on 2 cores")
    p.add_argument("--serving-processes", type=int, default=1,
                   help="modelplane-serving processes for (a) and (c), each on its own port "
                        "and data directory (replicas); the client's connections spread")
    p.add_argument("--mlserver-workers", type=int, default=0,
                   help="MLServer parallel_workers for (d); 0 is its fastest here")
    p.add_argument("--profile", default="",
                   help="directory: py-spy raw profiles of each side's server, per round")
    p.add_argument("--profile-flags", default="--gil",
                   help="more py-spy record flags, e.g. '--native' ('--gil': only samples "
                        "holding the GIL, the event loop's bottleneck)")
    p.add_argument("--client", action="store_true")
    p.add_argument("--kind", default="grpc")
    p.add_argument("--target", default="")
    p.add_argument("--model", default="")
    p.add_argument("--server-pid", default="0", help="comma-separated, one per process")
    args = p.parse_args()
    if args.client:
        client_main(args)
        return

    sides = [k for k in NAMES if k in args.sides]
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-serving-"))
    env = {**os.environ, "BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "off",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    os.environ.update({k: env[k] for k in ("BENTOML_HOME", "BENTOML_DO_NOT_TRACK")})
    mlserver_venv = ensure_mlserver_venv() if "d" in sides else None
    print(f"preparing models in {tmp} ...", flush=True)
    uri, champion = prepare_models(tmp, args.features)
    procs: list[subprocess.Popen[bytes]] = []
    rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
    # side: (kind, target, pid, model); several processes: comma-separated targets and pids
    targets: dict[str, tuple[str, str, str, str]] = {}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    finished = False
    try:
        # All servers up at once (idle ones cost ~nothing), measured in alternation, so
        # load from elsewhere on the machine hits every side alike. Every port is free.
        if "a" in sides or "c" in sides:
            sink_port = free_port()
            sink = subprocess.Popen([sys.executable, "-c", SINK, f"127.0.0.1:{sink_port}"],
                                    env=env, start_new_session=True)
            procs.append(sink)
            wait_port(sink_port, sink)
            addresses, pids = [], []
            for r in range(args.serving_processes):
                address, pid = start_serving(tmp, env, uri, sink_port, r, procs)
                addresses.append(address)
                pids.append(str(pid))
            targets["a"] = ("grpc", ",".join(addresses), ",".join(pids), "routed")
            targets["c"] = ("grpc", ",".join(addresses), ",".join(pids), "plain")
        if "b" in sides:
            http_port = free_port()
            svc_dir = tmp / "bare"
            svc_dir.mkdir()
            (svc_dir / "service.py").write_text(
                BARE_SERVICE.replace("WORKERS", str(args.bento_workers)))
            bare = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", "service:Bare",
                                     "--port", str(http_port), "--host", "127.0.0.1"],
                                    cwd=svc_dir, env=env, start_new_session=True, **quiet)
            procs.append(bare)
            wait_port(http_port, bare)
            wait_ready(f"http://127.0.0.1:{http_port}/readyz", bare)
            targets["b"] = ("http", f"http://127.0.0.1:{http_port}/predict", str(bare.pid), "")
        if mlserver_venv is not None:
            repo, ml_grpc, ml_http = mlserver_repository(tmp, champion, args.mlserver_workers)
            ml_env = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
            ml_env["PATH"] = f"{mlserver_venv / 'bin'}:{ml_env.get('PATH', '')}"
            ml = subprocess.Popen([str(mlserver_venv / "bin" / "mlserver"), "start", str(repo)],
                                  cwd=repo, env=ml_env, start_new_session=True, **quiet)
            procs.append(ml)
            wait_port(ml_grpc, ml)
            wait_ready(f"http://127.0.0.1:{ml_http}/v2/models/churn/ready", ml)
            targets["d"] = ("grpc", f"127.0.0.1:{ml_grpc}", str(ml.pid), "churn")
        for side, mode in (("e", "bare"), ("f", "kit")):
            if side in sides:
                port = free_port()
                floor = subprocess.Popen([sys.executable, "-c", FLOOR, f"127.0.0.1:{port}", mode],
                                         env=env, start_new_session=True)
                procs.append(floor)
                wait_port(port, floor)
                targets[side] = ("grpc", f"127.0.0.1:{port}", str(floor.pid), "floor")
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        print(f"servers up; {_load()}", flush=True)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}: {', '.join(sides)} ...", flush=True)
            for side in sides:
                kind, target, pid, model = targets[side]
                profile = (str(Path(args.profile) / f"{side}-round{i + 1}.txt")
                           if args.profile else "")
                r = measure(kind, target, pid, args, model, profile)
                r["load"] = _load()
                rounds[side].append(r)
        finished = True
    finally:
        for proc in procs:
            stop(proc)
        if finished:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (models, stores, serving-N.log) for a look", file=sys.stderr)
    report(rounds)
    print(_load())


if __name__ == "__main__":
    main()
