"""The evaluation store at production volume (#15): import, then each analysis timed.

    uv run python bench/observability_scale.py                       # 120k records, embedded
    uv run python bench/observability_scale.py --records 1200000 --stores embedded postgres
    uv run python bench/observability_scale.py --records 10000000 --skip-exact   # the target
    uv run python bench/observability_scale.py --records 1000000 --layout --stores embedded postgres
    uv run python bench/observability_scale.py --records 1200000 --stores chdb   # ClickHouse

Generates ``--records`` classification records over 28 days (no downloads):
six numeric features (``amount``, ``age``, ``tenure``, ``balance``, ``clicks``,
``hour``) and the categorical ``city``; a logistic "model" predicts fraud; the
actual agrees with the prediction 90 % of the time. From the midpoint on,
Porto's amounts grow 4x and its actuals disagree half the time: the slice
root cause should name first.

Each store (``embedded`` DuckDB under a temporary directory; ``postgres`` a
fresh database on ``MODELPLANE_TEST_POSTGRES`` or ``--postgres``; ``chdb`` the
ClickHouse store on chDB, in-process, under the same directory) gets the
records through the service's columnar ingest (``RecordIngestor.write_columnar``,
what ``LogRecords`` with ``arrow_ipc`` runs, profiles included) and the actuals
through ``write_actuals``. Then, second half against first half:

* drift in automatic mode (profiles past ``--exact-rows``) and in PROFILE mode;
* the dashboard's model list (``/``, twice) and its model page as a user loads
  it: HTTP GETs through the real dashboard server (its Starlette app under
  uvicorn, on a free local port) for the whole range, 7 days and the last day,
  each cold (first load) and warm (loaded again, nothing new stored);
  ``--training`` records of the TRAINING
  environment (the first days' distribution) are the page's drift and root
  cause reference;
* drift, root cause (accuracy, by city / amount / age) and performance by day
  and by city on the exact path (they read the records), unless ``--skip-exact``.

``--data-dir DIR`` keeps the stores in DIR: a store that already holds the
records (a previous run's) is not imported again, so the analyses and the page
can be timed again on the same 10M records without a 10-minute import (its
peak RSS is then that of the analyses alone). ``--postgres-db NAME`` does the
same for PostgreSQL (that database, created if missing, never dropped), and
``--exact-only`` times only the exact-mode steps (drift EXACT, root cause,
performance by day and city):

    uv run python bench/observability_scale.py --records 1000000 --stores postgres
        embedded --data-dir /tmp/auc-data --postgres-db mp_obs_auc_1m --exact-only

(one command line). The embedded store's DuckDB buffer limit is
``MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT`` (its default unless set).

Prints each time, the mode that answered, the peak RSS after each step
(``resource.getrusage``: a process-wide peak, so the profile-mode steps run
first) and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

T0 = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 28
CITIES = ["lisbon", "porto", "madrid", "paris", "berlin", "rome"]
SHIFTED = "porto"
MODEL = "fraud"
CHUNK = 100_000
#: the dashboard page's ranges: (label, query string)
PAGE_RANGES = (("all (28 days)", ""), ("7 days", "?days=7"), ("last day", "?days=1"))


def generate(lo: int, hi: int, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Records lo..hi of n (their times in that share of the 28 days, so the whole is
    in time order): made chunk by chunk, so the generator's memory stays small and
    the peak RSS is the store's and the analyses'; the same chunk comes out the same
    for its actuals."""
    rng = np.random.default_rng(lo)
    span = DAYS * 86_400_000_000
    t0 = int(T0.timestamp() * 1e6)
    t_us = np.sort(rng.integers(span * lo // n, span * hi // n, hi - lo)) + t0
    m = hi - lo
    city = rng.choice(CITIES, m, p=[0.25, 0.15, 0.2, 0.2, 0.1, 0.1])
    late = t_us >= t0 + span // 2
    shifted = late & (city == SHIFTED)
    amount = rng.lognormal(3.5, 1.0, m) * np.where(shifted, 4.0, 1.0)
    cols = {
        "amount": amount, "age": rng.normal(42, 12, m), "tenure": rng.exponential(3.0, m),
        "balance": rng.normal(1500, 600, m), "clicks": rng.poisson(4, m).astype(np.float64),
        "hour": ((t_us // 3_600_000_000) % 24).astype(np.float64), "city": city,
    }
    logit = 0.8 * (np.log(amount) - 3.5) - 0.02 * (cols["age"] - 42) - 1.0
    p = 1 / (1 + np.exp(-logit))
    pred = (p > 0.5).astype(np.int64)
    agree = rng.random(m) < np.where(shifted, 0.5, 0.9)
    actual = np.where(agree, pred, 1 - pred)
    cols["_p"], cols["_pred"], cols["_t"] = p, pred, t_us
    return cols, actual


def arrow_chunk(cols: dict[str, np.ndarray], lo: int, hi: int, run: str,
                environment: int = 3) -> pa.Table:
    """The chunk's records in the columnar contract (``cols`` are the chunk's);
    environment 3 is PRODUCTION, 1 TRAINING."""
    n = hi - lo
    out: dict[str, Any] = {
        "prediction_id": pa.array([f"{run}-{i}" for i in range(lo, hi)], pa.string()),
        "model": pa.array([MODEL] * n, pa.string()),
        "version": pa.array(["1"] * n, pa.string()),
        "environment": pa.array(np.full(n, environment, np.int8)),
        "prediction_time": pa.array(cols["_t"]).cast(pa.timestamp("us", tz="UTC")),
        "prediction": pa.array(cols["_pred"]),
        "score.1": pa.array(cols["_p"]),
    }
    for name, values in cols.items():
        if not name.startswith("_"):
            out[f"feature.{name}"] = pa.array(values.tolist() if values.dtype == object
                                              or values.dtype.kind == "U" else values)
    return pa.table(out)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def timed(label: str, fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    mode = getattr(out, "mode", None)
    extra = f"  mode {mode.name}" if mode is not None else ""
    print(f"  {label:40s} {dt:8.2f} s{extra}  peak RSS {rss_mb():7.0f} MB  ({load()})",
          flush=True)
    return out


def import_records(rt: Any, n: int, training: int, main: bool) -> None:
    """The records (production), their actuals, then the training records (the
    page's reference: the first days' distribution, ids of their own)."""
    from modelplane.observability.records import Actual

    run = uuid.uuid4().hex[:6]
    t = time.perf_counter()
    stored = 0
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        cols, _ = generate(lo, hi, n)
        stored += rt.ingestor.write_columnar(arrow_chunk(cols, lo, hi, run)).accepted
    dt = time.perf_counter() - t
    what = "(main: no profiles)" if main else "(with profiles)    "
    print(f"  import records {what} {dt:8.2f} s  {stored / dt:9.0f} rec/s  "
          f"peak RSS {rss_mb():7.0f} MB  ({load()})", flush=True)
    t = time.perf_counter()
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        _, actual = generate(lo, hi, n)
        rt.ingestor.write_actuals([Actual(f"{run}-{lo + i}", int(a))
                                   for i, a in enumerate(actual.tolist())])
    dt = time.perf_counter() - t
    print(f"  import actuals (with confusion counts) {dt:6.2f} s  {n / dt:9.0f} act/s  "
          f"peak RSS {rss_mb():7.0f} MB  ({load()})", flush=True)
    for lo in range(0, training, CHUNK):
        hi = min(lo + CHUNK, training)
        cols, actual = generate(lo, hi, n)  # the first of the 28 days
        rt.ingestor.write_columnar(arrow_chunk(cols, lo, hi, f"train-{run}", environment=1))
        rt.ingestor.write_actuals([Actual(f"train-{run}-{lo + i}", int(a))
                                   for i, a in enumerate(actual.tolist())])


def bench_store(backend: str, n: int, exact_rows: int, skip_exact: bool,
                postgres: str | None, workdir: Path, training: int = 0,
                analyze: bool = False, exact_only: bool = False,
                postgres_db: str | None = None) -> None:
    import dataclasses

    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability import metrics as M
    try:
        from modelplane.observability.analysis_limits import AnalysisMode
    except ImportError:  # main before #15 (PYTHONPATH=<its src>): the exact path only
        AnalysisMode = None  # type: ignore[assignment,misc]
    from modelplane.observability.evaluations import Reference
    from modelplane.observability.records import (
        ColumnRef,
        ColumnSource,
        Environment,
        EvaluationFilter,
        TimeWindow,
    )
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import KEEP_EVERYTHING, ObservabilitySettings

    db = None
    if backend == "postgres":
        import psycopg

        from modelplane.kit.pytest_plugin import postgres_url

        assert postgres
        name = postgres_db or f"mp_obs_scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(postgres, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        db = postgres_url(postgres, name)
    # this process's environment (MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT...) with
    # the bench's data directory and no auth
    svc = ServiceSettings.from_env("observability", {
        **os.environ, "MODELPLANE_DATA_DIR": str(workdir / backend), "MODELPLANE_AUTH": "off"})
    extra: dict[str, Any] = {} if AnalysisMode is None else {"exact_rows": exact_rows}
    # the environment's settings (MODELPLANE_OBSERVABILITY_DUCKDB_MEMORY_LIMIT...),
    # then the bench's: no dashboard of the runtime's own, no monitors, no retention
    if backend == "chdb":
        extra["clickhouse_url"] = f"chdb://{workdir / backend / 'clickhouse'}"
    settings = dataclasses.replace(
        ObservabilitySettings.from_service(svc), database_url=db, http_addr=None,
        monitor_tick_seconds=0, max_analysis_rows=max(5_000_000, 2 * n),
        retention=KEEP_EVERYTHING, **extra)
    held = backend == "embedded" and settings.embedded_path.exists()
    rt = ObservabilityRuntime(settings)
    rt.store.open()
    if backend == "chdb" or (backend == "postgres" and postgres_db):
        from modelplane.observability.store.base import ScanSpec

        held = rt.store.count_records(ScanSpec(MODEL)) > 0
    try:
        memory = getattr(settings, "duckdb_memory_limit", "DuckDB's default")
        print(f"{backend}: {n} records over {DAYS} days, {training} training records "
              f"(DuckDB memory limit {memory if db is None else '-'}; {load()})", flush=True)
        if held:
            where = f"database {name}" if db else workdir / backend
            print(f"  kept store in {where}: imported by an earlier run", flush=True)
        else:
            import_records(rt, n, training, AnalysisMode is None)
        if analyze and db:  # the statistics autovacuum would have gathered by now
            import psycopg

            t = time.perf_counter()
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("ANALYZE")
            print(f"  ANALYZE {time.perf_counter() - t:8.2f} s", flush=True)
        ev = rt.evaluations
        mid = T0 + timedelta(days=DAYS / 2)
        cur = EvaluationFilter(MODEL, ("1",), Environment.PRODUCTION,
                               TimeWindow(mid, T0 + timedelta(days=DAYS)))
        ref = Reference(filter=EvaluationFilter(MODEL, ("1",), Environment.PRODUCTION,
                                                TimeWindow(T0, mid)))
        if exact_only and AnalysisMode is not None:
            timed("drift, EXACT mode", lambda: ev.drift(cur, ref, mode=AnalysisMode.EXACT))
            exact_steps(rt, cur, ref)
            return
        if AnalysisMode is None:
            timed("drift (main's exact path)", lambda: ev.drift(cur, ref))
            page_steps(rt)
            exact_steps(rt, cur, ref)
            return
        rep = timed("drift, automatic mode", lambda: ev.drift(cur, ref))
        prof = timed("drift, PROFILE mode", lambda: ev.drift(cur, ref,
                                                             mode=AnalysisMode.PROFILE))
        amount = next(c for c in prof.columns if c.column.name == "amount")
        print(f"    amount: drifted {amount.drift.drifted}, profile buckets "
              f"{prof.profile_buckets}, rank error {prof.rank_error:.4f}; automatic "
              f"answered {rep.mode.name}")
        timed("performance by day and city, automatic", lambda: ev.performance(
            EvaluationFilter(MODEL, ("1",), Environment.PRODUCTION), bucket=timedelta(days=1),
            slice_by=[ColumnRef(ColumnSource.FEATURE, "city")]))
        timed("performance by day and city, PROFILE", lambda: ev.performance(
            EvaluationFilter(MODEL, ("1",), Environment.PRODUCTION), bucket=timedelta(days=1),
            slice_by=[ColumnRef(ColumnSource.FEATURE, "city")], mode=AnalysisMode.PROFILE))
        city = [ColumnRef(ColumnSource.FEATURE, "city")]
        for label, mode in (("automatic", AnalysisMode.UNSPECIFIED),
                            ("PROFILE", AnalysisMode.PROFILE)):
            rc = timed(f"root cause by city, {label}", lambda mode=mode: ev.root_cause(
                cur, ref, metric=M.Metric.ACCURACY, columns=city, max_depth=1, mode=mode))
            first = rc.slices[0].display_name if rc.slices else "(none)"
            print(f"    first slice: {first}; names the shifted slice first: "
                  f"{SHIFTED in first}")
        page_steps(rt)
        if skip_exact:
            return
        exact = timed("drift, EXACT mode (main's path)",
                      lambda: ev.drift(cur, ref, mode=AnalysisMode.EXACT))
        for e in exact.columns:
            p = next(c for c in prof.columns if c.column == e.column)
            stats = ", ".join(
                f"{s.method.name} {s.value:.4f}/{q.value:.4f}" for s in e.drift.statistics
                if (q := p.drift.statistic(s.method)) is not None)
            print(f"    {e.column!s:10s} exact/profile: {stats}")
        exact_steps(rt, cur, ref)
    finally:
        rt.store.close()
        rt.executor.shutdown()
        if db is not None and not postgres_db:
            import psycopg

            with psycopg.connect(postgres, autocommit=True) as conn:  # type: ignore[arg-type]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def exact_steps(rt: Any, cur: Any, ref: Any) -> None:
    """Root cause and performance on the exact path (the records)."""
    from modelplane.observability import metrics as M
    from modelplane.observability.records import (
        ColumnRef,
        ColumnSource,
        Environment,
        EvaluationFilter,
    )

    try:
        from modelplane.observability.analysis_limits import AnalysisMode
    except ImportError:  # main before #15
        AnalysisMode = None  # type: ignore[assignment,misc]
    ev = rt.evaluations
    by = [ColumnRef(ColumnSource.FEATURE, c) for c in ("city", "amount", "age")]
    rc = timed("root cause (accuracy), exact", lambda: ev.root_cause(
        cur, ref, metric=M.Metric.ACCURACY, columns=by, max_depth=1))
    first = rc.slices[0].display_name if rc.slices else "(none)"
    print(f"    first slice: {first}; names the shifted slice first: "
          f"{SHIFTED in first}")
    exact = {} if AnalysisMode is None else {"mode": AnalysisMode.EXACT}
    timed("performance by day and city, exact", lambda: ev.performance(
        EvaluationFilter(MODEL, ("1",), Environment.PRODUCTION), bucket=timedelta(days=1),
        slice_by=[ColumnRef(ColumnSource.FEATURE, "city")], **exact))


def page_steps(rt: Any) -> None:
    """The dashboard's model page as a browser gets it: the runtime's dashboard app
    served by uvicorn on a free port of this process, each range fetched twice over
    HTTP (cold: its first load; warm: again, with nothing new stored)."""
    import socket
    import urllib.request

    import uvicorn

    from modelplane.observability.dashboard import dashboard_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(dashboard_app(rt), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # readiness of the server, not of a result
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard server did not start")
        time.sleep(0.01)

    def get(query: str, path: str = f"/models/{MODEL}", mark: str = "id='performance'"
            ) -> Callable[[], Any]:
        def fetch() -> Any:
            url = f"http://127.0.0.1:{port}{path}{query}"
            with urllib.request.urlopen(url, timeout=600) as resp:
                body = resp.read().decode()
            if resp.status != 200 or mark not in body:
                raise RuntimeError(f"GET {url}: HTTP {resp.status}")
            return body
        return fetch

    try:
        for attempt in ("first", "again"):  # the model list: no cache, every load counts
            timed(f"model list (GET /), {attempt}", get("", "/", f"/models/{MODEL}"))
        for label, query in PAGE_RANGES:
            body = timed(f"dashboard page {label}, cold (HTTP GET)", get(query))
            timed(f"dashboard page {label}, warm (HTTP GET)", get(query))
            how = "hourly profiles" if "hourly profiles" in body else "records"
            print(f"    {len(body) // 1024} KiB; performance from the {how}", flush=True)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def layout_bench(n: int, postgres: str | None) -> None:
    """``--layout``: how fast one model's 14-day window (half of ``n`` records over 28
    days) is read from each storage layout the typed columns could take (#15): a
    typed column per catalog column (wide, what the embedded store keeps), typed
    long tables (one row per record and column), and the JSON / jsonb of today.
    Best of three, DuckDB in memory; PostgreSQL (a fresh database) when given."""
    import duckdb

    rng = np.random.default_rng(0)
    t_us = np.sort(rng.integers(0, DAYS * 86_400_000_000, n)) + int(T0.timestamp() * 1e6)
    data = {f"f{i}": rng.normal(size=n) for i in range(6)}
    src = pa.table({"prediction_id": pa.array([f"id-{i}" for i in range(n)]),
                    "model": pa.array([MODEL] * n),
                    "prediction_time": pa.array(t_us).cast(pa.timestamp("us", tz="UTC")),
                    **{k: pa.array(v) for k, v in data.items()},
                    "city": pa.array(rng.choice(CITIES, n).tolist())})
    mid = T0 + timedelta(days=DAYS / 2)
    nums = ", ".join(f"f{i}" for i in range(6))

    def best(label: str, fn: Callable[[], Any]) -> None:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        print(f"  {label:52s} {min(times):7.3f} s  ({load()})", flush=True)

    con = duckdb.connect()
    con.register("src", src)
    con.execute("CREATE TABLE wide AS SELECT * FROM src")
    con.execute("CREATE TABLE js AS SELECT prediction_id, model, prediction_time, json_object("
                + ", ".join(f"'f{i}', f{i}" for i in range(6)) + ", 'city', city) AS f FROM src")
    con.execute("CREATE TABLE num AS " + " UNION ALL ".join(
        f"SELECT prediction_id, model, prediction_time, {i} AS col, f{i} AS v FROM src"
        for i in range(6)) + " ORDER BY col, prediction_time")
    con.execute("CREATE TABLE cat AS SELECT prediction_id, model, prediction_time, 6 AS col, "
                "city AS v FROM src")
    w = "WHERE model = 'fraud' AND prediction_time >= ? ORDER BY prediction_time, prediction_id"
    print(f"layout, DuckDB: {n} records, the second half's window read ({load()})")
    best("wide: one numeric column (fetchnumpy)",
         lambda: con.execute(f"SELECT f0 FROM wide {w}", [mid]).fetchnumpy())
    best("wide: six numeric + city + ids (Arrow)", lambda: con.sql(
        f"SELECT prediction_id, {nums}, city FROM wide {w}", params=[mid]).to_arrow_table())
    best("long: one numeric column (fetchnumpy)", lambda: con.execute(
        f"SELECT v FROM num WHERE col = 0 AND {w.removeprefix('WHERE ')}", [mid]).fetchnumpy())
    best("long: six numeric + city + ids, joined by id (Arrow)", lambda: con.sql(
        "SELECT r.prediction_id, " + ", ".join(f"v{i}.v" for i in range(7)) + " FROM wide r "
        + " ".join(f"LEFT JOIN {'num' if i < 6 else 'cat'} v{i} ON v{i}.prediction_id = "
                   f"r.prediction_id AND v{i}.col = {i}" for i in range(7))
        + " WHERE r.model = 'fraud' AND r.prediction_time >= ? "
        "ORDER BY r.prediction_time, r.prediction_id", params=[mid]).to_arrow_table())
    best("JSON: one numeric column extracted (fetchnumpy)", lambda: con.execute(
        f"SELECT (f->>'f0')::DOUBLE AS v FROM js {w}", [mid]).fetchnumpy())
    best("JSON: six numeric + city extracted (Arrow)", lambda: con.sql(
        "SELECT " + ", ".join(f"(f->>'f{i}')::DOUBLE" for i in range(6))
        + f", f->>'city' FROM js {w}", params=[mid]).to_arrow_table())
    best("wide: rows per city and day (GROUP BY)", lambda: con.execute(
        "SELECT city, epoch_us(prediction_time) // 86400000000, count(*) FROM wide "
        "WHERE model = 'fraud' GROUP BY ALL").fetchall())
    con.close()
    if postgres:
        layout_postgres(src, postgres, best)


def layout_postgres(src: pa.Table, postgres: str, best: Callable[..., None]) -> None:
    import psycopg

    from modelplane.kit.pytest_plugin import postgres_url

    name = f"mp_obs_layout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(postgres_url(postgres, name), autocommit=True) as conn:
            conn.execute("CREATE TABLE wide (prediction_id text, model text, prediction_time "
                          "timestamptz, " + ", ".join(f"f{i} float8" for i in range(6))
                          + ", city text)")
            with conn.cursor().copy("COPY wide FROM STDIN") as copy:
                for row in zip(*(src.column(c).to_pylist() for c in src.column_names),
                               strict=True):
                    copy.write_row(row)
            conn.execute("CREATE INDEX ON wide (model, prediction_time)")
            conn.execute("CREATE TABLE js AS SELECT prediction_id, model, prediction_time, "
                          "jsonb_build_object(" + ", ".join(f"'f{i}', f{i}" for i in range(6))
                          + ", 'city', city) AS f FROM wide")
            conn.execute("CREATE INDEX ON js (model, prediction_time)")
            conn.execute("CREATE TABLE num AS " + " UNION ALL ".join(
                f"SELECT prediction_id, model, prediction_time, {i} AS col, f{i} AS v FROM wide"
                for i in range(6)))
            conn.execute("CREATE INDEX ON num (model, col, prediction_time)")
            conn.execute("VACUUM ANALYZE")
            mid = T0 + timedelta(days=DAYS / 2)
            w = "WHERE model = 'fraud' AND prediction_time >= %s"
            print(f"layout, PostgreSQL ({load()})")

            def fetch(sql: str) -> Callable[[], Any]:
                def run() -> Any:
                    with conn.cursor(binary=True) as cur:
                        return cur.execute(sql, [mid]).fetchall()
                return run

            best("wide: one numeric column", fetch(f"SELECT f0 FROM wide {w}"))
            best("wide: six numeric + city",
                 fetch(f"SELECT {', '.join(f'f{i}' for i in range(6))}, city FROM wide {w}"))
            best("long: one numeric column", fetch(f"SELECT v FROM num {w} AND col = 0"))
            best("jsonb: one numeric column", fetch(f"SELECT (f->>'f0')::float8 FROM js {w}"))
            best("jsonb: six numeric + city", fetch(
                "SELECT " + ", ".join(f"(f->>'f{i}')::float8" for i in range(6))
                + f", f->>'city' FROM js {w}"))
    finally:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=120_000)
    ap.add_argument("--stores", nargs="+", default=["embedded"],
                    choices=["embedded", "postgres", "chdb"])
    ap.add_argument("--postgres", default=os.environ.get("MODELPLANE_TEST_POSTGRES"),
                    help="server DSN (a database is created on it); default "
                         "$MODELPLANE_TEST_POSTGRES")
    ap.add_argument("--exact-rows", type=int, default=200_000,
                    help="MODELPLANE_OBSERVABILITY_EXACT_ROWS for the automatic mode")
    ap.add_argument("--training", type=int, default=100_000,
                    help="TRAINING-environment records: the dashboard page's reference")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="keep the stores here (default: a temporary directory); an "
                         "embedded store already there is used as it is, not imported again")
    ap.add_argument("--skip-exact", action="store_true",
                    help="only the profile-mode analyses (the exact path reads every record)")
    ap.add_argument("--layout", action="store_true",
                    help="only time reading a window from each storage layout (wide typed "
                         "columns, long typed tables, JSON) of --records records")
    ap.add_argument("--analyze", action="store_true",
                    help="PostgreSQL: ANALYZE after the import, before the analyses (what "
                         "autovacuum does after a bulk load; without it a server with "
                         "autovacuum off plans the scans on no statistics)")
    ap.add_argument("--exact-only", action="store_true",
                    help="only the exact-mode analyses (drift EXACT, root cause exact, "
                         "performance by day and city exact)")
    ap.add_argument("--postgres-db", default=None,
                    help="PostgreSQL: keep the records in this database (created if "
                         "missing, not dropped; not imported again when it holds them)")
    args = ap.parse_args()
    if "postgres" in args.stores and not args.postgres:
        ap.error("postgres: set MODELPLANE_TEST_POSTGRES or --postgres")
    if args.layout:
        layout_bench(args.records, args.postgres if "postgres" in args.stores else None)
        return
    threading.current_thread().name = "bench"
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.stores:
            bench_store(backend, args.records, args.exact_rows, args.skip_exact,
                        args.postgres, args.data_dir or Path(tmp), args.training,
                        args.analyze, args.exact_only, args.postgres_db)


if __name__ == "__main__":
    main()
