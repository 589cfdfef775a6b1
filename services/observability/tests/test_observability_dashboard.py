"""The dashboard: API-key protected, and drawn (checked in headless Chromium)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelplane.kit.auth import Role, add_key, remove_key
from modelplane.kit.settings import ServiceSettings
from modelplane.observability import metrics as M
from modelplane.observability.dashboard import COOKIE, DashboardSessions
from modelplane.observability.drift import DriftMethod
from modelplane.observability.evaluations import Baseline
from modelplane.observability.monitors import Comparison, Monitor, SignalKind
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    EvaluationRecord,
    utcnow,
)
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings

MODEL = "fraud-detector"


def _records(env: Environment, n: int, seed: int, start: object, step: timedelta,
             drifted: bool) -> tuple[list[EvaluationRecord], list[Actual]]:
    rng = np.random.default_rng(seed)
    recs, acts = [], []
    for i in range(n):
        t = start + i * step  # type: ignore[operator]
        late = drifted and i > n // 2
        amount = float(rng.lognormal(3.5 if late else 3.0, 0.6))
        country = str(rng.choice(["FR", "DE", "ES", "IT"], p=[0.4, 0.3, 0.2, 0.1]))
        p = float(1 / (1 + np.exp(-(amount / 40 - 1.2))))
        y = int(rng.uniform() < p)
        pred = int(p > 0.5)
        if late and country == "ES":
            pred = 1 - pred  # broken for Spain in the second half
        recs.append(EvaluationRecord(
            f"{env.name}-{i}", MODEL, "v1", env, t,
            {"amount": amount, "country": country, "age": float(rng.integers(18, 80))},
            pred, {"1": p}, {"channel": "web" if i % 3 else "app"}))
        acts.append(Actual(f"{env.name}-{i}", y))
    return recs, acts


@pytest.fixture(scope="module")
async def dashboard(tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[tuple[str, str, Path]]:
    tmp = tmp_path_factory.mktemp("obs-dash")
    keys = tmp / "api_keys.json"
    key = add_key(keys, "viewer", Role.READER)
    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp), "MODELPLANE_API_KEYS_FILE": str(keys)})
    rt = ObservabilityRuntime(ObservabilitySettings(svc, http_addr="127.0.0.1:0",
                                                    monitor_tick_seconds=0))
    await rt.start()
    try:
        now = utcnow()
        val, val_act = _records(Environment.VALIDATION, 1500, 1, now - timedelta(days=5),
                                timedelta(seconds=30), drifted=False)
        prod, prod_act = _records(Environment.PRODUCTION, 3000, 2, now - timedelta(days=3),
                                  timedelta(seconds=86), drifted=True)
        rt.ingestor.write_records(val + prod)
        rt.ingestor.write_actuals(val_act + prod_act)
        rt.evaluations.set_baseline(Baseline(MODEL, "v1", metrics={M.Metric.ACCURACY: 0.78}))
        mon = rt.monitors.create(Monitor(
            EvaluationFilter(MODEL, ("v1",), Environment.PRODUCTION), SignalKind.DRIFT,
            Comparison.GREATER, 0.1, drift_column=ColumnRef(ColumnSource.FEATURE, "amount"),
            drift_method=DriftMethod.WASSERSTEIN, window=timedelta(days=1), min_records=30))
        assert rt.monitors.evaluate(mon.id).alert is not None
        yield f"http://127.0.0.1:{rt.http_port}", key, keys
    finally:
        await rt.stop()


async def test_dashboard_requires_an_api_key(dashboard: tuple[str, str, Path]) -> None:
    base, key, _ = dashboard
    # the page is computed on a first load: httpx's 5 s default is short on a busy machine
    async with httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=120) as client:
        assert (await client.get(f"/models/{MODEL}")).status_code == 401
        assert (await client.get("/", params={"key": "wrong"})).status_code == 401
        login = await client.get(f"/models/{MODEL}", params={"key": key})
        assert login.status_code == 303 and login.headers["location"] == f"/models/{MODEL}"
        cookie = login.headers["set-cookie"]
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        page = await client.get(f"/models/{MODEL}")  # the cookie now
        assert page.status_code == 200
        for section in ("performance", "drift", "slices", "alerts"):
            assert f"id='{section}'><svg" in page.text
        assert "country = &quot;ES&quot;" in page.text  # the broken slice is among the worst
        assert "http://" not in page.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    async with httpx.AsyncClient(base_url=base) as client:
        bearer = await client.get("/", headers={"authorization": f"Bearer {key}"})
        assert bearer.status_code == 200 and MODEL in bearer.text


async def test_the_session_cookie_holds_a_token_not_the_key_and_dies_with_the_key(
        dashboard: tuple[str, str, Path]) -> None:
    base, _, keys_file = dashboard
    key = add_key(keys_file, "short-lived", Role.READER)
    async with httpx.AsyncClient(base_url=base, follow_redirects=False) as client:
        login = await client.get("/", params={"key": key})
        assert login.status_code == 303
        token = client.cookies.get(COOKIE)
        assert token and key not in login.headers["set-cookie"]
        assert hashlib.sha256(key.encode()).hexdigest() not in login.headers["set-cookie"]
        assert "max-age=" in login.headers["set-cookie"].lower()
        assert (await client.get("/")).status_code == 200
        remove_key(keys_file, "short-lived")
        refused = await client.get("/")
        assert refused.status_code == 401 and MODEL not in refused.text
    async with httpx.AsyncClient(base_url=base, cookies={COOKIE: key}) as forged:
        assert (await forged.get("/")).status_code == 401  # a key is no session token


@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_sessions_live_in_the_store_so_every_replica_knows_them_and_expire_and_are_bounded(
        backend: str, tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    from modelplane.observability.store.base import EvaluationStore
    from modelplane.observability.store.embedded import EmbeddedStore
    from modelplane.observability.store.postgres import PostgresStore

    url = make_postgres_database("mp_obs_sess") if backend == "postgres" else ""

    def store() -> EvaluationStore:
        s = PostgresStore(url) if url else EmbeddedStore(tmp_path / "e.duckdb")
        s.open()
        return s

    now = [1000.0]
    a_store = store()
    # Two replicas on one PostgreSQL database (the embedded file has one process).
    b_store = store() if url else a_store
    try:
        a = DashboardSessions(a_store, ttl_seconds=60, limit=2, clock=lambda: now[0],
                              purge_every=1)
        b = DashboardSessions(b_store, ttl_seconds=60, limit=2, clock=lambda: now[0])
        first = a.open("mp_a")
        assert b.key_digest(first) == hashlib.sha256(b"mp_a").hexdigest()  # the other replica
        stored = a_store.list_documents(DashboardSessions.KIND)
        assert first not in str(stored) and "mp_a" not in str(stored)  # no token, no key
        assert b.key_digest("not-a-session") is None
        now[0] += 61
        assert b.key_digest(first) is None and a.key_digest(first) is None
        kept = [a.open(k) for k in ("mp_b", "mp_c", "mp_d")]
        assert b.key_digest(kept[0]) is None  # the oldest went first
        assert b.key_digest(kept[1]) is not None and b.key_digest(kept[2]) is not None
        assert len(a_store.list_documents(DashboardSessions.KIND)) == 2
    finally:
        if b_store is not a_store:
            b_store.close()
        a_store.close()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="needs Debian's chromium (apt-get install -y chromium)")
async def test_dashboard_renders_in_headless_chromium(dashboard: tuple[str, str, Path],
                                                      tmp_path: Path) -> None:
    from PIL import Image

    base, key, _ = dashboard
    shot = tmp_path / "dashboard.png"
    # In a thread: the dashboard is served by this test's event loop.
    proc = await asyncio.to_thread(
        subprocess.run,
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1280,1000",
         f"{base}/models/{MODEL}?key={key}"],
        capture_output=True, text=True, timeout=90)
    assert shot.exists(), proc.stderr[-2000:]
    keep = os.environ.get("MODELPLANE_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "observability-dashboard.png")
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1000)
    px = np.asarray(img).reshape(-1, 3).astype(int)
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    red = np.sum((r > 180) & (g < 110) & (b < 110))       # drifted features, worse slices
    blue = np.sum((b > 180) & (r < 110) & (g < 150))      # the performance line
    header = np.sum((r < 50) & (g < 60) & (b > 50) & (b < 90))  # the page header
    assert header > 10_000, "the page did not render (no header)"
    assert red > 500, "no red marks: drift / worst slices were not drawn"
    assert blue > 300, "no blue line: performance over time was not drawn"
