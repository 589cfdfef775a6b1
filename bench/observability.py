"""Observability benchmarks: ingest into PostgreSQL, and drift vs Evidently.

    uv run python bench/observability.py                       # both, full size
    uv run python bench/observability.py --records 50000 --rows 100000   # quick
    uv run python bench/observability.py --only ingest|drift

Ingest: records/s through the service's client-streaming LogRecords into
PostgreSQL (the service runs as its own process; the client streams
pre-built batches) against a raw psycopg ``COPY`` of the same rows (the same
column values the service stores) into a bare table without indexes, batch
for batch, then as one single COPY. Prints both and the ratio (target >= 0.5).

Drift: 20 numeric features, ``--rows`` reference vs ``--rows`` current rows:
PSI + KS + Jensen-Shannon + Wasserstein for every feature with the service's
analytics core, against Evidently's ``DataDriftPreset`` on the same data (run
in its own virtualenv under ~/.cache/modelplane-bench, made with ``uv`` on
first use). Prints both times, the ratio (target >= 50x) and the largest
difference between our KS / Wasserstein and scipy's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("MODELPLANE_BENCH_CACHE", Path.home() / ".cache" / "modelplane-bench"))
EVIDENTLY_VERSION = "0.7.23"
BATCH = 1000


# ---------------------------------------------------------------------------
# Ingest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _make_records(n: int, model: str) -> list[object]:
    from modelplane.api.v1 import types_pb2 as T
    from modelplane.observability.v1 import observability_pb2 as pb

    rng = np.random.default_rng(0)
    num = rng.normal(size=(n, 8))
    cats = rng.choice(["paris", "lyon", "nice", "lille"], n)
    plans = rng.choice(["basic", "pro"], n)
    p = 1 / (1 + np.exp(-num[:, 0]))
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        feats = {f"f{j}": T.Value(double_value=float(num[i, j])) for j in range(8)}
        feats["city"] = T.Value(string_value=str(cats[i]))
        feats["plan"] = T.Value(string_value=str(plans[i]))
        r = pb.EvaluationRecord(prediction_id=f"{model}-{i}", model=model, version="v1",
                                environment=pb.ENVIRONMENT_PRODUCTION, features=feats,
                                prediction=T.Value(int64_value=int(p[i] > 0.5)),
                                scores={"1": float(p[i])}, tags={"region": "eu"},
                                trace_id=uuid.uuid4().hex)
        r.prediction_time.FromDatetime(t0 + timedelta(milliseconds=10 * i))
        r.latency.FromMicroseconds(800 + i % 100)
        out.append(r)
    return out


def bench_ingest(records: int, admin_dsn: str) -> None:
    import grpc
    import psycopg
    from modelplane.observability.store.base import RecordEncoder
    from modelplane.observability.v1 import observability_pb2 as pb
    from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

    db = f"obs_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = admin_dsn.rsplit("/", 1)[0] + f"/{db}"
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="obs-bench-")
    env = {**os.environ, "MODELPLANE_DATA_DIR": tmp, "MODELPLANE_AUTH": "off",
           "MODELPLANE_OBSERVABILITY_ADDR": f"127.0.0.1:{port}",
           "MODELPLANE_OBSERVABILITY_DATABASE_URL": url,
           "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off"}
    server = subprocess.Popen([sys.executable, "-m", "modelplane.observability.main"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        print(f"ingest: building {records} records ...", flush=True)
        model = "bench-model"
        recs = _make_records(records, model)
        batches = [pb.LogRecordsRequest(records=recs[i:i + BATCH])
                   for i in range(0, len(recs), BATCH)]
        # The same column values the service stores, for the raw COPY.
        from modelplane.api.v1 import types_pb2  # noqa: F401
        from modelplane.observability.api import record_from_pb

        rows, *_ = RecordEncoder({}).encode([record_from_pb(r, i) for i, r in enumerate(recs)], 0)

        async def stream() -> tuple[float, pb.LogRecordsResponse, float]:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            await asyncio.wait_for(channel.channel_ready(), 60)
            stub = pb_grpc.ObservabilityServiceStub(channel)
            # Warm-up: schema, partitions, catalog (not timed, different ids).
            warm = _make_records(2000, "bench-warmup")
            await stub.LogRecords(_agen([pb.LogRecordsRequest(records=warm[i:i + BATCH])
                                         for i in range(0, 2000, BATCH)]))
            cpu0 = _cpu_seconds(server.pid)
            t = time.perf_counter()
            resp = await stub.LogRecords(_agen(batches))
            elapsed = time.perf_counter() - t
            cpu = _cpu_seconds(server.pid) - cpu0
            await channel.close()
            return elapsed, resp, cpu

        elapsed, resp, server_cpu = asyncio.run(stream())
        assert resp.accepted_count == records, resp
        ours = records / elapsed
        cols = ("prediction_id, model, version, environment, prediction_time, features, "
                "prediction_label, prediction_number, scores, tags, trace_id, latency_us, "
                "attributions")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("""CREATE TABLE bench_raw (prediction_id text, model text,
                version text, environment smallint, prediction_time timestamptz,
                features jsonb, prediction_label text, prediction_number double precision,
                scores jsonb, tags jsonb, trace_id text, latency_us bigint, attributions jsonb)""")
            t = time.perf_counter()
            for i in range(0, len(rows), BATCH):
                with conn.transaction(), conn.cursor() as cur:  # noqa: SIM117
                    with cur.copy(f"COPY bench_raw ({cols}) FROM STDIN") as copy:
                        for row in rows[i:i + BATCH]:
                            copy.write_row(row)
            raw_batched = records / (time.perf_counter() - t)
            conn.execute("TRUNCATE bench_raw")
            t = time.perf_counter()
            with conn.transaction(), conn.cursor() as cur:  # noqa: SIM117
                with cur.copy(f"COPY bench_raw ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            raw_single = records / (time.perf_counter() - t)
        print(f"ingest: {records} records, 10 features + score + tag + trace id each, "
              f"batches of {BATCH}")
        print(f"  LogRecords -> service -> PostgreSQL: {ours:10.0f} records/s "
              f"({elapsed:.2f} s; server process CPU {server_cpu:.2f} s; idempotent, "
              f"partitioned, indexed)")
        print(f"  raw psycopg COPY, same batches     : {raw_batched:10.0f} records/s  "
              f"ratio {ours / raw_batched:.2f} (target >= 0.5)")
        print(f"  raw psycopg COPY, one single COPY  : {raw_single:10.0f} records/s  "
              f"ratio {ours / raw_single:.2f}")
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def _agen(items: list[object]):  # type: ignore[no-untyped-def]
    for item in items:
        yield item


# ---------------------------------------------------------------------------
# Drift


EVIDENTLY_RUNNER = textwrap.dedent("""
    import json, sys, time, warnings
    import pandas as pd
    warnings.filterwarnings("ignore")
    ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
    from evidently import Report
    from evidently.presets import DataDriftPreset
    t = time.perf_counter()
    result = Report([DataDriftPreset()]).run(cur, ref)
    out = result.dict()
    seconds = time.perf_counter() - t
    values = {m["config"]["column"]: m["value"] for m in out["metrics"]
              if m["config"].get("type", "").endswith("ValueDrift")}
    methods = sorted({m["config"]["method"] for m in out["metrics"]
                      if m["config"].get("type", "").endswith("ValueDrift")})
    print(json.dumps({"seconds": seconds, "values": values, "methods": methods}))
""")


def evidently_python() -> Path:
    venv = CACHE / "evidently-venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import evidently; print(evidently.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"drift: installing evidently {EVIDENTLY_VERSION} into {venv} (first run) ...",
          flush=True)
    # The uv running this script (``uv run`` exports it as UV), else the one on PATH.
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"
    # Inside ``python -m uv run`` the environment names the parent interpreter
    # (UV_INTERNAL__PARENT_INTERPRETER) and VIRTUAL_ENV: left in, ``uv pip``
    # installs into that interpreter instead. Name the target explicitly.
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "UV_INTERNAL__PARENT_INTERPRETER")}
    subprocess.run([uv, "venv", "-q", "--allow-existing", "--python", "3.11", str(venv)],
                   check=True, env=env)
    # Evidently 0.7 imports pandas internals that pandas 3 removed.
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python),
                    f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"],
                   check=True, env=env)
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        raise RuntimeError(f"evidently does not import in {venv} after installing it")
    return python


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def bench_drift(rows: int, features: int, skip_evidently: bool) -> None:
    import pandas as pd
    from scipy import stats

    from modelplane.observability.drift import (
        NUMERIC_METHODS,
        DriftMethod,
        DriftThresholds,
        drift_many,
    )

    rng = np.random.default_rng(1)
    ref = {f"f{j}": rng.normal(0, 1 + j / 10, rows) for j in range(features)}
    cur = {f"f{j}": rng.normal(0.02 * j, 1 + j / 10, rows) for j in range(features)}
    pairs = [(ref[k], cur[k], True) for k in ref]
    print(f"drift: {features} numeric features, {rows} reference vs {rows} current rows "
          f"(load average {_load_average()})", flush=True)
    with ThreadPoolExecutor(2) as pool:
        drift_many(pairs[:2], NUMERIC_METHODS, DriftThresholds(), 10, pool)  # warm-up
        t = time.perf_counter()
        results = drift_many(pairs, NUMERIC_METHODS, DriftThresholds(), 10, pool)
        ours = time.perf_counter() - t
    max_ks = max_w = max_p = 0.0
    for (r, c, _), res in zip(pairs, results):
        ks_stat, w_stat = res.statistic(DriftMethod.KS), res.statistic(DriftMethod.WASSERSTEIN)
        assert ks_stat is not None and ks_stat.p_value is not None
        assert w_stat is not None and w_stat.raw is not None
        ks = stats.ks_2samp(r, c)
        max_ks = max(max_ks, abs(ks_stat.value - float(ks.statistic)))
        max_p = max(max_p, abs(ks_stat.p_value - float(ks.pvalue)))
        max_w = max(max_w, abs(w_stat.raw - float(stats.wasserstein_distance(r, c))))
    drifted = sum(r.drifted for r in results)
    within = max(max_ks, max_p, max_w) <= 1e-9
    print(f"  ours (PSI + KS + JS + Wasserstein, every feature, 2 threads): {ours:8.2f} s; "
          f"{drifted}/{features} drifted")
    print(f"  max |ours - scipy|: KS statistic {max_ks:.2e}, KS p-value {max_p:.2e}, "
          f"Wasserstein {max_w:.2e} ({'within' if within else 'OVER'} 1e-9)")
    if skip_evidently:
        return
    python = evidently_python()
    with tempfile.TemporaryDirectory() as tmp:
        pd.DataFrame(ref).to_parquet(Path(tmp) / "ref.parquet")
        pd.DataFrame(cur).to_parquet(Path(tmp) / "cur.parquet")
        (Path(tmp) / "run.py").write_text(EVIDENTLY_RUNNER)
        proc = subprocess.run([str(python), str(Path(tmp) / "run.py"),
                               str(Path(tmp) / "ref.parquet"), str(Path(tmp) / "cur.parquet")],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print("  evidently failed:", proc.stderr[-2000:])
            return
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    theirs = float(out["seconds"])
    # Both sides judge these columns by normalized Wasserstein (> 0.1): compare the values.
    diff = max((abs(res.statistic(DriftMethod.WASSERSTEIN).value - float(out["values"][k]))  # type: ignore[union-attr]
                for k, res in zip(ref, results) if k in out["values"]), default=float("nan"))
    their_drifted = sum(float(v) >= 0.1 for v in out["values"].values())
    print(f"  Evidently {EVIDENTLY_VERSION} DataDriftPreset: {theirs:8.2f} s  "
          f"ratio {theirs / ours:.1f}x (target >= 50x)")
    print(f"  Evidently's method {', '.join(out['methods'])}: {their_drifted}/{features} "
          f"drifted; max |ours - Evidently| normalized Wasserstein {diff:.2e} "
          f"(load average now {_load_average()})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="ingest: records to stream")
    ap.add_argument("--rows", type=int, default=1_000_000, help="drift: rows on each side")
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--only", choices=["ingest", "drift"])
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--postgres", default=os.environ.get(
        "MODELPLANE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    if args.only in (None, "ingest"):
        bench_ingest(args.records, args.postgres)
    if args.only in (None, "drift"):
        bench_drift(args.rows, args.features, args.skip_evidently)


if __name__ == "__main__":
    main()
