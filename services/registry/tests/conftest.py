"""Fixtures of the registry's tests: one real registry + mlflow server per backend."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from registry_testenv import RegistryEnv, registry_env


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def registry(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RegistryEnv]:
    """The same tests run against the embedded (SQLite) and production (PostgreSQL) stores."""
    root = tmp_path_factory.mktemp(f"registry-{request.param}")
    if request.param == "postgres":
        make: Callable[[str], str] = request.getfixturevalue("make_postgres_database")
        async with registry_env("postgres", root, database_url=make("mp_registry"),
                                backend_store_uri=make("mp_mlflow")) as env:
            yield env
    else:
        async with registry_env("sqlite", root) as env:
            yield env
