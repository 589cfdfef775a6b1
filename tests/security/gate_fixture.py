"""A registry with one model for the gate's attack tests (imported by tests/security/test_gate_*).

``fraud-gate``: version 1 validated PASS by the validator's own identity and holding
``champion``; version 2 unvalidated. ``snapshot`` is what "nothing changed" compares.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "registry" / "tests"))

from registry_testenv import RegistryEnv, log_sklearn_model

from modelplane.kit.clients import channel
from modelplane.registry.v1 import registry_pb2 as pb
from modelplane.registry.v1 import registry_pb2_grpc

MODEL = "fraud-gate"


@dataclass
class Gate:
    env: RegistryEnv
    keys: dict[str, str]

    def stub(self, who: str) -> registry_pb2_grpc.ModelRegistryServiceStub:
        if who in self.env.channels:
            return self.env.stub(who)
        self.env.channels[who] = channel(self.env.address, api_key=self.keys[who], tracing=False)
        return self.env.stub(who)

    def http(self, who: str | None = None, **headers: str) -> httpx.AsyncClient:
        if who is not None:
            headers["authorization"] = f"Bearer {self.keys[who]}"
        return httpx.AsyncClient(base_url=self.env.mlflow_uri, headers=headers, timeout=60)

    async def snapshot(self, model: str = MODEL) -> dict[str, Any]:
        """Everything an attack on ``model`` could change, read over gRPC as admin."""
        admin = self.stub("admin")
        try:
            m = await admin.GetModel(pb.GetModelRequest(name=model))
        except grpc.aio.AioRpcError as err:
            return {"model": err.code().name}
        versions = await admin.ListModelVersions(pb.ListModelVersionsRequest(model_name=model))
        changes = await admin.ListAliasChanges(pb.ListAliasChangesRequest(model_name=model,
                                                                          page_size=1000))
        return {
            "aliases": sorted((a.alias, a.version) for a in m.aliases),
            "tags": dict(m.tags),
            "versions": sorted((v.version, v.validation.SerializeToString(deterministic=True),
                                tuple(sorted(v.tags.items())))
                               for v in versions.model_versions),
            "alias_changes": [(c.alias, c.from_version, c.to_version, c.principal)
                              for c in changes.alias_changes],
        }


async def open_gate(env: RegistryEnv) -> Gate:
    """The gate's model on ``env`` (the session's shared registry: the attack tests of
    every module compare their own before and after, so they can share one)."""
    keys = dict(env.keys)
    # Service identities as `modelplane up` creates them, and a person's admin key.
    for name in ("validator", "serving"):
        keys[name] = env.service_key(name)
    gate = Gate(env, keys)  # its channels are closed with the env's
    for _ in range(2):
        log_sklearn_model(env, "gate-tests", MODEL, {})
    await gate.stub("validator").AttachValidation(pb.AttachValidationRequest(
        model_name=MODEL, version=1, validation=pb.ValidationSummary(
            report_id="rep-real-1", status=pb.VALIDATION_STATUS_PASS,
            report_uri="file:///reports/rep-real-1.json", summary="checks ran")))
    await gate.stub("admin").SetAlias(pb.SetAliasRequest(
        model_name=MODEL, alias="champion", version=1))
    await gate.stub("writer").SetAlias(pb.SetAliasRequest(
        model_name=MODEL, alias="challenger", version=1))
    return gate
