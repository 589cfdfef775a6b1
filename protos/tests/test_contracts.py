"""The contracts: generated code is fresh and every RPC follows the conventions."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf.descriptor import ServiceDescriptor

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_fresh() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "protos" / "build.py"), "check"],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


def _services() -> list[ServiceDescriptor]:
    # pkgutil does not descend into PEP 420 namespace packages, so walk the files.
    src = ROOT / "protos" / "src"
    found = []
    for path in sorted(src.glob("modelplane/*/v*/*_pb2.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found.extend(importlib.import_module(name).DESCRIPTOR.services_by_name.values())
    return found


def test_every_service_contract_is_found() -> None:
    names = {svc.full_name for svc in _services()}
    assert {"modelplane.featurestore.v1.FeatureStoreService",
            "modelplane.registry.v1.ModelRegistryService",
            "modelplane.validator.v1.ValidatorService",
            "modelplane.serving.v1.ServingService",
            "modelplane.observability.v1.ObservabilityService"} <= names


def test_every_rpc_has_an_http_binding() -> None:
    missing = [f"{svc.full_name}.{m.name}" for svc in _services() for m in svc.methods
               if not m.GetOptions().HasExtension(annotations_pb2.http)]
    assert missing == []


@pytest.mark.parametrize("svc", _services(), ids=lambda s: s.full_name)
def test_service_lives_in_a_versioned_modelplane_package(svc: ServiceDescriptor) -> None:
    package = svc.file.package
    assert package.startswith("modelplane.") and package.endswith(".v1")
    assert svc.file.name.startswith(package.replace(".", "/") + "/")
