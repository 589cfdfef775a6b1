"""Generations, change announcements and retry budgets: what lets replicas act as one.

The two-process test (real replicas, 10k requests) is ``tests/scale/test_serving_replicas.py``;
these pin the store's and the data plane's side of it in one process.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import psycopg
import pytest

from modelplane.kit.backoff import Backoff
from modelplane.kit.errors import Aborted
from modelplane.serving.deployment import Deployment, DeploymentState
from modelplane.serving.deployment_store import NOTIFY_CHANNEL, DeploymentStore


def _drain(conn: psycopg.Connection) -> list[tuple[str, int]]:
    out = []
    for n in conn.notifies(timeout=0.5):
        body = json.loads(n.payload)
        out.append((body["name"], body["generation"]))
    return out


def test_every_write_takes_a_newer_generation_announced_only_when_it_commits(
        make_postgres_database):
    url = make_postgres_database("serving_generations")
    store = DeploymentStore(url)
    listener = psycopg.connect(url, autocommit=True)
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    try:
        d = store.create(Deployment(name="gen", model="churn", etag="e1"))
        assert d.generation > 0 and store.get("gen").generation == d.generation

        with pytest.raises(Aborted):  # a refused write is not announced and takes no number
            store.replace(Deployment(name="gen", model="other", etag="e2"), expected_etag="bad")
        assert store.get("gen").generation == d.generation

        d2 = store.replace(Deployment(name="gen", model="churn", description="x", etag="e2"),
                           expected_etag="e1")
        gone = store.delete("gen")
        assert store.delete("gen") is None  # nothing to delete: nothing announced
        again = store.create(Deployment(name="gen", model="churn", etag="e3"))
        assert d.generation < d2.generation < gone < again.generation  # never back
        assert store.generations() == {"gen": again.generation}
        assert _drain(listener) == [("gen", d.generation), ("gen", d2.generation),
                                    ("gen", gone), ("gen", again.generation)]
    finally:
        listener.close()
        store.close()


def test_a_store_written_before_generations_gets_the_column(make_postgres_database, tmp_path):
    for url in (make_postgres_database("serving_migrate"), f"sqlite:///{tmp_path / 's.db'}"):
        if url.startswith("sqlite"):
            import sqlite3

            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            conn.execute("CREATE TABLE serving_deployments (name TEXT PRIMARY KEY, "
                         "model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)")
            conn.execute("INSERT INTO serving_deployments VALUES ('old', 'm', 'e', ?)",
                         (json.dumps(Deployment(name="old", model="m", etag="e").to_dict()),))
            conn.commit()
            conn.close()
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE serving_deployments (name TEXT PRIMARY KEY, "
                             "model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL)")
                conn.execute("INSERT INTO serving_deployments VALUES ('old', 'm', 'e', %s)",
                             (json.dumps(Deployment(name="old", model="m", etag="e").to_dict()),))
        store = DeploymentStore(url)
        try:
            assert store.notifies is url.startswith("postgresql")
            assert store.get("old").generation == 0
            assert store.replace(Deployment(name="old", model="m", etag="f"),
                                 expected_etag="e").generation == 1
        finally:
            store.close()


def test_backoff_doubles_with_jitter_up_to_its_cap_and_starts_over_after_a_success():
    import random

    b = Backoff(1.0, 8.0, random.Random(7))
    delays = [b.failed() for _ in range(6)]
    for n, delay in enumerate(delays, start=1):
        step = min(8.0, 2.0 ** (n - 1))
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # jittered, not in lockstep
    b.reset()
    assert b.failed() <= 1.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_registry_that_never_answers_spends_the_load_retry_budget_then_fails(
        make_settings, sv, tmp_path):
    # A deployment persisted earlier; now the registry is gone for good (nothing listens).
    settings = make_settings(MODELPLANE_SERVING_MODEL_SOURCE="registry",
                             MODELPLANE_REGISTRY_TARGET=f"127.0.0.1:{_closed_port()}",
                             MODELPLANE_SERVING_LOAD_RETRY_BUDGET="3",
                             MODELPLANE_SERVING_LOAD_RETRY_EXHAUSTED_SECONDS="300")
    store = DeploymentStore(settings.store_url)
    store.create(Deployment(name="orphan", model="churn", etag="e"))
    store.close()

    async with sv.run_server(settings) as server:
        def state() -> DeploymentState:
            return server.models.find("orphan").state

        # 1st attempt at start, then ~0.5-1 s and ~1-2 s later: the 3rd failure spends it
        await sv.wait_until(lambda: state() is DeploymentState.FAILED, timeout=15)
        rt = server.models.find("orphan")
        assert rt.attempts == 3 and rt.budget_exhausted
        assert rt.state_message.startswith("retry budget spent: 3 attempts failed; last error:")
        assert "registry" in rt.state_message
        assert rt.retry_at - time.monotonic() > 100  # next try only at the slow interval

        base = f"http://{server.http_address}"
        async with httpx.AsyncClient() as client:
            ready = (await client.get(f"{base}/v2/health/ready")).json()
            metrics = (await client.get(f"{base}/metrics")).text
            model = await client.get(f"{base}/v2/models/orphan/ready")
        assert ready["deployments"]["orphan"] == {
            "generation": 1, "state": "FAILED", "load_failures": 3,
            "retry_budget_exhausted": True}
        assert ready["registry_stream"]["connected"] is False
        assert ready["registry_stream"]["consecutive_failures"] >= 1
        assert "deployment_sync" not in ready  # SQLite: one process, nothing to follow
        assert 'modelplane_serving_deployment_retry_budget_exhausted{deployment="orphan"} 1.0' \
            in metrics
        assert 'modelplane_serving_deployment_load_failures{deployment="orphan"} 3.0' in metrics
        assert model.status_code == 400 and model.json()["state"] == "FAILED"

        # An event (the registry stream reconnecting, an alias move) gives a fresh budget.
        server.models.retry_now()
        await sv.wait_until(lambda: server.models.find("orphan").state
                            is DeploymentState.LOADING, timeout=10)
        assert server.models.find("orphan").attempts == 1
