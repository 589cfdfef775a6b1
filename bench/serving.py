"""Serving benchmark: the router's cost against a bare BentoML service and against itself.

    uv run python bench/serving.py [--seconds 8] [--rounds 3] [--concurrency 8] [--features 20]

Same scikit-learn model (LogisticRegression), one server process each, same
concurrency, one load-client process (its own connection per coroutine):

  (a) modelplane-serving, OIP gRPC ModelInfer through the router: 90/10 canary
      (champion / challenger), fallback chain armed, prediction logging on
      (to a LogRecords sink process);
  (b) a bare ``@bentoml.service`` with one ``@bentoml.api`` calling predict, run
      by ``bentoml serve`` (1 worker), over HTTP/JSON;
  (c) modelplane-serving with one route, no fallback, logging off.

All three servers run at once and are measured in alternation (a, b, c per round;
the median round counts), so load from elsewhere on the machine hits each alike.
Prints throughput, p50 and p99 per side, the CPU seconds the server and the
client used, and the ratios (targets: a >= 1.5x b; a within 15% of c).
On 2 cores the client competes with the server: compare figures of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
            workers = [_grpc_worker(args.target, args.model, row, stop, lat, errors)
                       for _ in range(args.concurrency)]
        else:
            workers = [_http_worker(args.target, row, stop, lat, errors)
                       for _ in range(args.concurrency)]
        await asyncio.gather(*workers)
        return lat, errors

    asyncio.run(run(args.warmup))
    server = psutil.Process(args.server_pid)
    procs = [server, *server.children(recursive=True)]

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
    s0, c0 = cpu(), me.cpu_times()
    t0 = time.perf_counter()
    lat, errors = asyncio.run(run(args.seconds))
    wall = time.perf_counter() - t0
    s1, c1 = cpu(), me.cpu_times()
    lat.sort()
    print(json.dumps({
        "requests": len(lat), "errors": len(errors), "rps": len(lat) / wall,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else 0,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else 0,
        "server_cpu": (s1 - s0) / wall,
        "client_cpu": (c1.user + c1.system - c0.user - c0.system) / wall}))


def measure(kind: str, target: str, server_pid: int, args: argparse.Namespace,
            model: str = "") -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--client", "--kind", kind, "--target", target,
           "--model", model, "--server-pid", str(server_pid), "--seconds", str(args.seconds),
           "--warmup", str(args.warmup), "--concurrency", str(args.concurrency),
           "--features", str(args.features)]
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

BARE_SERVICE = textwrap.dedent("""
    import bentoml
    import numpy as np

    @bentoml.service(workers=1)
    class Bare:
        model_ref = bentoml.models.BentoModel("bench-churn:latest")

        def __init__(self) -> None:
            self.model = bentoml.sklearn.load_model(self.model_ref)

        @bentoml.api
        def predict(self, inputs: np.ndarray) -> np.ndarray:
            return self.model.predict(inputs)
""")


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


def prepare_models(tmp: Path, n_features: int) -> str:
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
    return uri


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


def report(results: dict[str, dict[str, Any]]) -> None:
    print(f"{'side':<44}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv cpu':>9}{'cli cpu':>9}"
          f"{'errors':>8}")
    names = {"a": "(a) modelplane gRPC, canary+fallback+log",
             "b": "(b) bare BentoML (bentoml serve, HTTP)",
             "c": "(c) modelplane gRPC, 1 route, no log"}
    for k in ("a", "b", "c"):
        r = results[k]
        print(f"{names[k]:<44}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['server_cpu']:>9.2f}{r['client_cpu']:>9.2f}{r['errors']:>8}")
    a, b, c = results["a"]["rps"], results["b"]["rps"], results["c"]["rps"]
    print(f"throughput a/b = {a / b:.2f}x (target >= 1.5x)")
    print(f"throughput a/c = {a / c:.2f} (target >= 0.85: routing+logging within 15%)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--client", action="store_true")
    p.add_argument("--kind", default="grpc")
    p.add_argument("--target", default="")
    p.add_argument("--model", default="")
    p.add_argument("--server-pid", type=int, default=0)
    args = p.parse_args()
    if args.client:
        client_main(args)
        return

    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-serving-"))
    env = {**os.environ, "BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "MODELPLANE_DATA_DIR": str(tmp / "data"), "MODELPLANE_AUTH": "off",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    os.environ.update({k: env[k] for k in ("BENTOML_HOME", "BENTOML_DO_NOT_TRACK")})
    print(f"preparing models in {tmp} ...", flush=True)
    uri = prepare_models(tmp, args.features)
    procs: list[subprocess.Popen[bytes]] = []
    rounds: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
    try:
        # All three servers up at once (idle ones cost ~nothing), measured in alternation,
        # so load from elsewhere on the machine hits every side alike.
        sink_port, grpc_port, http_port = free_port(), free_port(), free_port()
        sink = subprocess.Popen([sys.executable, "-c", SINK, f"127.0.0.1:{sink_port}"],
                                env=env, start_new_session=True)
        procs.append(sink)
        serving_env = {**env, "MODELPLANE_SERVING_ADDR": f"127.0.0.1:{grpc_port}",
                       "MODELPLANE_SERVING_HTTP_ADDR": "",
                       "MODELPLANE_SERVING_MODEL_SOURCE": uri,
                       "MODELPLANE_SERVING_FEATURESTORE_TARGET": "none",
                       "MODELPLANE_SERVING_OBSERVABILITY_TARGET": f"127.0.0.1:{sink_port}",
                       "MODELPLANE_SERVING_ALIAS_POLL_SECONDS": "5",
                       # the benchmark's model is not validated; the gate is not measured
                       "MODELPLANE_SERVING_REQUIRE_VALIDATION": "off"}
        serving = subprocess.Popen([sys.executable, "-m", "modelplane.serving.main"],
                                   env=serving_env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(serving)
        svc_dir = tmp / "bare"
        svc_dir.mkdir()
        (svc_dir / "service.py").write_text(BARE_SERVICE)
        bare = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", "service:Bare",
                                 "--port", str(http_port), "--host", "127.0.0.1"],
                                cwd=svc_dir, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bare)
        wait_port(sink_port, sink)
        wait_port(grpc_port, serving)
        create_deployments(f"127.0.0.1:{grpc_port}")
        wait_port(http_port, bare)
        wait_ready(f"http://127.0.0.1:{http_port}/readyz", bare)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}: a, b, c ...", flush=True)
            rounds["a"].append(measure("grpc", f"127.0.0.1:{grpc_port}", serving.pid, args,
                                       "routed"))
            rounds["b"].append(measure("http", f"http://127.0.0.1:{http_port}/predict",
                                       bare.pid, args))
            rounds["c"].append(measure("grpc", f"127.0.0.1:{grpc_port}", serving.pid, args,
                                       "plain"))
    finally:
        for proc in procs:
            stop(proc)
    for side, rs in rounds.items():
        for i, r in enumerate(rs):
            print(f"  {side} round {i + 1}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, server cpu {r['server_cpu']:.2f}, "
                  f"client cpu {r['client_cpu']:.2f}, errors {r['errors']}")
    # Per side, the median round by throughput.
    results = {k: sorted(rs, key=lambda r: r["rps"])[len(rs) // 2] for k, rs in rounds.items()}
    report(results)
    # The same ratios round by round (sides of one round ran back to back, so load from
    # elsewhere on the machine drifts less between them than between rounds).
    for x, y in (("a", "b"), ("a", "c")):
        paired = sorted(ra["rps"] / rb["rps"] for ra, rb in zip(rounds[x], rounds[y], strict=True))
        print(f"per round {x}/{y}: {', '.join(f'{v:.2f}' for v in paired)} "
              f"(median {paired[len(paired) // 2]:.2f})")


if __name__ == "__main__":
    main()
