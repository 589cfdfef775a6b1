"""Observability benchmarks: ingest into PostgreSQL, and drift vs Evidently.

    uv run python bench/observability.py                       # both, full size
    uv run python bench/observability.py --records 50000 --rows 100000   # quick
    uv run python bench/observability.py --only ingest|drift

Ingest: records/s through the service's client-streaming LogRecords into
PostgreSQL (the service runs as its own process; the client streams
pre-built messages) in both forms of the contract -- one EvaluationRecord
message per record (batches of 1000), and ``arrow_ipc`` columnar batches of
``--arrow-batch`` rows (1000 and 10000 by default: what a producer holding its
predictions in arrays, like serving's prediction logger, flushes) -- against a
raw psycopg ``COPY`` of the same rows (the same column values the service
stores) into a bare table without indexes, batches of 1000 (run before, between
and after the service's runs; each ratio uses the two runs adjacent to it) and
one single COPY. Prints every ratio (target >= 0.5 against the batched COPY).

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
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from local_processes import cpu_seconds, free_port, stop

CACHE = Path(os.environ.get("MODELPLANE_BENCH_CACHE", Path.home() / ".cache" / "modelplane-bench"))
EVIDENTLY_VERSION = "0.7.23"
BATCH = 1000


# ---------------------------------------------------------------------------
# Ingest


def _bench_data(n: int) -> dict[str, np.ndarray]:
    """The benchmark's records as columns: 8 numeric + 2 string features, a binary
    prediction with its score, a tag, a trace id and a latency."""
    rng = np.random.default_rng(0)
    num = rng.normal(size=(n, 8))
    p = 1 / (1 + np.exp(-num[:, 0]))
    t0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1_000_000)
    return {"num": num, "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
            "plan": rng.choice(["basic", "pro"], n), "p": p,
            "prediction": (p > 0.5).astype(np.int64),
            "time_us": t0 + 10_000 * np.arange(n, dtype=np.int64),
            "latency_us": 800 + np.arange(n, dtype=np.int64) % 100,
            "trace_id": np.array([uuid.uuid4().hex for _ in range(n)])}


def _make_records(data: dict[str, np.ndarray], model: str) -> list[Any]:
    from modelplane.api.v1 import types_pb2 as T
    from modelplane.observability.v1 import observability_pb2 as pb

    num, cats, plans, p = data["num"], data["city"], data["plan"], data["p"]
    out = []
    for i in range(len(p)):
        feats = {f"f{j}": T.Value(double_value=float(num[i, j])) for j in range(8)}
        feats["city"] = T.Value(string_value=str(cats[i]))
        feats["plan"] = T.Value(string_value=str(plans[i]))
        r = pb.EvaluationRecord(prediction_id=f"{model}-{i}", model=model, version="v1",
                                environment=pb.ENVIRONMENT_PRODUCTION, features=feats,
                                prediction=T.Value(int64_value=int(data["prediction"][i])),
                                scores={"1": float(p[i])}, tags={"region": "eu"},
                                trace_id=str(data["trace_id"][i]))
        r.prediction_time.FromMicroseconds(int(data["time_us"][i]))
        r.latency.FromMicroseconds(int(data["latency_us"][i]))
        out.append(r)
    return out


def _make_arrow(data: dict[str, np.ndarray], model: str, batch: int) -> list[bytes]:
    """The same records as a producer holding them in arrays sends them: one Arrow IPC
    stream (``LogRecordsRequest.arrow_ipc``) per ``batch`` rows."""
    import pyarrow as pa

    n = len(data["p"])
    cols: dict[str, pa.Array] = {
        "prediction_id": pa.array([f"{model}-{i}" for i in range(n)], pa.string()),
        "model": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [model]),
        "version": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), ["v1"]),
        "environment": pa.array(np.full(n, 3, np.int8)),
        "prediction_time": pa.array(data["time_us"]).cast(pa.timestamp("us", tz="UTC")),
    }
    for j in range(8):
        cols[f"feature.f{j}"] = pa.array(np.ascontiguousarray(data["num"][:, j]))
    cols["feature.city"] = pa.array(data["city"].tolist(), pa.string())
    cols["feature.plan"] = pa.array(data["plan"].tolist(), pa.string())
    cols["prediction"] = pa.array(data["prediction"])
    cols["score.1"] = pa.array(data["p"])
    cols["tag.region"] = pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), ["eu"])
    cols["trace_id"] = pa.array(data["trace_id"].tolist(), pa.string())
    cols["latency_us"] = pa.array(data["latency_us"])
    table = pa.table(cols)
    out = []
    for start in range(0, n, batch):
        sink = pa.BufferOutputStream()
        part = table.slice(start, batch)
        with pa.ipc.new_stream(sink, part.schema) as writer:
            writer.write_table(part)
        out.append(sink.getvalue().to_pybytes())
    return out


def bench_ingest(records: int, admin_dsn: str, arrow_batches: list[int]) -> None:
    import grpc
    import psycopg

    from modelplane.observability.store.encoding import RecordEncoder
    from modelplane.observability.v1 import observability_pb2 as pb
    from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

    db = f"obs_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = admin_dsn.rsplit("/", 1)[0] + f"/{db}"
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="obs-bench-")
    env = {**os.environ, "MODELPLANE_DATA_DIR": tmp, "MODELPLANE_AUTH": "off",
           "MODELPLANE_OBSERVABILITY_ADDR": f"127.0.0.1:{port}",
           "MODELPLANE_OBSERVABILITY_DATABASE_URL": url,
           "MODELPLANE_OBSERVABILITY_HTTP_ADDR": "off"}
    server = subprocess.Popen([sys.executable, "-m", "modelplane.observability.main"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        print(f"ingest: building {records} records ...", flush=True)
        data = _bench_data(records)
        recs = _make_records(data, "bench-records")
        batches = [pb.LogRecordsRequest(records=recs[i:i + BATCH])
                   for i in range(0, len(recs), BATCH)]
        columnar = {b: [pb.LogRecordsRequest(arrow_ipc=x)
                        for x in _make_arrow(data, f"bench-arrow{b}", b)]
                    for b in arrow_batches}
        # The same column values the service stores, for the raw COPY.
        from modelplane.observability.convert import record_from_pb

        rows, *_ = RecordEncoder({}).encode([record_from_pb(r, i) for i, r in enumerate(recs)], 0)

        async def stream(requests: list[Any] | None
                         ) -> tuple[float, pb.LogRecordsResponse | None, float]:
            """One timed LogRecords call (None: the untimed warm-up in both forms)."""
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
            await asyncio.wait_for(channel.channel_ready(), 60)
            stub = pb_grpc.ObservabilityServiceStub(channel)
            if requests is None:  # schema, partitions, catalogs (other ids)
                warm = _bench_data(4000)
                await stub.LogRecords(_agen([pb.LogRecordsRequest(records=r) for r in [
                    _make_records(warm, "bench-warmup")]]))
                await stub.LogRecords(_agen([pb.LogRecordsRequest(arrow_ipc=x) for x in
                                             _make_arrow(warm, "bench-warmup-arrow", 1000)]))
                await channel.close()
                return 0.0, None, 0.0
            cpu0 = cpu_seconds(server.pid)
            t = time.perf_counter()
            resp = await stub.LogRecords(_agen(requests))
            elapsed = time.perf_counter() - t
            cpu = cpu_seconds(server.pid) - cpu0
            await channel.close()
            return elapsed, resp, cpu

        cols = ("prediction_id, model, version, environment, prediction_time, features, "
                "prediction_label, prediction_number, scores, tags, trace_id, latency_us, "
                "attributions")

        def raw_copy(single: bool) -> float:
            """records/s of a raw psycopg COPY of the same rows into a bare table."""
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("""CREATE TABLE IF NOT EXISTS bench_raw (prediction_id text,
                    model text, version text, environment smallint,
                    prediction_time timestamptz, features jsonb, prediction_label text,
                    prediction_number double precision, scores jsonb, tags jsonb,
                    trace_id text, latency_us bigint, attributions jsonb)""")
                conn.execute("TRUNCATE bench_raw")
                step = len(rows) if single else BATCH
                t = time.perf_counter()
                for i in range(0, len(rows), step):
                    with conn.transaction(), conn.cursor() as cur:  # noqa: SIM117
                        with cur.copy(f"COPY bench_raw ({cols}) FROM STDIN") as copy:
                            for row in rows[i:i + step]:
                                copy.write_row(row)
                return records / (time.perf_counter() - t)

        # The machine is shared and its load moves: every run of the service sits
        # between two raw COPY runs, and its ratio uses the mean of those two.
        load = os.getloadavg()[0]
        asyncio.run(stream(None))
        forms = [(f"records, batches of {BATCH}", batches),
                 *((f"arrow_ipc, batches of {b}", reqs) for b, reqs in columnar.items())]
        raws = [raw_copy(single=False)]
        runs = []
        for _, requests in forms:
            elapsed, resp, cpu = asyncio.run(stream(requests))
            assert resp is not None and resp.accepted_count == records and not resp.rejected, resp
            runs.append((elapsed, cpu))
            raws.append(raw_copy(single=False))
        raw_single = raw_copy(single=True)
        print(f"ingest: {records} records, 10 features + score + tag + trace id each "
              f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)")
        print(f"  raw psycopg COPY, batches of {BATCH}: "
              f"{', '.join(f'{r:.0f}' for r in raws)} records/s (runs between the service's)")
        print(f"  raw psycopg COPY, one single COPY (at the end): {raw_single:.0f} records/s")
        for i, ((label, _), (elapsed, cpu)) in enumerate(zip(forms, runs)):
            ours = records / elapsed
            raw = (raws[i] + raws[i + 1]) / 2
            print(f"  LogRecords({label:<24}): {ours:8.0f} records/s  ratio "
                  f"{ours / raw:.2f} vs the adjacent batched COPY ({raw:.0f}/s; target >= 0.5), "
                  f"{ours / raw_single:.2f} vs single COPY  ({elapsed:.2f} s, server CPU "
                  f"{cpu:.2f} s)")
    finally:
        stop(server)
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


async def _agen(items: Sequence[object]):  # type: ignore[no-untyped-def]
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
    ap.add_argument("--arrow-batch", default="1000,10000",
                    help="ingest: rows per arrow_ipc message, comma-separated sizes to run")
    ap.add_argument("--only", choices=["ingest", "drift"])
    ap.add_argument("--skip-evidently", action="store_true")
    ap.add_argument("--postgres", default=os.environ.get(
        "MODELPLANE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    if args.only in (None, "ingest"):
        bench_ingest(args.records, args.postgres,
                     [int(b) for b in args.arrow_batch.split(",") if b])
    if args.only in (None, "drift"):
        bench_drift(args.rows, args.features, args.skip_evidently)


if __name__ == "__main__":
    main()
