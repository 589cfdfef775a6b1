"""A serving store written before kit.documents (its tables, made by hand here as the
hand-rolled store made them) opens unchanged: every kind of row is read and written on."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelplane.kit.errors import Aborted, AlreadyExists, NotFound
from modelplane.kit.pytest_plugin import run_sql
from modelplane.serving.batch_job import BatchJob
from modelplane.serving.deployment import Deployment, ModelTarget
from modelplane.serving.deployment_store import DeploymentStore
from modelplane.serving.rollout import EventType, Rollout, RolloutEvent, RolloutState, RolloutStep

_OLD_SCHEMA = [  # the hand-rolled store's DDL, generation column included
    """CREATE TABLE serving_deployments (
        name TEXT PRIMARY KEY, model TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL,
        generation BIGINT NOT NULL DEFAULT 0)""",
    """CREATE TABLE serving_batch_jobs (
        id TEXT PRIMARY KEY, deployment TEXT NOT NULL, create_time TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE TABLE serving_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
    """CREATE TABLE serving_rollouts (
        name TEXT PRIMARY KEY, deployment TEXT NOT NULL, state TEXT NOT NULL,
        revision BIGINT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE serving_rollout_events (
        rollout TEXT NOT NULL, sequence BIGINT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (rollout, sequence))""",
    """CREATE TABLE serving_route_stats (
        deployment TEXT NOT NULL, version TEXT NOT NULL, bucket_start BIGINT NOT NULL,
        kind TEXT NOT NULL, count BIGINT NOT NULL,
        PRIMARY KEY (deployment, version, bucket_start, kind))""",
]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _rollout(revision: int, state: RolloutState = RolloutState.RUNNING) -> Rollout:
    return Rollout("r1", "d1", ModelTarget(version="2"), (RolloutStep(10.0), RolloutStep(50.0)),
                   state=state, revision=revision, create_time=T0)


def _event(sequence: int) -> RolloutEvent:
    return RolloutEvent("r1", sequence, T0, EventType.CREATED, RolloutState.RUNNING, 0, 10.0,
                        "made", "test")


def _old_rows() -> list[tuple[str, tuple[Any, ...]]]:
    d = Deployment(name="d1", model="churn", etag="e1")
    job = BatchJob(id="j1", deployment="d1", create_time=T0)
    return [
        ("INSERT INTO serving_deployments VALUES (?, ?, ?, ?, ?)",
         ("d1", "churn", "e1", json.dumps(d.to_dict()), 7)),
        ("INSERT INTO serving_generation VALUES (?, ?)", (1, 7)),
        ("INSERT INTO serving_batch_jobs VALUES (?, ?, ?, ?)",
         ("j1", "d1", T0.isoformat(), json.dumps(job.to_dict()))),
        ("INSERT INTO serving_rollouts VALUES (?, ?, ?, ?, ?)",
         ("r1", "d1", "RUNNING", 1, json.dumps(_rollout(1).to_dict()))),
        ("INSERT INTO serving_rollout_events VALUES (?, ?, ?)",
         ("r1", 1, json.dumps(_event(1).to_dict()))),
        ("INSERT INTO serving_route_stats VALUES (?, ?, ?, ?, ?)",
         ("d1", "2", 600, "requests", 5)),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def old_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'serving.db'}"
    else:
        url = request.getfixturevalue("make_postgres_database")("mp_serving_old_store")
    run_sql(url, [*_OLD_SCHEMA, *_old_rows()])
    return url


def test_a_store_written_before_kit_documents_is_read_and_written_on(old_store_url: str) -> None:
    store = DeploymentStore(old_store_url)
    try:
        d = store.get("d1")
        assert d is not None and (d.model, d.etag, d.generation) == ("churn", "e1", 7)
        assert store.generations() == {"d1": 7}
        assert [x.name for x in store.list_deployments(model="churn")] == ["d1"]
        assert store.list_deployments(after="d1") == []
        with pytest.raises(AlreadyExists) as exists:
            store.create(Deployment(name="d1", model="churn", etag="x"))
        assert exists.value.reason == "DEPLOYMENT_EXISTS"
        with pytest.raises(Aborted) as changed:
            store.replace(dataclasses.replace(d, etag="e2"), expected_etag="stale")
        assert changed.value.reason == "ETAG_MISMATCH" and changed.value.metadata["etag"] == "e1"
        with pytest.raises(NotFound):
            store.replace(Deployment(name="nope", model="m", etag="e"), expected_etag="e")
        # the counter goes on from the old store's (no refused write took a number)
        assert store.replace(dataclasses.replace(d, etag="e2"),
                             expected_etag="e1").generation == 8

        job = store.get_job("j1")
        assert job is not None and job.create_time == T0
        store.save_job(dataclasses.replace(job, rows_total=3))
        assert [j.rows_total for j in store.list_jobs(deployment="d1")] == [3]

        r = store.get_rollout("r1")
        assert r is not None and r.revision == 1
        assert [e.sequence for e in store.rollout_events("r1")] == [1]
        with pytest.raises(Aborted) as stale:
            store.save_rollout(_rollout(3, RolloutState.PAUSED), expected_revision=2)
        assert stale.value.reason == "ROLLOUT_CHANGED"
        with pytest.raises(AlreadyExists):
            store.save_rollout(_rollout(1), expected_revision=0)
        store.save_rollout(_rollout(2, RolloutState.PAUSED), expected_revision=1, event=_event(2))
        assert [x.name for x in store.list_rollouts(states=(RolloutState.PAUSED,))] == ["r1"]
        assert store.list_rollouts(states=(RolloutState.RUNNING,)) == []
        assert [e.sequence for e in store.rollout_events("r1", after=1)] == [2]

        store.add_route_stats([("d1", "2", 600, "requests", 2), ("d1", "2", 660, "errors", 1)])
        assert store.route_stats("d1", "2", 600, 700) == {"requests": 7, "errors": 1}
        assert store.prune_route_stats(650) == 1
        assert store.route_stats("d1", "2", 0, 10_000) == {"errors": 1}
    finally:
        store.close()


def test_the_lease_is_held_by_one_holder_until_it_expires_or_is_released(
        make_postgres_database: Any) -> None:
    store = DeploymentStore(make_postgres_database("mp_serving_lease"))
    try:
        assert store.acquire_lease("controller", "a", 30) == (True, 30)
        held, left = store.acquire_lease("controller", "b", 30)
        assert not held and 25 < left <= 30
        assert store.acquire_lease("controller", "a", 30)[0]  # renewed by its holder
        store.release_lease("controller", "b")  # not b's: nothing happens
        assert not store.acquire_lease("controller", "b", 30)[0]
        store.release_lease("controller", "a")
        assert store.acquire_lease("controller", "b", 30)[0]
    finally:
        store.close()
