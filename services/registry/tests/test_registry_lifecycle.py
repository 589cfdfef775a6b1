"""The registry end to end: stock MLflow client <-> gRPC, gate, audit, events, resolve.

Every test runs against SQLite (embedded) and PostgreSQL (production) backends,
on a real ``mlflow server`` the registry supervises.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.protobuf import field_mask_pb2
from registry_testenv import RegistryEnv, in_thread, log_sklearn_model, rpc_error

from modelplane.registry.v1 import registry_pb2 as pb

# Starting an mlflow server (counted in the first test's time) takes 15-30 s on an idle
# 2-core machine, minutes on a loaded one.
pytestmark = pytest.mark.timeout(900)

GIT_SHA = "3f2a9c1d0b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b"


@dataclass
class Trained:
    model_name: str
    run_id: str
    experiment_id: str
    logged_model_id: str


@pytest.fixture(scope="module")
async def trained(registry: RegistryEnv) -> Trained:
    """A data scientist logs and registers a model with the stock client (version 1)."""
    name = registry.name("fraud")
    run_id, info = await in_thread(log_sklearn_model, registry, f"exp-{registry.backend}", name, {
        "modelplane.dataset_id": "ds-2026-11-fraud",
        "modelplane.feature_refs": "transactions:amount,customers:age",
        "mlflow.source.git.commit": GIT_SHA,
    })
    with registry.mlflow_as("reader") as client:
        run = await in_thread(client.get_run, run_id)
    return Trained(name, run_id, run.info.experiment_id, info.model_id)


async def new_version(registry: RegistryEnv, trained: Trained, model_name: str,
                      **lineage: Any) -> pb.ModelVersion:
    """Register the trained run's model as a new version, over gRPC."""
    return await registry.stub("writer").CreateModelVersion(pb.CreateModelVersionRequest(
        model_name=model_name, run_id=trained.run_id,
        lineage=pb.Lineage(dataset_id=lineage.get("dataset_id", "ds-grpc"),
                           feature_refs=lineage.get("feature_refs", ["transactions:amount"]),
                           code_version=lineage.get("code_version", "")),
        description="registered over gRPC"))


async def attach(registry: RegistryEnv, model: str, version: int, status: int,
                 report: str) -> pb.ModelVersion:
    return await registry.stub("validator").AttachValidation(pb.AttachValidationRequest(
        model_name=model, version=version, validation=pb.ValidationSummary(
            report_id=report, status=status, report_uri=f"file:///reports/{report}.json",
            summary="checks ran")))


async def test_stock_client_registration_is_seen_over_grpc_with_lineage(
        registry: RegistryEnv, trained: Trained) -> None:
    stub = registry.stub("reader")
    mv = await stub.GetModelVersion(pb.GetModelVersionRequest(model_name=trained.model_name,
                                                              version=1))
    lin = mv.lineage
    assert lin.run_id == trained.run_id
    assert lin.experiment_id == trained.experiment_id
    assert lin.dataset_id == "ds-2026-11-fraud"
    assert list(lin.feature_refs) == ["transactions:amount", "customers:age"]
    assert lin.code_version == GIT_SHA
    assert [f.name for f in lin.signature.inputs] == ["amount", "age", "score"]
    assert lin.signature.inputs[0].type == "double"
    assert mv.logged_model_id == trained.logged_model_id
    assert mv.source == f"models:/{trained.logged_model_id}"
    assert mv.creator == "writer-key"
    assert mv.status == pb.MODEL_VERSION_STATUS_READY
    assert not mv.HasField("validation")

    # Lineage lives in MLflow version tags: the stock client sees the same thing.
    with registry.mlflow_as("reader") as client:
        stock = await in_thread(client.get_model_version, trained.model_name, "1")
    assert stock.tags["modelplane.lineage.dataset_id"] == "ds-2026-11-fraud"

    listed = await stub.ListModelVersions(pb.ListModelVersionsRequest(
        model_name="-", dataset_id="ds-2026-11-fraud"))
    assert [(v.model_name, v.version) for v in listed.model_versions] == [(trained.model_name, 1)]
    model = await stub.GetModel(pb.GetModelRequest(name=trained.model_name))
    assert model.latest_version >= 1


async def test_grpc_registration_is_seen_by_the_stock_client(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("grpc-born")
    mv = await new_version(registry, trained, name, dataset_id="ds-7",
                           feature_refs=["transactions:amount", "customers:age"])
    assert mv.version == 1 and mv.logged_model_id == trained.logged_model_id
    assert mv.lineage.code_version == GIT_SHA  # taken from the run
    assert mv.lineage.dataset_id == "ds-7"  # given beats the run's tag
    assert mv.creator == "writer-key"
    with registry.mlflow_as("reader") as client:
        stock = await in_thread(client.get_model_version, name, "1")
        uri = await in_thread(client.get_model_version_download_uri, name, "1")
    assert stock.run_id == trained.run_id
    assert stock.description == "registered over gRPC"
    refs = stock.tags["modelplane.lineage.feature_refs"]
    assert refs == '["transactions:amount", "customers:age"]'
    resolved = await registry.stub("reader").ResolveModelUri(
        pb.ResolveModelUriRequest(uri=f"models:/{name}/1"))
    assert resolved.download_uri == uri
    assert resolved.tracking_uri == registry.mlflow_uri
    assert resolved.version_uri == f"models:/{name}/1"

    updated = await registry.stub("writer").UpdateModelVersion(pb.UpdateModelVersionRequest(
        model_version=pb.ModelVersion(model_name=name, version=1, tags={"team": "risk"},
                                      lineage=pb.Lineage(dataset_id="ds-8")),
        update_mask=field_mask_pb2.FieldMask(paths=["tags", "lineage.dataset_id"])))
    assert updated.tags == {"team": "risk"} and updated.lineage.dataset_id == "ds-8"
    assert updated.description == "registered over gRPC"


async def test_gate_refuses_then_accepts_after_a_passing_report(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("gated")
    await new_version(registry, trained, name)
    writer = registry.stub("writer")

    err = await rpc_error(writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="champion",
                                                              version=1)))
    assert err.code == "FAILED_PRECONDITION" and err.reason == "VALIDATION_REQUIRED"
    assert "no validation report" in err.message
    assert err.metadata["model"] == name and err.metadata["version"] == "1"
    assert err.metadata["alias"] == "champion"

    await attach(registry, name, 1, pb.VALIDATION_STATUS_FAIL, "rep-fail")
    err = await rpc_error(writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="champion",
                                                              version=1)))
    assert err.reason == "VALIDATION_REQUIRED" and "rep-fail" in err.message
    assert err.metadata["validation_status"] == "FAIL"

    # The stock client cannot go around the gate through MLflow's REST API.
    from mlflow.exceptions import MlflowException

    with registry.mlflow_as("admin") as client:
        with pytest.raises(MlflowException, match="needs status PASS"):
            await in_thread(client.set_registered_model_alias, name, "champion", "1")
        # ... nor forge a passing report.
        with pytest.raises(MlflowException, match="is reserved"):
            await in_thread(client.set_model_version_tag, name, "1",
                            "modelplane.validation.status", "PASS")

    # Unprotected aliases are not gated.
    await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="challenger", version=1))

    passed = await attach(registry, name, 1, pb.VALIDATION_STATUS_PASS, "rep-pass")
    assert passed.validation.status == pb.VALIDATION_STATUS_PASS
    assert passed.validation.attached_by == "validator"
    alias = await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="champion",
                                                      version=1))
    assert alias.version == 1 and alias.protected and alias.updated_by == "writer-key"

    with registry.mlflow_as("reader") as client:
        stock = await in_thread(client.get_model_version_by_alias, name, "champion")
    assert stock.version == "1"
    assert stock.tags["modelplane.validation.report_id"] == "rep-pass"

    history = await writer.ListAliasChanges(pb.ListAliasChangesRequest(model_name=name,
                                                                       alias="champion"))
    [change] = history.alias_changes
    assert not change.override and change.validation.report_id == "rep-pass"


async def test_override_needs_admin_and_records_reason_and_caller(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("override")
    await new_version(registry, trained, name)
    request = pb.SetAliasRequest(model_name=name, alias="champion", version=1,
                                 override_reason="hotfix INC-4411: validator down")
    err = await rpc_error(registry.stub("writer").SetAlias(request))
    assert err.code == "PERMISSION_DENIED" and err.reason == "OVERRIDE_NOT_ALLOWED"

    alias = await registry.stub("admin").SetAlias(request)
    assert alias.version == 1 and alias.updated_by == "admin-key"
    history = await registry.stub("reader").ListAliasChanges(
        pb.ListAliasChangesRequest(model_name=name))
    [change] = history.alias_changes
    assert change.override
    assert change.reason == "hotfix INC-4411: validator down"
    assert change.principal == "admin-key"
    assert change.origin == pb.CHANGE_ORIGIN_GRPC
    assert (change.from_version, change.to_version) == (0, 1)
    assert not change.HasField("validation")


async def test_alias_history_records_grpc_and_stock_client_changes(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("audited")
    for _ in range(3):
        await new_version(registry, trained, name)
    writer = registry.stub("writer")
    await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="challenger", version=1))
    with registry.mlflow_as("writer") as client:
        await in_thread(client.set_registered_model_alias, name, "challenger", "2")
    await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="challenger", version=3))
    with registry.mlflow_as("writer") as client:
        await in_thread(client.delete_registered_model_alias, name, "challenger")

    reader = registry.stub("reader")
    changes = (await reader.ListAliasChanges(pb.ListAliasChangesRequest(model_name=name))
               ).alias_changes
    assert [(c.from_version, c.to_version) for c in changes] == [(3, 0), (2, 3), (1, 2), (0, 1)]
    assert [c.origin for c in changes] == [pb.CHANGE_ORIGIN_MLFLOW, pb.CHANGE_ORIGIN_GRPC,
                                           pb.CHANGE_ORIGIN_MLFLOW, pb.CHANGE_ORIGIN_GRPC]
    assert {c.principal for c in changes} == {"writer-key"}
    assert [int(c.id) for c in changes] == sorted((int(c.id) for c in changes), reverse=True)

    # Paging: one at a time, same order, token bound to its query.
    seen, token = [], ""
    while True:
        page = await reader.ListAliasChanges(pb.ListAliasChangesRequest(
            model_name=name, page_size=1, page_token=token))
        seen += [c.id for c in page.alias_changes]
        token = page.next_page_token
        if not token:
            break
    assert seen == [c.id for c in changes]
    first = await reader.ListAliasChanges(pb.ListAliasChangesRequest(model_name=name,
                                                                     page_size=1))
    err = await rpc_error(reader.ListAliasChanges(pb.ListAliasChangesRequest(
        model_name=registry.name("fraud"), page_size=1, page_token=first.next_page_token)))
    assert err.code == "INVALID_ARGUMENT" and err.reason == "INVALID_PAGE_TOKEN"

    err = await rpc_error(reader.GetAlias(pb.GetAliasRequest(model_name=name,
                                                              alias="challenger")))
    assert err.code == "NOT_FOUND" and err.reason == "ALIAS_NOT_FOUND"

    # Versions page newest first too.
    page = await reader.ListModelVersions(pb.ListModelVersionsRequest(model_name=name,
                                                                      page_size=2))
    assert [v.version for v in page.model_versions] == [3, 2] and page.next_page_token
    rest = await reader.ListModelVersions(pb.ListModelVersionsRequest(
        model_name=name, page_size=2, page_token=page.next_page_token))
    assert [v.version for v in rest.model_versions] == [1] and not rest.next_page_token
    models = await reader.ListModels(pb.ListModelsRequest(name_prefix=name))
    assert [m.name for m in models.models] == [name] and models.models[0].latest_version == 3


async def test_event_stream_delivers_alias_moves_from_both_sides(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("watched")
    await new_version(registry, trained, name)
    await new_version(registry, trained, name)
    stream = registry.stub("reader").WatchModelEvents(pb.WatchModelEventsRequest(
        model_names=[name], types=[pb.MODEL_EVENT_TYPE_ALIAS_SET,
                                   pb.MODEL_EVENT_TYPE_ALIAS_DELETED]))
    it = stream.__aiter__()
    started = await asyncio.wait_for(it.__anext__(), 30)
    assert started.type == pb.MODEL_EVENT_TYPE_WATCH_STARTED

    await registry.stub("writer").SetAlias(pb.SetAliasRequest(model_name=name,
                                                              alias="challenger", version=1))
    ev = await asyncio.wait_for(it.__anext__(), 30)
    assert ev.type == pb.MODEL_EVENT_TYPE_ALIAS_SET and ev.model_name == name
    assert (ev.alias, ev.version) == ("challenger", 1)
    assert ev.alias_change.to_version == 1 and ev.origin == pb.CHANGE_ORIGIN_GRPC
    assert ev.sequence > started.sequence

    with registry.mlflow_as("writer") as client:  # the stock client moves it
        await in_thread(client.set_registered_model_alias, name, "challenger", "2")
    moved = await asyncio.wait_for(it.__anext__(), 30)
    assert moved.type == pb.MODEL_EVENT_TYPE_ALIAS_SET
    assert (moved.alias_change.from_version, moved.alias_change.to_version) == (1, 2)
    assert moved.origin == pb.CHANGE_ORIGIN_MLFLOW and moved.principal == "writer-key"
    stream.cancel()

    # A watcher that resumes from a sequence gets what it missed, in order.
    replay = registry.stub("reader").WatchModelEvents(pb.WatchModelEventsRequest(
        model_names=[name], after_sequence=started.sequence))
    got = []
    async for event in replay:
        got.append(event)
        if event.type == pb.MODEL_EVENT_TYPE_ALIAS_SET and event.version == 2:
            break
    replay.cancel()
    assert got[0].type == pb.MODEL_EVENT_TYPE_WATCH_STARTED
    assert [(e.type, e.version) for e in got[1:]] == [(pb.MODEL_EVENT_TYPE_ALIAS_SET, 1),
                                                      (pb.MODEL_EVENT_TYPE_ALIAS_SET, 2)]


async def test_resolve_is_never_stale_after_an_alias_move(
        registry: RegistryEnv, trained: Trained) -> None:
    name = registry.name("resolved")
    await new_version(registry, trained, name)
    await new_version(registry, trained, name)
    reader, writer = registry.stub("reader"), registry.stub("writer")
    uri = f"models:/{name}@challenger"
    await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="challenger", version=1))
    for _ in range(3):  # warm the cache
        got = await reader.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri))
        assert got.model_version.version == 1 and got.alias == "challenger"
    for target in (2, 1, 2):
        with registry.mlflow_as("writer") as client:
            await in_thread(client.set_registered_model_alias, name, "challenger", str(target))
        got = await reader.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri))
        assert got.model_version.version == target  # right after, no waiting
    await writer.SetAlias(pb.SetAliasRequest(model_name=name, alias="challenger", version=1))
    got = await reader.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri))
    assert got.model_version.version == 1
    with registry.mlflow_as("writer") as client:
        await in_thread(client.delete_registered_model_alias, name, "challenger")
    err = await rpc_error(reader.ResolveModelUri(pb.ResolveModelUriRequest(uri=uri)))
    assert err.code == "NOT_FOUND" and err.reason == "ALIAS_NOT_FOUND"
    assert registry.service.current().resolver.hits >= 2


async def test_bad_input_names_what_is_wrong(registry: RegistryEnv, trained: Trained) -> None:
    reader, writer = registry.stub("reader"), registry.stub("writer")
    err = await rpc_error(reader.GetModel(pb.GetModelRequest(name="no-such-model")))
    assert err.code == "NOT_FOUND" and "no-such-model" in err.message
    err = await rpc_error(reader.GetModelVersion(pb.GetModelVersionRequest(
        model_name=trained.model_name, version=999)))
    assert err.code == "NOT_FOUND" and err.metadata["version"] == "999"
    err = await rpc_error(reader.ResolveModelUri(pb.ResolveModelUriRequest(
        uri=f"models:/{trained.model_name}@nobody")))
    assert err.code == "NOT_FOUND" and err.metadata["alias"] == "nobody"
    err = await rpc_error(reader.ResolveModelUri(pb.ResolveModelUriRequest(uri="runs:/abc/m")))
    assert err.code == "INVALID_ARGUMENT" and err.field_violations[0].field == "uri"
    err = await rpc_error(writer.CreateModel(pb.CreateModelRequest(model=pb.Model(name="a/b"))))
    assert err.code == "INVALID_ARGUMENT" and err.field_violations[0].field == "model.name"
    err = await rpc_error(writer.SetAlias(pb.SetAliasRequest(
        model_name=trained.model_name, alias="v3", version=1)))
    assert err.reason == "ALIAS_RESERVED"
    err = await rpc_error(writer.CreateModelVersion(pb.CreateModelVersionRequest(
        model_name=registry.name("x"), run_id=trained.run_id,
        lineage=pb.Lineage(feature_refs=["ok:fine", "no-colon"]))))
    assert err.code == "INVALID_ARGUMENT"
    assert [v.field for v in err.field_violations] == ["lineage.feature_refs[1]"]
    err = await rpc_error(writer.CreateModelVersion(pb.CreateModelVersionRequest(
        model_name=registry.name("x"), run_id=trained.run_id, artifact_path="nothing-here")))
    assert err.code == "NOT_FOUND" and err.reason == "LOGGED_MODEL_NOT_FOUND"
    err = await rpc_error(writer.CreateModelVersion(pb.CreateModelVersionRequest(
        model_name=registry.name("x"), run_id="0" * 32)))
    assert err.code == "NOT_FOUND" and err.metadata["run_id"] == "0" * 32
    err = await rpc_error(writer.AttachValidation(pb.AttachValidationRequest(
        model_name=trained.model_name, version=1,
        validation=pb.ValidationSummary(report_id="r1"))))
    assert err.field_violations[0].field == "validation.status"
    err = await rpc_error(reader.SetAlias(pb.SetAliasRequest(
        model_name=trained.model_name, alias="challenger", version=1)))
    assert err.code == "PERMISSION_DENIED"  # a reader key cannot write
    err = await rpc_error(writer.DeleteModel(pb.DeleteModelRequest(name=trained.model_name)))
    assert err.code == "PERMISSION_DENIED"  # deleting models is for admins


async def test_mlflow_rest_api_needs_an_api_key(registry: RegistryEnv, trained: Trained) -> None:
    async with httpx.AsyncClient(base_url=registry.mlflow_uri) as http:
        assert (await http.get("/health")).status_code == 200
        anon = await http.get("/api/2.0/mlflow/registered-models/search")
        assert anon.status_code == 401 and "Basic" in anon.headers["www-authenticate"]
        bad = await http.get("/api/2.0/mlflow/registered-models/search",
                             headers={"Authorization": "Bearer not-a-key"})
        assert bad.status_code == 401 and bad.json()["message"] == "unknown API key"
        expired = await http.get("/api/2.0/mlflow/registered-models/search",
                                 headers={"Authorization": f"Bearer {registry.keys['expired']}"})
        assert expired.status_code == 401
        assert expired.json()["message"].startswith("API key 'expired-key' expired at ")
        ui = await http.get("/", auth=("anyone", registry.keys["reader"]))
        assert ui.status_code == 200
    from mlflow.exceptions import MlflowException

    with registry.mlflow_as("reader") as client:
        found = await in_thread(client.search_registered_models,
                                f"name = '{trained.model_name}'")
        assert [m.name for m in found] == [trained.model_name]
        with pytest.raises(MlflowException, match="needs writer"):
            await in_thread(client.create_registered_model, registry.name("by-reader"))


async def test_mlflow_server_is_restarted_when_it_dies(registry: RegistryEnv,
                                                        trained: Trained) -> None:
    """Last in the module: it kills the server the other tests use."""
    server = registry.service.mlflow
    old_pid = server.pid
    assert old_pid is not None
    os.killpg(old_pid, signal.SIGKILL)  # our own child and its workers
    deadline = asyncio.get_running_loop().time() + 600
    async with httpx.AsyncClient(base_url=registry.mlflow_uri, timeout=2) as http:
        while True:
            assert asyncio.get_running_loop().time() < deadline, "mlflow server not restarted"
            if server.pid not in (None, old_pid):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.5)
    with registry.mlflow_as("reader") as client:
        mv = await in_thread(client.get_model_version, trained.model_name, "1")
    assert mv.run_id == trained.run_id
