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

#: The modules that take longest, with their wall time in seconds (fixtures included) as
#: measured on this 2-core machine kind under load (2 workers, load average ~10; a quiet
#: machine takes about half). pytest-xdist hands whole files to its workers in collection
#: order (``--no-loadscope-reorder`` in pyproject.toml), and ``pytest_collection_modifyitems``
#: below puts these first, longest first: a long module started late would keep one worker
#: busy after the others ran out of work (xdist's own order, by number of tests, started the
#: lifecycle e2e at 247 s and the 4-test platform supervision file last). Only the order
#: matters: update a figure when a module's time changes a lot (`--durations=0`, summed).
LONG_MODULES: dict[str, int] = {
    "tests/test_lifecycle_e2e.py": 410,
    "tests/test_platform_cli.py": 390,  # (the supervision tests merged in: estimate)
    "tests/scale/test_prediction_log_crash.py": 250,  # (at least: the run was cut there)
    "services/registry/tests/test_registry_lifecycle.py": 215,
    "tests/scale/test_rollout_replicas.py": 180,  # (at least: the run was cut there)
    "tests/scale/test_serving_replicas.py": 135,
    "tests/scale/test_platform_replicas.py": 120,
    "services/observability/tests/test_observability_attribution.py": 110,
    "tests/test_rollout_registry.py": 100,
    "tests/security/test_limits.py": 95,
    "tests/security/test_reader_refused.py": 75,
    "tests/security/test_gate_registry.py": 60,
    "services/observability/tests/test_observability_model_explanation.py": 55,
    "tests/scale/test_observability_replicas.py": 45,
}


@pytest.fixture(scope="session")
async def shared_registry(tmp_path_factory: pytest.TempPathFactory,
                          ) -> AsyncIterator[RegistryEnv]:
    """One real registry (gRPC in-process, ``mlflow server`` child, SQLite) for the whole
    session: starting MLflow costs 10-15 s, so the modules that only register, alias and
    read models use this one, each under model and experiment names of its own. A module
    that stops, restarts or reconfigures its registry starts its own with ``registry_env``."""
    async with registry_env("sqlite", tmp_path_factory.mktemp("shared-registry")) as env:
        yield env


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``LONG_MODULES`` first, longest first, then the other files by their number of
    tests (pytest-xdist's own ``loadfile`` order); each file's tests keep their order. Every
    worker collects the same items and sorts them alike, as pytest-xdist requires."""
    root = config.rootpath
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path.relative_to(root).as_posix(), []).append(item)

    def cost(path: str) -> tuple[int, int]:
        return (-LONG_MODULES.get(path, 0), -len(files[path]))

    # sorted() is stable: files of equal cost keep their collection order
    items[:] = [item for path in sorted(files, key=cost) for item in files[path]]
