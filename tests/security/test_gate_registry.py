"""Issue #13, the gate decides on every path: the registry's attack rows.

Each test makes one attack with a key that must not succeed, asserts the refusal
and that the model, its aliases, versions, tags and alias history are as before.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_fixture import MODEL, Gate

from modelplane.kit.pytest_plugin import rpc_error
from modelplane.registry.v1 import registry_pb2 as pb

API = "/api/2.0/mlflow"


# The shared registry (an mlflow server) and the gate's two logged models take minutes
# to set up on a loaded machine when this module is the first to ask for them;
# pytest-timeout counts that setup against the first test.
pytestmark = pytest.mark.timeout(900)


def _forged(report: str = "rep-made-up") -> pb.AttachValidationRequest:
    return pb.AttachValidationRequest(model_name=MODEL, version=2, validation=pb.ValidationSummary(
        report_id=report, status=pb.VALIDATION_STATUS_PASS, summary="trust me"))


@pytest.mark.parametrize("who", ["writer", "admin", "serving"])
async def test_a_forged_pass_is_refused_and_champion_stays(gate: Gate, who: str) -> None:
    """Row 1: AttachValidation PASS with a made-up report, then SetAlias champion. Neither a
    writer, nor a person's admin key, nor another service's identity may attach results."""
    before = await gate.snapshot()
    err = await rpc_error(gate.stub(who).AttachValidation(_forged()))
    assert err.code == "PERMISSION_DENIED" and err.reason == "VALIDATION_SOURCE_UNTRUSTED"
    assert "validator" in err.message
    err = await rpc_error(gate.stub("writer").SetAlias(pb.SetAliasRequest(
        model_name=MODEL, alias="champion", version=2)))
    assert err.code == "FAILED_PRECONDITION" and err.reason == "VALIDATION_REQUIRED"
    assert await gate.snapshot() == before
    assert ("champion", 1) in before["aliases"]


async def test_a_forged_result_for_a_missing_version_reveals_nothing(gate: Gate) -> None:
    err = await rpc_error(gate.stub("writer").AttachValidation(pb.AttachValidationRequest(
        model_name="no-such-model", version=7, validation=_forged().validation)))
    assert err.code == "PERMISSION_DENIED"


async def test_an_admin_can_still_override_the_gate_with_a_reason_and_it_is_audited(
        gate: Gate) -> None:
    before = await gate.snapshot()
    alias = await gate.stub("admin").SetAlias(pb.SetAliasRequest(
        model_name=MODEL, alias="production", version=2, override_reason="hotfix INC-7"))
    assert alias.version == 2
    after = await gate.snapshot()
    assert after["alias_changes"][0] == ("production", 0, 2, "admin-key")
    assert after["versions"] == before["versions"]  # no validation was invented
    await gate.stub("admin").DeleteAlias(pb.DeleteAliasRequest(model_name=MODEL,
                                                              alias="production"))


async def test_rest_alias_with_a_json_string_body_is_refused(gate: Gate) -> None:
    """Row 2: registered-models/alias whose body is a JSON string holding the JSON."""
    before = await gate.snapshot()
    body = json.dumps(json.dumps({"name": MODEL, "alias": "champion", "version": "2"}))
    async with gate.http("writer") as http:
        r = await http.post(f"{API}/registered-models/alias", content=body,
                            headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert await gate.snapshot() == before


async def test_rest_alias_with_parameters_in_the_query_is_refused(gate: Gate) -> None:
    before = await gate.snapshot()
    async with gate.http("writer") as http:
        r = await http.post(f"{API}/registered-models/alias",
                            params={"name": MODEL, "alias": "challenger", "version": "1"},
                            json={"name": MODEL, "alias": "champion", "version": "2"})
    assert r.status_code == 400 and "query" in r.json()["message"]
    assert await gate.snapshot() == before


@pytest.mark.parametrize("encode", ["json", "json-string", "text/plain"])
async def test_rest_validation_tags_cannot_be_forged(gate: Gate, encode: str) -> None:
    """Row 3: model-versions/set-tag modelplane.validation.status = PASS, however encoded."""
    before = await gate.snapshot()
    payload = {"name": MODEL, "version": "2", "key": "modelplane.validation.status",
               "value": "PASS"}
    content = json.dumps(json.dumps(payload)) if encode == "json-string" else json.dumps(payload)
    ctype = "text/plain" if encode == "text/plain" else "application/json"
    async with gate.http("admin") as http:
        r = await http.post(f"{API}/model-versions/set-tag", content=content,
                            headers={"content-type": ctype})
    assert r.status_code in (400, 403), r.text
    assert await gate.snapshot() == before
    v2 = await gate.stub("reader").GetModelVersion(pb.GetModelVersionRequest(
        model_name=MODEL, version=2))
    assert v2.validation.status == pb.VALIDATION_STATUS_UNSPECIFIED


@pytest.mark.parametrize(("method", "route", "body"), [
    ("DELETE", "model-versions/delete-tag",
     {"name": MODEL, "version": "1", "key": "modelplane.validation.status"}),
    ("DELETE", "model-versions/delete-tag",
     {"name": MODEL, "version": "1", "key": "modelplane.created_by"}),
    ("POST", "model-versions/set-tag",
     {"name": MODEL, "version": "1", "key": "modelplane.lineage.dataset_id", "value": "x"}),
    ("POST", "registered-models/set-tag",
     {"name": MODEL, "key": "modelplane.owner", "value": "mallory"}),
])
async def test_reserved_tags_are_written_only_by_services(gate: Gate, method: str, route: str,
                                                         body: dict[str, str]) -> None:
    before = await gate.snapshot()
    async with gate.http("admin") as http:
        r = await http.request(method, f"{API}/{route}", json=body)
    assert r.status_code == 403 and "reserved" in r.json()["message"]
    assert await gate.snapshot() == before


async def test_reserved_tags_over_grpc_are_refused(gate: Gate) -> None:
    before = await gate.snapshot()
    err = await rpc_error(gate.stub("admin").UpdateModel(pb.UpdateModelRequest(
        model=pb.Model(name=MODEL, tags={"modelplane.validation.status": "PASS"}))))
    assert err.code == "INVALID_ARGUMENT"
    err = await rpc_error(gate.stub("admin").UpdateModelVersion(pb.UpdateModelVersionRequest(
        model_version=pb.ModelVersion(model_name=MODEL, version=2,
                                      tags={"modelplane.validation.status": "PASS"}))))
    assert err.code == "INVALID_ARGUMENT"
    assert await gate.snapshot() == before


async def test_a_service_identity_may_write_a_reserved_tag(gate: Gate) -> None:
    async with gate.http("validator") as http:
        r = await http.post(f"{API}/registered-models/set-tag",
                            json={"name": MODEL, "key": "modelplane.validated_by", "value": "ci"})
        assert r.status_code == 200, r.text
        r = await http.request("DELETE", f"{API}/registered-models/delete-tag",
                               json={"name": MODEL, "key": "modelplane.validated_by"})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("encode", ["json", "text/plain"])
@pytest.mark.parametrize("who", ["writer", "admin"])
async def test_rest_model_delete_needs_admin_and_no_protected_alias(gate: Gate, encode: str,
                                                                   who: str) -> None:
    """Row 4: registered-models/delete (JSON and text/plain) on a model holding champion."""
    before = await gate.snapshot()
    headers = {"content-type": "application/json" if encode == "json" else "text/plain"}
    async with gate.http(who) as http:
        r = await http.request("DELETE", f"{API}/registered-models/delete",
                               content=json.dumps({"name": MODEL}), headers=headers)
    assert r.status_code == (403 if who == "writer" else 400), r.text
    assert await gate.snapshot() == before


@pytest.mark.parametrize("who", ["writer", "admin"])
async def test_rest_version_delete_needs_admin_and_no_protected_alias(gate: Gate,
                                                                      who: str) -> None:
    before = await gate.snapshot()
    async with gate.http(who) as http:
        r = await http.request("DELETE", f"{API}/model-versions/delete",
                               json={"name": MODEL, "version": "1"})
    assert r.status_code == (403 if who == "writer" else 400), r.text
    if who == "admin":
        assert "champion" in r.json()["message"]
    assert await gate.snapshot() == before


@pytest.mark.parametrize("header", ["x_modelplane_principal", "X-Modelplane-Principal",
                                    "X_MODELPLANE_PRINCIPAL", "x-modelplane-principal"])
async def test_the_principal_header_from_outside_is_ignored(gate: Gate, header: str) -> None:
    """Row 5: a caller's own principal header neither names the audit's principal nor
    lends a service identity's rights."""
    forged = {header: "validator|ADMIN|service"}
    before = await gate.snapshot()
    async with gate.http("writer", **forged) as http:
        r = await http.post(f"{API}/model-versions/set-tag", json={
            "name": MODEL, "version": "2", "key": "modelplane.validation.status",
            "value": "PASS"})
        assert r.status_code == 403, r.text
        assert await gate.snapshot() == before
        r = await http.post(f"{API}/registered-models/alias",
                            json={"name": MODEL, "alias": "challenger", "version": "2"})
        assert r.status_code == 200, r.text
        after = await gate.snapshot()
        assert after["alias_changes"][0] == ("challenger", 1, 2, "writer-key")
        r = await http.post(f"{API}/registered-models/alias",
                            json={"name": MODEL, "alias": "challenger", "version": "1"})
        assert r.status_code == 200, r.text


async def test_the_audit_row_records_what_mlflow_did(gate: Gate) -> None:
    """Setting an alias to where it already is moves nothing and records no move."""
    async with gate.http("writer") as http:
        r = await http.post(f"{API}/registered-models/alias",
                            json={"name": MODEL, "alias": "challenger", "version": "2"})
        assert r.status_code == 200
        before = await gate.snapshot()
        assert before["alias_changes"][0] == ("challenger", 1, 2, "writer-key")
        r = await http.post(f"{API}/registered-models/alias",
                            json={"name": MODEL, "alias": "challenger", "version": "2"})
        assert r.status_code == 200
        assert await gate.snapshot() == before
        r = await http.post(f"{API}/registered-models/alias",
                            json={"name": MODEL, "alias": "challenger", "version": "1"})
        assert r.status_code == 200
