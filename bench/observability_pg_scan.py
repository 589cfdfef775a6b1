"""PostgreSQL: an analysis' window read from the typed columns against the same
window cast from its ``jsonb`` members (main's read before the typed columns),
side by side on one database (#15).

    uv run python bench/observability_pg_scan.py                  # 1M records, 500k read
    uv run python bench/observability_pg_scan.py --records 200000 --rounds 5

Imports ``--records`` of ``observability_scale.py``'s records (columnar ingest,
actuals), runs ``ANALYZE`` (as autovacuum would after a bulk load), then reads
the second half's window with ``PostgresStore.scan_frame`` ``--rounds`` times
each way, alternating: ``typed`` as stored, ``jsonb`` with the store told the
typed columns are not filled yet (its migration-time read: each member cast in
the query). Prints each time, the best of each, their ratio and the load. The
database is dropped at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import observability_scale as scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--postgres", default=os.environ.get("MODELPLANE_TEST_POSTGRES"))
    args = ap.parse_args()
    if not args.postgres:
        ap.error("set MODELPLANE_TEST_POSTGRES or --postgres")
    import psycopg

    from modelplane.kit.pytest_plugin import postgres_url
    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability.records import Actual, Environment, TimeWindow
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import ObservabilitySettings
    from modelplane.observability.store.base import ScanSpec
    from modelplane.observability.store.postgres import PostgresStore

    n = args.records
    name = f"mp_obs_pg_scan_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = postgres_url(args.postgres, name)
    try:
        svc = ServiceSettings.from_env("observability", {
            "MODELPLANE_DATA_DIR": str(Path("/tmp") / name), "MODELPLANE_AUTH": "off"})
        rt = ObservabilityRuntime(ObservabilitySettings(
            svc, database_url=db, http_addr=None, monitor_tick_seconds=0))
        store = rt.store
        assert isinstance(store, PostgresStore)
        store.open()
        try:
            for lo in range(0, n, scale.CHUNK):
                hi = min(lo + scale.CHUNK, n)
                cols, actual = scale.generate(lo, hi, n)
                rt.ingestor.write_columnar(scale.arrow_chunk(cols, lo, hi, "r"))
                rt.ingestor.write_actuals([Actual(f"r-{lo + i}", int(a))
                                           for i, a in enumerate(actual.tolist())])
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("ANALYZE")
            mid = scale.T0 + timedelta(days=scale.DAYS / 2)
            spec = ScanSpec(scale.MODEL, ("1",), Environment.PRODUCTION,
                            TimeWindow(mid, scale.T0 + timedelta(days=scale.DAYS)))
            catalog = store.load_catalogs()[scale.MODEL]
            typed = dict(store._typed[scale.MODEL])
            as_jsonb = {k: dataclasses.replace(t, ready=False) for k, t in typed.items()}
            refresh = store._refresh_typed

            def read(how: str) -> tuple[float, int]:
                if how == "jsonb":  # the columns "not filled yet": members cast in the query
                    store._typed[scale.MODEL] = as_jsonb
                    store._refresh_typed = lambda conn, models: None  # type: ignore[method-assign]
                else:
                    store._typed[scale.MODEL] = typed
                    store._refresh_typed = refresh  # type: ignore[method-assign]
                t = time.perf_counter()
                frame: Any = store.scan_frame(spec, catalog)
                return time.perf_counter() - t, len(frame)

            rows = read("typed")[1]  # warm the cache
            print(f"{n} records; the window read: {rows} rows, "
                  f"{len(catalog.features())} features", flush=True)
            times: dict[str, list[float]] = {"typed": [], "jsonb": []}
            for _ in range(args.rounds):
                for how in ("jsonb", "typed"):
                    dt, got = read(how)
                    assert got == rows
                    times[how].append(dt)
                    print(f"  {how:6s} {dt:6.2f} s  ({scale.load()})", flush=True)
            best = {k: min(v) for k, v in times.items()}
            print(f"best of {args.rounds}: jsonb cast {best['jsonb']:.2f} s, typed columns "
                  f"{best['typed']:.2f} s: typed is {best['jsonb'] / best['typed']:.2f}x "
                  f"({scale.load()})")
        finally:
            store.close()
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
