"""API-key check at the gateway: same keys file and per-method roles as the services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.gateway.app import create_app
from modelplane.gateway.catalog import Catalog
from modelplane.kit.auth import Role, add_key

from .conftest import GatewayServer, gateway_settings


@pytest.fixture(scope="module")
async def keyed(stack: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[str, dict[str, str]]]:
    keys_file: Path = tmp_path_factory.mktemp("keys") / "api_keys.json"
    keys = {role.name.lower(): add_key(keys_file, role.name.lower(), role) for role in Role}
    settings = gateway_settings(stack.backend_address, MODELPLANE_AUTH="on",
                                MODELPLANE_API_KEYS_FILE=str(keys_file))
    app = create_app(settings, Catalog.from_files([stack.contract.pb2.DESCRIPTOR]))
    async with GatewayServer(app) as gw:
        yield gw.url, keys


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_missing_or_unknown_key_is_401_and_never_reaches_the_service(
        keyed: tuple[str, dict[str, str]], stack: Any) -> None:
    url, _ = keyed
    before = len(stack.backend.calls)
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/v1/widgets")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["details"][0]["reason"] == "API_KEY_MISSING"
        r = await http.get("/v1/widgets", headers=_bearer("mp_wrong"))
        assert r.status_code == 401 and r.json()["details"][0]["reason"] == "API_KEY_INVALID"
    assert len(stack.backend.calls) == before


async def test_an_expired_key_is_401_saying_so_and_never_reaches_the_service(
        stack: Any, tmp_path: Path) -> None:
    keys_file = tmp_path / "api_keys.json"
    key = add_key(keys_file, "ana", Role.ADMIN, expires=datetime.now(UTC) - timedelta(seconds=1))
    settings = gateway_settings(stack.backend_address, MODELPLANE_AUTH="on",
                                MODELPLANE_API_KEYS_FILE=str(keys_file))
    app = create_app(settings, Catalog.from_files([stack.contract.pb2.DESCRIPTOR]))
    before = len(stack.backend.calls)
    async with GatewayServer(app) as gw, httpx.AsyncClient(base_url=gw.url) as http:
        r = await http.post("/v1/shelves/s:purge", json={}, headers=_bearer(key))
    assert r.status_code == 401
    assert r.json()["details"][0]["reason"] == "API_KEY_EXPIRED"
    assert "'ana' expired" in r.json()["message"]
    assert len(stack.backend.calls) == before


async def test_roles_follow_the_contract(keyed: tuple[str, dict[str, str]]) -> None:
    url, keys = keyed
    async with httpx.AsyncClient(base_url=url) as http:
        # GET = read
        assert (await http.get("/v1/widgets", headers=_bearer(keys["reader"]))).status_code == 200
        # POST without an access option = write
        r = await http.post("/v1/shelves/s/widgets", json={}, headers=_bearer(keys["reader"]))
        assert r.status_code == 403
        assert r.json()["details"][0]["metadata"]["required_role"] == "writer"
        r = await http.post("/v1/shelves/s/widgets", json={}, headers=_bearer(keys["writer"]))
        assert r.status_code == 200
        # POST with ACCESS_READ
        r = await http.post("/v1/shelves/s/widgets/w:score", json={},
                            headers=_bearer(keys["reader"]))
        assert r.status_code == 200
        # ACCESS_ADMIN
        r = await http.post("/v1/shelves/s:purge", json={}, headers=_bearer(keys["writer"]))
        assert r.status_code == 403
        r = await http.post("/v1/shelves/s:purge", json={}, headers=_bearer(keys["admin"]))
        assert r.status_code == 200


async def test_health_and_openapi_need_no_key(keyed: tuple[str, dict[str, str]]) -> None:
    url, _ = keyed
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200
