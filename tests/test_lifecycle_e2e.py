"""The whole lifecycle on PostgreSQL, as a user runs it: `modelplane up --detach`, then
`modelplane demo --fast`, then every stage's outcome checked against the services
themselves (not only the demo's own summary), and one request's OpenTelemetry trace.

Every service stores its state in its own fresh PostgreSQL database; the platform's
processes export their spans (OTLP/gRPC) to a small collector run by this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from datetime import datetime
from typing import Any

import grpc
import httpx
import pytest

from modelplane.kit.pytest_plugin import free_port_block

pytestmark = pytest.mark.timeout(900)

SERVICES = ("featurestore", "registry", "validator", "serving", "observability")
MODEL = "fraud-detector"


# -- a tiny OTLP/gRPC trace collector -------------------------------------------------------
class SpanCollector:
    """Keeps (trace id, service name, span name, span id, parent span id) of every span
    exported to it."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        self.spans: list[tuple[str, str, str, str, str]] = []
        self._lock = threading.Lock()
        collector = self

        class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                rows = []
                for rs in request.resource_spans:
                    service = next((a.value.string_value for a in rs.resource.attributes
                                    if a.key == "service.name"), "")
                    for ss in rs.scope_spans:
                        rows += [(s.trace_id.hex(), service, s.name, s.span_id.hex(),
                                  s.parent_span_id.hex()) for s in ss.spans]
                with collector._lock:
                    collector.spans.extend(rows)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def services_of(self, trace_id: str) -> dict[str, list[str]]:
        with self._lock:
            out: dict[str, list[str]] = {}
            for t, service, name, _, _ in self.spans:
                if t == trace_id:
                    out.setdefault(service, []).append(name)
            return out

    def spans_of(self, trace_id: str) -> list[tuple[str, str, str, str]]:
        """(service, name, span id, parent span id) of every span of one trace."""
        with self._lock:
            return [row[1:] for row in self.spans if row[0] == trace_id]

    def stop(self) -> None:
        self.server.stop(0)


# -- the platform and the demo --------------------------------------------------------------
def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelplane.cli.main", *args], env=env,
                          check=False,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory,
              make_postgres_database: Callable[[str], str]) -> Iterator[dict[str, Any]]:
    collector = SpanCollector()  # bound first: the port block below cannot include its port
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MODELPLANE_", "OTEL_", "MLFLOW_"))}
    for service in SERVICES:
        database = make_postgres_database(f"mp_e2e_{service}")
        env[f"MODELPLANE_{service.upper()}_DATABASE_URL"] = database
    env.update({
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "500",  # export every 0.5 s instead of 5 s
        # one MLflow worker: uvicorn's worker health check kills slow-starting workers on a
        # loaded 2-core machine
        "MODELPLANE_REGISTRY_MLFLOW_WORKERS": "1",
        "MODELPLANE_SERVING_ALIAS_POLL_SECONDS": "0.5",
    })
    started = time.monotonic()
    for _attempt in range(2):
        # a port of the block may be taken by another process between the check and the
        # bind: then once more, on another block
        data = tmp_path_factory.mktemp("lifecycle")
        common = ["--data-dir", str(data), "--base-port", str(free_port_block())]
        up = _cli(["up", "--detach", "--timeout", "400", *common], env, timeout=480)
        if up.returncode == 0 or "address already in use" not in up.stdout + up.stderr:
            break
        _cli(["down", *common], env, timeout=120)
    up_seconds = time.monotonic() - started
    try:
        assert up.returncode == 0, f"modelplane up failed:\n{up.stdout}\n{up.stderr}"
        started = time.monotonic()
        demo = _cli(["demo", "--fast", "--data-dir", str(data)], env, timeout=720)
        demo_seconds = time.monotonic() - started
        summary_file = data / "demo" / "summary.json"
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        print(f"up {up_seconds:.0f}s, demo {demo_seconds:.0f}s\n{demo.stdout[-6000:]}")
        from modelplane.cli.platform import Platform

        platform = Platform.load(data)
        assert platform is not None
        yield {"data": data, "env": env, "summary": summary, "demo": demo,
               "platform": platform, "key": (data / "admin.key").read_text().strip(),
               "collector": collector}
    finally:
        _cli(["down", *common], env, timeout=120)
        collector.stop()


@pytest.fixture(scope="module")
def summary(lifecycle: dict[str, Any]) -> dict[str, Any]:
    """What the demo reported (also when it stopped early: each stage's test then checks
    only what that stage left behind)."""
    return lifecycle["summary"]


def _reached(lifecycle: dict[str, Any], *keys: str) -> None:
    """Fail with the demo's own words when it stopped before writing ``keys``."""
    summary = lifecycle["summary"]
    missing = [k for k in keys if k not in summary]
    if missing:
        demo = lifecycle["demo"]
        pytest.fail(f"the demo stopped before {', '.join(missing)}: {summary.get('error')}\n"
                    f"{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}")


def test_demo_runs_to_the_end(lifecycle: dict[str, Any]) -> None:
    demo = lifecycle["demo"]
    assert demo.returncode == 0, (f"the demo stopped: {lifecycle['summary'].get('error')}\n"
                                  f"{demo.stdout[-4000:]}\n{demo.stderr[-4000:]}")
    assert "http://" in demo.stdout and "/openapi.json" in demo.stdout


def _stub(lifecycle: dict[str, Any], service: str) -> Any:
    """A blocking stub on a plain channel with the admin key."""
    import importlib

    mod = importlib.import_module(f"modelplane.{service}.v1.{service}_pb2_grpc")
    names = {"featurestore": "FeatureStoreServiceStub", "registry": "ModelRegistryServiceStub",
             "validator": "ValidatorServiceStub", "serving": "ServingServiceStub",
             "observability": "ObservabilityServiceStub"}
    ch = grpc.insecure_channel(lifecycle["platform"].grpc_address(service))
    cls = getattr(mod, names[service])
    stub = cls(ch)
    key = lifecycle["key"]

    class Authorized:
        def __getattr__(self, name: str) -> Callable[..., Any]:
            method = getattr(stub, name)
            return lambda request, **kw: method(
                request, metadata=[("authorization", f"Bearer {key}")], timeout=60, **kw)

    return Authorized()


# -- stage by stage -------------------------------------------------------------------------
def test_training_dataset_exists_with_its_rows(lifecycle: dict[str, Any],
                                               summary: dict[str, Any]) -> None:
    _reached(lifecycle, "datasets")
    from modelplane.featurestore.v1 import featurestore_pb2 as fs

    store = _stub(lifecycle, "featurestore")
    for name in ("fraud_train", "fraud_holdout"):
        ds = store.GetDataset(fs.GetDatasetRequest(id=summary["datasets"][name]["id"]))
        assert ds.name == name
        assert ds.row_count == summary["datasets"][name]["row_count"] > 100
        columns = {c.name for c in ds.columns}
        assert {"customer_id", "event_timestamp", "amount", "city", "is_fraud", "age",
                "txn_count_7d"} <= columns
        assert len(ds.content_hash) == 64


def test_model_versions_carry_lineage_to_the_dataset(lifecycle: dict[str, Any],
                                                     summary: dict[str, Any]) -> None:
    _reached(lifecycle, "datasets", "versions", "champion_version")
    from modelplane.registry.v1 import registry_pb2 as rg

    registry = _stub(lifecycle, "registry")
    train_id = summary["datasets"]["fraud_train"]["id"]
    # the champion and both challengers (the broken one's labels were flipped in memory
    # from the same Dataset: its description says so)
    versions = [int(v) for v in summary["versions"]]
    assert summary["champion_version"] in versions
    for version in versions:
        mv = registry.GetModelVersion(rg.GetModelVersionRequest(model_name=MODEL, version=version))
        assert mv.lineage.dataset_id == train_id
        assert mv.lineage.run_id == summary["versions"][str(version)]["run_id"]
        assert "customer_profile:age" in mv.lineage.feature_refs
        assert {f.name for f in mv.lineage.signature.inputs} >= {"amount", "city", "age"}
    listed = registry.ListModelVersions(rg.ListModelVersionsRequest(model_name=MODEL,
                                                                    dataset_id=train_id))
    assert sorted(v.version for v in listed.model_versions) == sorted(versions)


def test_validation_reports_are_attached_to_the_versions(lifecycle: dict[str, Any],
                                                         summary: dict[str, Any]) -> None:
    _reached(lifecycle, "validation")
    from modelplane.registry.v1 import registry_pb2 as rg
    from modelplane.validator.v1 import validator_pb2 as vd

    registry, validator = _stub(lifecycle, "registry"), _stub(lifecycle, "validator")
    for version in map(int, summary["validation"]):
        expected = summary["validation"][str(version)]
        report = validator.GetValidationReport(vd.GetValidationReportRequest(
            id=expected["report_id"]))
        assert report.version == str(version)
        # the demo runs the whole catalog; none of the checks broke
        checks = {c.check: c for c in report.checks}
        assert len(checks) == 12, sorted(checks)
        assert not [c.check for c in report.checks if c.status == vd.CHECK_STATUS_ERROR], \
            [(c.check, c.message) for c in report.checks if c.status == vd.CHECK_STATUS_ERROR]
        # stress measured a served deployment, backtest rebuilt its windows point-in-time
        assert any("through serving" in f for f in checks["stress"].findings)
        assert any("point-in-time by the featurestore" in f for f in checks["backtest"].findings)
        if version != summary["champion_version"]:  # drift vs the champion's validation data
            assert (f"version {summary['champion_version']}'s validation data"
                    in checks["feature_drift"].message), checks["feature_drift"].message
        mv = registry.GetModelVersion(rg.GetModelVersionRequest(model_name=MODEL, version=version))
        assert mv.validation.report_id == report.id
        assert rg.ValidationStatus.Name(mv.validation.status).endswith(expected["status"])
    champion_report = summary["validation"][str(summary["champion_version"])]
    assert champion_report["status"] == "PASS"


def test_champion_alias_was_set_through_the_gate(lifecycle: dict[str, Any],
                                                 summary: dict[str, Any]) -> None:
    _reached(lifecycle, "champion_promoted")
    assert summary["champion_promoted"]
    from modelplane.registry.v1 import registry_pb2 as rg

    registry = _stub(lifecycle, "registry")
    alias = registry.GetAlias(rg.GetAliasRequest(model_name=MODEL, alias="champion"))
    assert alias.protected
    if "final_champion_version" in summary:
        assert alias.version == summary["final_champion_version"]
        expected = (summary["challenger_version"] if summary["decision"] == "promoted"
                    else summary["champion_version"])
    else:  # the demo stopped before deciding on the challenger
        expected = summary["champion_version"]
    assert alias.version == expected
    changes = registry.ListAliasChanges(rg.ListAliasChangesRequest(model_name=MODEL,
                                                                   alias="champion"))
    first = changes.alias_changes[-1]
    assert (first.from_version, first.to_version) == (0, summary["champion_version"])
    assert not any(c.override for c in changes.alias_changes)
    assert all(c.validation.status == rg.VALIDATION_STATUS_PASS for c in changes.alias_changes)


def test_rollouts_decided_by_the_controller(lifecycle: dict[str, Any],
                                            summary: dict[str, Any]) -> None:
    """Issue #17 item 6: two rollouts in one run, decided by serving's controller: the
    challenger broken in one city rolled back by its city before the 50 % step, the
    better one promoted through the registry's gate; the demo sets no split or alias."""
    _reached(lifecycle, "rollouts", "traffic", "decision")
    from modelplane.observability.v1 import observability_pb2 as ob
    from modelplane.registry.v1 import registry_pb2 as rg
    from modelplane.serving.v1 import serving_pb2 as sv

    serving = _stub(lifecycle, "serving")
    broken, good = summary["broken_challenger_version"], summary["challenger_version"]
    by_name = {r["challenger_version"]: r for r in summary["rollouts"].values()}
    bad = serving.GetRollout(sv.GetRolloutRequest(name=by_name[broken]["name"]))
    assert bad.state == sv.ROLLOUT_STATE_ROLLED_BACK, bad.state_message
    # by the per-city check, in the broken city, before the 50 % step
    assert bad.state_message.startswith("rolled back: in the slice city = "), bad.state_message
    assert repr(summary["broken_city"]) in bad.state_message
    assert by_name[broken]["max_weight"] < 50 and bad.current_step < len(bad.steps) - 1
    assert summary["broken_decision"] == "rolled_back"
    promoted = serving.GetRollout(sv.GetRolloutRequest(name=by_name[good]["name"]))
    assert promoted.state == sv.ROLLOUT_STATE_PROMOTED, promoted.state_message
    assert summary["decision"] == "promoted"
    assert summary["final_champion_version"] == good
    # the controller made every decision: no event of either rollout is the demo's (admin)
    for r in (bad, promoted):
        events = serving.ListRolloutEvents(sv.ListRolloutEventsRequest(name=r.name,
                                                                       page_size=200)).events
        decisions = [e for e in events if e.type in (
            sv.ROLLOUT_EVENT_TYPE_STEP_STARTED, sv.ROLLOUT_EVENT_TYPE_ROLLED_BACK,
            sv.ROLLOUT_EVENT_TYPE_PROMOTED)]
        assert decisions and all(e.actor != "admin" for e in decisions), \
            [(e.type, e.actor) for e in decisions]
    # the champion alias moved to the good challenger under serving's identity, gated
    changes = _stub(lifecycle, "registry").ListAliasChanges(rg.ListAliasChangesRequest(
        model_name=MODEL, alias="champion")).alias_changes
    last = changes[0]
    assert (last.from_version, last.to_version) == (summary["champion_version"], good)
    assert last.principal != "admin" and not last.override
    # no challenger alias: the rollouts pinned versions
    with pytest.raises(grpc.RpcError) as err:
        _stub(lifecycle, "registry").GetAlias(rg.GetAliasRequest(model_name=MODEL,
                                                                 alias="challenger"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    by_version = summary["traffic"]["by_version"]
    assert 0 < by_version[str(broken)] < by_version[str(summary["champion_version"])]
    assert by_version[str(good)] > by_version[str(broken)]
    # observability saw the challengers' predictions as such (not only the demo's count)
    for version in (broken, good):
        perf = _stub(lifecycle, "observability").ComputePerformance(
            ob.ComputePerformanceRequest(filter=ob.EvaluationFilter(
                model=MODEL, environment=ob.ENVIRONMENT_PRODUCTION, versions=[str(version)]),
                metrics=[ob.METRIC_ACCURACY]))
        assert perf.overall.record_count == by_version[str(version)]
    d = serving.GetDeployment(sv.GetDeploymentRequest(name=MODEL))
    assert d.state == sv.DEPLOYMENT_STATE_READY
    assert list(d.features.entity_keys) == ["customer_id"]
    # after the promotion all traffic goes to the (new) champion
    assert [(r.target.alias, r.weight) for r in d.traffic_split.routes] == [("champion", 100.0)]


def test_predictions_are_logged_and_actuals_joined(lifecycle: dict[str, Any],
                                                   summary: dict[str, Any]) -> None:
    _reached(lifecycle, "traffic", "actuals")
    from modelplane.observability.v1 import observability_pb2 as ob

    obs = _stub(lifecycle, "observability")
    ids = summary["traffic"]["prediction_ids"]
    assert summary["actuals"] == {"accepted": len(ids), "unmatched": 0}
    for pid in ids[:: max(1, len(ids) // 20)]:
        record = obs.GetRecord(ob.GetRecordRequest(prediction_id=pid))
        assert record.model == MODEL
        assert record.environment == ob.ENVIRONMENT_PRODUCTION
        assert record.HasField("actual")
        # the online features serving joined are stored with the request's inputs
        assert {"amount", "city", "age", "txn_count_7d"} <= set(record.features)
    models = obs.ListObservedModels(ob.ListObservedModelsRequest())
    m = next(m for m in models.models if m.model == MODEL)
    assert m.record_count >= len(ids)
    assert m.actual_count >= len(ids)


def test_lineage_of_a_demo_prediction_reaches_the_validation_report_and_the_dataset_hash(
        lifecycle: dict[str, Any], summary: dict[str, Any]) -> None:
    """Issue #17: one call from a prediction id to its version, run, training dataset
    (with its content hash), validation report and trace id; the same through the
    gateway with a reader key and through `modelplane lineage`."""
    _reached(lifecycle, "traffic", "datasets", "validation", "rollouts")
    from modelplane.featurestore.v1 import featurestore_pb2 as fs
    from modelplane.observability.v1 import observability_pb2 as ob
    from modelplane.validator.v1 import validator_pb2 as vd

    challenger = str(summary["challenger_version"])
    obs = _stub(lifecycle, "observability")
    pid = next(p for p in summary["traffic"]["prediction_ids"]
               if obs.GetRecord(ob.GetRecordRequest(prediction_id=p)).version == challenger)
    lin = obs.GetPredictionLineage(ob.GetPredictionLineageRequest(prediction_id=pid))
    assert not lin.missing, lin.missing  # every peer is up
    assert (lin.model, lin.version, lin.deployment) == (MODEL, challenger, MODEL)
    assert lin.record.prediction_id == pid and lin.record.HasField("actual")
    assert lin.trace_id == lin.record.trace_id != ""
    assert lin.model_version.run_id == summary["versions"][challenger]["run_id"]
    train = summary["datasets"]["fraud_train"]["id"]
    assert lin.model_version.dataset_id == lin.dataset.id == train
    dataset = _stub(lifecycle, "featurestore").GetDataset(fs.GetDatasetRequest(id=train))
    assert lin.dataset.content_hash == dataset.content_hash and len(dataset.content_hash) == 64
    assert "customer_profile:age" in lin.model_version.feature_refs
    report_id = summary["validation"][challenger]["report_id"]
    assert lin.validation.report_id == report_id and lin.validation.report_fetched
    report = _stub(lifecycle, "validator").GetValidationReport(
        vd.GetValidationReportRequest(id=report_id))
    assert lin.validation.dataset_sha256 == report.dataset_sha256 != ""
    assert lin.validation.status == summary["validation"][challenger]["status"]
    # served under the demo's rollout of the challenger, on its challenger side
    rollout = next(r for r in summary["rollouts"].values()
                   if r["challenger_version"] == int(challenger))
    assert lin.HasField("rollout"), lin.rollout_note
    assert (lin.rollout.rollout, lin.rollout.deployment, lin.rollout.role) == (
        rollout["name"], MODEL, "challenger")
    assert lin.rollout.challenger_weight in (10.0, 30.0, 50.0)
    # through the gateway, with a key of role reader
    env, data = lifecycle["env"], lifecycle["data"]
    made = _cli(["keys", "create", "lineage-reader", "--role", "reader", "--data-dir",
                 str(data)], env, timeout=60)
    assert made.returncode == 0, made.stderr
    reader = made.stdout.strip().split()[-1]
    gateway = lifecycle["platform"].gateway_url
    headers = {"authorization": f"Bearer {reader}"}
    for _ in range(50):  # the services reload the keys file when it changes
        resp = httpx.get(f"{gateway}/v1/predictions/{pid}/lineage", headers=headers,
                         timeout=30)
        if resp.status_code != 401:
            break
        time.sleep(0.2)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["validation"]["report_id"] == report_id
    assert body["dataset"]["content_hash"] == dataset.content_hash
    unknown = httpx.get(f"{gateway}/v1/predictions/no-such-prediction/lineage",
                        headers=headers, timeout=30)
    assert unknown.status_code == 404
    compared = httpx.post(f"{gateway}/v1/evaluations:compareVersions", headers=headers,
                          timeout=60, json={
                              "filter": {"model": MODEL,
                                         "environment": "ENVIRONMENT_PRODUCTION"},
                              "champion_version": str(summary["champion_version"]),
                              "challenger_version": challenger,
                              "metrics": ["METRIC_ACCURACY"]})
    assert compared.status_code == 200, compared.text
    accuracy = compared.json()["metrics"][0]
    assert accuracy["method"] == "INTERVAL_METHOD_WILSON"
    assert accuracy["challenger"]["lower"] <= accuracy["challenger"]["value"] \
        <= accuracy["challenger"]["upper"]
    # and through the CLI, which asks the same route
    shown = _cli(["lineage", pid, "--data-dir", str(data)], {**env,
                                                             "MODELPLANE_API_KEY": reader},
                 timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert report_id in shown.stdout and dataset.content_hash in shown.stdout
    missing = _cli(["lineage", "no-such-prediction", "--data-dir", str(data)], env, timeout=60)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_drift_and_root_cause_name_the_shifted_city(lifecycle: dict[str, Any],
                                                    summary: dict[str, Any]) -> None:
    _reached(lifecycle, "analysis")
    from google.protobuf.timestamp_pb2 import Timestamp

    from modelplane.api.v1 import types_pb2
    from modelplane.observability.v1 import observability_pb2 as ob

    analysis = summary["analysis"]
    city = analysis["shifted_city"]
    assert analysis["shifted_city_named"]
    assert "amount" in analysis["drifted_columns"]

    def ts(iso: str) -> Timestamp:
        t = Timestamp()
        t.FromDatetime(datetime.fromisoformat(iso))
        return t

    traffic = summary["traffic"]

    def window(a: str, b: str) -> ob.EvaluationFilter:
        return ob.EvaluationFilter(model=MODEL, environment=ob.ENVIRONMENT_PRODUCTION,
                                   window=types_pb2.TimeWindow(start_time=ts(traffic[a]),
                                                               end_time=ts(traffic[b])))

    # recomputed here, not taken from the demo's word
    result = _stub(lifecycle, "observability").ComputeRootCause(ob.ComputeRootCauseRequest(
        current=window("shift_time", "t1"),
        reference=ob.ReferenceData(filter=window("t0", "shift_time")),
        objective=ob.RootCauseObjective(drift_column=ob.ColumnRef(
            source=ob.COLUMN_SOURCE_FEATURE, name="amount")),
        columns=[ob.ColumnRef(source=ob.COLUMN_SOURCE_FEATURE, name=n)
                 for n in ("city", "merchant_category", "segment")], max_depth=1))
    assert city in result.slices[0].slice.display_name
    assert result.slices[0].contribution_share > 0.5

    p = lifecycle["platform"]
    page = httpx.get(f"{p.dashboard_url}models/{MODEL}",
                     headers={"authorization": f"Bearer {lifecycle['key']}"}, timeout=60)
    assert page.status_code == 200
    # the worst-slices chart of the dashboard shows the shifted city
    assert f"city = &quot;{city}&quot;" in page.text


def test_one_request_is_one_trace_across_serving_and_featurestore(
        lifecycle: dict[str, Any], summary: dict[str, Any]) -> None:
    """A traced OIP request: serving and the featurestore lookup it makes share its trace
    id, and observability's record of the prediction carries that trace id."""
    _reached(lifecycle, "traffic")
    trace_id, prediction_id = _traced_inference(lifecycle, summary["traffic"]["customer_id"])
    collector: SpanCollector = lifecycle["collector"]
    services = _wait_for_services(collector, trace_id,
                                  {"modelplane-serving", "modelplane-featurestore"})
    assert {"modelplane-serving", "modelplane-featurestore"} <= set(services), services
    from modelplane.observability.v1 import observability_pb2 as ob

    obs = _stub(lifecycle, "observability")
    deadline = time.monotonic() + 30
    while True:
        try:
            record = obs.GetRecord(ob.GetRecordRequest(prediction_id=prediction_id))
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert record.trace_id == trace_id


def test_one_request_through_the_gateway_is_one_trace_to_observability(
        lifecycle: dict[str, Any], summary: dict[str, Any]) -> None:
    """An OIP REST request through the gateway: the gateway's span, serving's (its child),
    the featurestore lookup and observability's ingest of the prediction's record (a child
    of serving's span, by the record's span_id) are all in the caller's trace."""
    _reached(lifecycle, "traffic")
    p = lifecycle["platform"]
    traceparent_id = os.urandom(16).hex()
    caller_span = os.urandom(8).hex()
    body = _infer_json(summary["traffic"]["customer_id"])
    r = httpx.post(f"{p.gateway_url}/v2/models/{MODEL}/infer", json=body,
                   headers={"authorization": f"Bearer {lifecycle['key']}",
                            "traceparent": f"00-{traceparent_id}-{caller_span}-01"},
                   timeout=30)
    assert r.status_code == 200, r.text
    wanted = {"modelplane-gateway", "modelplane-serving", "modelplane-featurestore",
              "modelplane-observability"}
    collector: SpanCollector = lifecycle["collector"]
    services = _wait_for_services(collector, traceparent_id, wanted)
    assert wanted <= set(services), services
    # one tree: caller -> gateway -> serving -> (featurestore lookup, observability ingest)
    route = "POST /v2/models/{name}/infer"
    deadline = time.monotonic() + 10  # serving's request span may come in a later export
    while route not in collector.services_of(traceparent_id).get("modelplane-serving", []) \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    spans = collector.spans_of(traceparent_id)
    ids = {service: {sid for svc, _, sid, _ in spans if svc == service} for service in wanted}
    (gateway,) = [(sid, parent) for svc, name, sid, parent in spans
                  if svc == "modelplane-gateway" and name == route]
    assert gateway[1] == caller_span
    serving_roots = [name for svc, name, _, parent in spans
                     if svc == "modelplane-serving" and parent == gateway[0]]
    assert serving_roots == [route], spans
    for service in ("modelplane-featurestore", "modelplane-observability"):
        parents = {parent for svc, _, _, parent in spans if svc == service}
        assert parents & ids["modelplane-serving"], (service, spans)
        assert parents <= ids["modelplane-serving"] | ids[service], (service, spans)


FUZZ_CASES = 150  # the long run: bench/fuzz_gateway.py --cases 1000 --demo (root README)


def test_fuzzing_every_route_through_the_gateway_gets_no_server_error(
        lifecycle: dict[str, Any], summary: dict[str, Any]) -> None:
    """schemathesis cases (valid and invalid) for every operation of every service, the
    OIP routes included, through the gateway, on the platform the demo filled: no 5xx,
    and every process still alive and healthy afterwards. Runs last: it may leave junk."""
    fuzz = _bench_module("fuzz_gateway")
    results = fuzz.fuzz(lifecycle["platform"].gateway_url, lifecycle["key"], FUZZ_CASES,
                        model=MODEL, seed=int(time.time()))
    print(f"{results.cases} cases, statuses {dict(results.statuses)}")
    assert results.cases >= FUZZ_CASES
    assert not results.failures, json.dumps(results.failures[:5], indent=1)
    health = fuzz.platform_health(lifecycle["data"], lifecycle["key"])
    assert health["ok"], health


# -- helpers --------------------------------------------------------------------------------
def _bench_module(name: str) -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"modelplane_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_ROW = {"amount": 42.5, "merchant_category": "online", "hour": 23, "city": "Paris"}


def _infer_json(customer_id: int) -> dict[str, Any]:
    kinds = {"customer_id": "INT64", "amount": "FP64", "merchant_category": "BYTES",
             "hour": "INT64", "city": "BYTES"}
    row = {"customer_id": customer_id, **_ROW}
    return {"inputs": [{"name": k, "datatype": kinds[k], "shape": [1], "data": [v]}
                       for k, v in row.items()]}


def _traced_inference(lifecycle: dict[str, Any], customer_id: int) -> tuple[str, str]:
    """One OIP gRPC ModelInfer carrying a W3C traceparent; returns (trace id, prediction id)."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    Contents = service_pb2.InferTensorContents
    request = service_pb2.ModelInferRequest(model_name=MODEL, inputs=[
        service_pb2.ModelInferRequest.InferInputTensor(
            name="customer_id", datatype="INT64", shape=[1],
            contents=Contents(int64_contents=[customer_id])),
        service_pb2.ModelInferRequest.InferInputTensor(
            name="amount", datatype="FP64", shape=[1],
            contents=Contents(fp64_contents=[_ROW["amount"]])),
        service_pb2.ModelInferRequest.InferInputTensor(
            name="merchant_category", datatype="BYTES", shape=[1],
            contents=Contents(bytes_contents=[_ROW["merchant_category"].encode()])),
        service_pb2.ModelInferRequest.InferInputTensor(
            name="hour", datatype="INT64", shape=[1],
            contents=Contents(int64_contents=[_ROW["hour"]])),
        service_pb2.ModelInferRequest.InferInputTensor(
            name="city", datatype="BYTES", shape=[1],
            contents=Contents(bytes_contents=[_ROW["city"].encode()])),
    ])
    trace_id = os.urandom(16).hex()
    metadata = [("authorization", f"Bearer {lifecycle['key']}"),
                ("traceparent", f"00-{trace_id}-{os.urandom(8).hex()}-01")]
    with grpc.insecure_channel(lifecycle["platform"].grpc_address("serving")) as ch:
        response = service_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(
            request, metadata=metadata, timeout=30)
    prediction_id = response.parameters["prediction_id"].string_param
    assert prediction_id
    return trace_id, prediction_id


def _wait_for_services(collector: SpanCollector, trace_id: str, wanted: set[str],
                       timeout: float = 30) -> dict[str, list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        services = collector.services_of(trace_id)
        if wanted <= set(services) or time.monotonic() > deadline:
            return services
        time.sleep(0.5)


