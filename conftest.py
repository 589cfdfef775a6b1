"""Fixtures shared by every package's tests (pytest loads this conftest for each test
under the repository root, whichever package directory is run)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "services" / "registry" / "tests"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # A parallel worker inherits the environment of the process that started it, whose
    # conftests set BENTOML_HOME to a directory of their own: each worker keeps its own
    # BentoML store instead (the conftests below set it again, per process).
    os.environ.pop("BENTOML_HOME", None)

from registry_testenv import RegistryEnv, registry_env


@pytest.fixture(scope="session")
async def shared_registry(tmp_path_factory: pytest.TempPathFactory,
                          ) -> AsyncIterator[RegistryEnv]:
    """One real registry (gRPC in-process, ``mlflow server`` child, SQLite) for the whole
    session: starting MLflow costs 10-15 s, so the modules that only register, alias and
    read models use this one, each under model and experiment names of its own. A module
    that stops, restarts or reconfigures its registry starts its own with ``registry_env``."""
    async with registry_env("sqlite", tmp_path_factory.mktemp("shared-registry")) as env:
        yield env
