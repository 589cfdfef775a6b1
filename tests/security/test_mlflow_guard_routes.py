"""Issue #13, generated from MLflow's own route table: every mutating MLflow route with a
reader key answers 403 and changes nothing; routes the guard does not know need admin."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_fixture import Gate

from modelplane.kit.auth import Role
from modelplane.registry.mlflow_routes import (
    ADMIN_ROUTES,
    READ_ROUTES,
    WRITER_ROUTES,
    RouteTable,
    mutating_rules,
    route_key,
    route_role,
)


def _mlflow_app() -> object:
    from mlflow.server import app

    return app


def _concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"\1-x", rule)


MUTATING = [(rule, method) for rule, method in mutating_rules(_mlflow_app())
            if (route_key(rule), method) not in READ_ROUTES]


# The shared registry (an mlflow server) and the gate's two logged models take minutes
# to set up on a loaded machine when this module is the first to ask for them;
# pytest-timeout counts that setup against the first test.
pytestmark = pytest.mark.timeout(900)


def test_the_route_table_is_mlflows_own_and_unknown_routes_need_admin() -> None:
    assert len(MUTATING) > 100  # MLflow 3 has well over a hundred write routes
    routes = {(route_key(rule), method) for rule, method in mutating_rules(_mlflow_app())}
    # Every route we name exists in MLflow's table (a rename upstream shows up here) ...
    assert not (WRITER_ROUTES | READ_ROUTES | ADMIN_ROUTES) - routes
    # ... and a route we do not name, like one a new release adds, is admin-only.
    assert route_role("POST", "/api/2.0/mlflow/brand-new/feature") == Role.ADMIN
    assert route_role("DELETE", None) == Role.ADMIN
    assert route_role("GET", "/api/2.0/mlflow/brand-new/feature") == Role.READER
    table = RouteTable(_mlflow_app())
    assert table.role("DELETE", "/api/2.0/mlflow/registered-models/delete") == Role.ADMIN
    assert table.role("DELETE", "/ajax-api/2.0/mlflow/model-versions/delete") == Role.ADMIN
    assert table.role("POST", "/api/2.0/mlflow/registered-models/alias") == Role.WRITER
    assert table.role("POST", "/api/3.0/mlflow/gateway/secrets/create") == Role.ADMIN
    assert table.role("POST", "/api/2.0/mlflow/not-a-route") == Role.ADMIN


async def test_every_mutating_mlflow_route_refuses_a_reader(gate: Gate) -> None:
    before = await gate.snapshot()
    allowed = []
    async with gate.http("reader") as http:
        for rule, method in MUTATING:
            r = await http.request(method, _concrete(rule), json={"name": "fraud-gate"})
            if r.status_code != 403:
                allowed.append((method, rule, r.status_code))
    assert not allowed
    assert await gate.snapshot() == before


async def test_admin_only_routes_refuse_a_writer(gate: Gate) -> None:
    before = await gate.snapshot()
    admin_only = [(rule, method) for rule, method in MUTATING
                  if route_role(method, rule) == Role.ADMIN]
    assert ("/api/2.0/mlflow/registered-models/delete", "DELETE") in admin_only
    allowed = []
    async with gate.http("writer") as http:
        for rule, method in admin_only:
            r = await http.request(method, _concrete(rule), json={"name": "fraud-gate"})
            if r.status_code != 403:
                allowed.append((method, rule, r.status_code))
    assert not allowed
    assert await gate.snapshot() == before
