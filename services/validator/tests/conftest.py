"""Fixtures of the validator's tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validator_testdata import Scenario, make_scenario


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return make_scenario()
