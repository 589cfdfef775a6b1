"""The dashboard's model page built without its cache, on stores kept by
``bench/observability_scale.py --data-dir DIR [--postgres-db NAME]``:

    uv run python bench/dashboard_page.py --data-dir /tmp/rc-data --postgres-db mp_obs_rc_1m

Per store, in one process: a first page (imports, connections), then the last
day, 7 days and the whole range, each the page's analyses (``build_model_view``
with a cache of 0 s) and its "why" panel (root cause and version comparison),
as the dashboard runs them. With ``PYTHONPATH`` on another checkout's
``services/observability/src`` it times that code (a checkout without shared
frames runs the "why" parts on their own reads).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from observability_scale import MODEL

RANGES = (("last day", {"days": "1"}), ("7 days", {"days": "7"}), ("28 days", {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True,
                    help="observability_scale's --data-dir (its embedded store is there)")
    ap.add_argument("--postgres-db", default=None,
                    help="observability_scale's --postgres-db (on MODELPLANE_TEST_POSTGRES)")
    ap.add_argument("--stores", nargs="+", default=["embedded", "postgres"],
                    choices=["embedded", "postgres"])
    args = ap.parse_args()

    from modelplane.kit.pytest_plugin import postgres_url
    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability import dashboard as D
    from modelplane.observability.dashboard_panels import WhyView, why_compare, why_root_cause
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import KEEP_EVERYTHING, ObservabilitySettings

    for backend in args.stores:
        db = None
        if backend == "postgres":
            if not args.postgres_db:
                ap.error("postgres: --postgres-db")
            db = postgres_url(os.environ["MODELPLANE_TEST_POSTGRES"], args.postgres_db)
        svc = ServiceSettings.from_env("observability", {
            **os.environ, "MODELPLANE_DATA_DIR": str(args.data_dir / backend),
            "MODELPLANE_AUTH": "off"})
        settings = dataclasses.replace(
            ObservabilitySettings.from_service(svc), database_url=db, http_addr=None,
            monitor_tick_seconds=0, retention=KEEP_EVERYTHING)
        rt = ObservabilityRuntime(settings)
        rt.store.open()
        times = []
        for label, params in (("first page", {"days": "1"}), *RANGES):
            t = time.perf_counter()
            view = D.build_model_view(rt, MODEL, params, D.ModelPageCache(0))
            why = WhyView(view.metric, view.reference_name, profiled=view.profiled)
            for part in (why_root_cause, why_compare):
                sharing = getattr(D, "_sharing", None)
                run = sharing(part, view.frames) if sharing else part
                run(rt.evaluations, view.live, view.reference, view.versions_in_window, why)
            times.append(f"{label} {time.perf_counter() - t:.2f} s")
        print(f"{backend}: {', '.join(times[1:])} (load {os.getloadavg()[0]:.2f})", flush=True)
        rt.store.close()


if __name__ == "__main__":
    main()
