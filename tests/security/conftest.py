"""The registry gate's model, set up once on the session's shared registry for the attack
tests of test_gate_registry and test_mlflow_guard_routes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_fixture import Gate, open_gate
from registry_testenv import RegistryEnv


@pytest.fixture(scope="session")
async def gate(shared_registry: RegistryEnv) -> Gate:
    return await open_gate(shared_registry)
