"""``modelplane demo``: a model's whole life on a running platform, with progress bars.

    modelplane up --detach && modelplane demo [--data-dir DIR] [--fast]

Generate card transactions -> featurestore apply, ingest, materialize ->
point-in-time training Dataset -> train a scikit-learn model, logged with the
stock ``mlflow`` client naming the Dataset -> register with lineage ->
validate (report table) -> promote to ``champion`` (gated) -> serve with online
features -> train a ``challenger`` -> validate -> 10% canary -> live traffic ->
delayed actuals -> drift and root cause name the city whose data shifted
halfway -> promote the challenger or roll back, by the numbers. The platform is
left running; the URLs to look at are printed at the end, and a JSON summary
is written to ``<data-dir>/demo/summary.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from modelplane.cli.platform import Platform

T = TypeVar("T")

MODEL = "fraud-detector"
DEPLOYMENT = "fraud-detector"
CANARY_PERCENT = 10.0

STAGING = "fraud-detector-staging"

# All 12 checks. Limits sized for a few hundred rows a side (sampling noise alone gives
# JS ~0.1, a window of a day holds ~100 rows). No WARN limits: the champion alias is
# gated on a PASS report, and a WARN is not a PASS. The data has no protected
# attribute: `segment` stands in for one so the bias check has groups to compare.
POLICY = """
label_column: is_fraud
task: TASK_TYPE_CLASSIFICATION
positive_class: "1"
slice_columns: [city]
protected_attributes: [segment]
event_timestamp_column: event_timestamp
entity_columns: [customer_id]
checks:
  - check: metrics
    thresholds: {min_accuracy: 0.6, max_relative_degradation: 0.25}
    params: {min_slice_rows: "1000"}
  - check: prediction_drift
    thresholds: {max_psi: 0.5, max_js: 0.4}
  - check: feature_drift
    thresholds: {max_psi: 0.3, max_js: 0.25}
  - feature_importance
  - check: sensitivity
    thresholds: {max_flip_rate: 0.3}
  - check: stress
    thresholds: {max_p99_ms: 5000, max_error_rate: 0.05, max_fallback_rate: 0.05}
    params: {deployment: "%(deployment)s", concurrency: "4", load_duration_s: "%(seconds)s",
             request_columns: "customer_id,amount,merchant_category,hour,city"}
  - check: bias
    thresholds: {max_demographic_parity_difference: 0.5, max_equal_opportunity_difference: 1}
  - check: data_quality
    thresholds: {max_mislabeled_rate: 0.5, max_conflicting_label_rate: 0.2,
                 max_out_of_range_rate: 0.2}
  - check: leakage
    thresholds: {max_single_feature_score: 0.999, max_train_test_overlap: 1}
  - check: fitting
    thresholds: {max_train_test_gap: 0.3, min_gain_over_linear: -0.2}
  - check: backtest
    thresholds: {max_window_degradation: 0.6}
    params: {windows: "3", min_window_rows: "20", feature_service: fraud_model}
  - check: feature_parity
    thresholds: {max_mismatch_rate: 0.2}
"""


@dataclass
class DemoSize:
    customers: int
    days: int
    requests: int
    concurrency: int


SIZES = {"fast": DemoSize(customers=120, days=20, requests=1600, concurrency=8),
         "full": DemoSize(customers=300, days=30, requests=1600, concurrency=8)}


class DemoFailed(Exception):
    """A stage could not finish; the message says which and why."""


@dataclass
class Demo:
    platform: Platform
    api_key: str
    size: DemoSize
    console: Any
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    # -- plumbing ------------------------------------------------------------------
    def channel(self, service: str) -> grpc.aio.Channel:
        from modelplane.kit.clients import channel

        if service not in self.channels:
            self.channels[service] = channel(self.platform.grpc_address(service),
                                             api_key=self.api_key)
        return self.channels[service]

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()

    def stub(self, service: str) -> Any:
        import importlib

        grpc_mod = importlib.import_module(f"modelplane.{service}.v1.{service}_pb2_grpc")
        names = {"featurestore": "FeatureStoreServiceStub", "registry": "ModelRegistryServiceStub",
                 "validator": "ValidatorServiceStub", "serving": "ServingServiceStub",
                 "observability": "ObservabilityServiceStub"}
        return getattr(grpc_mod, names[service])(self.channel(service))

    def progress(self) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                        transient=False)

    def stage(self, n: int, title: str) -> None:
        self.console.rule(f"[bold]{n}. {title}")


async def call(what: str, awaitable: Awaitable[T]) -> T:
    """Await an RPC; a failure becomes DemoFailed with the service's own message."""
    from modelplane.kit.errors import ModelplaneError
    from modelplane.kit.status import raise_from_rpc_error

    try:
        return await awaitable
    except grpc.aio.AioRpcError as err:
        try:
            raise_from_rpc_error(err)
        except ModelplaneError as exc:
            raise DemoFailed(f"{what}: {exc.code} {exc.reason}: {exc.message}") from None
        raise DemoFailed(f"{what}: {err.code().name}: {err.details()}") from None


def _ts(dt: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    t = Timestamp()
    t.FromDatetime(dt)
    return t


def _window(start: datetime | None, end: datetime | None) -> Any:
    from modelplane.api.v1 import types_pb2

    w = types_pb2.TimeWindow()
    if start is not None:
        w.start_time.CopyFrom(_ts(start))
    if end is not None:
        w.end_time.CopyFrom(_ts(end))
    return w


def arrow_ipc(df: Any) -> bytes:
    import pyarrow as pa
    from pyarrow import ipc

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    i = table.column_names.index("event_timestamp")
    table = table.set_column(i, "event_timestamp",
                             table.column(i).cast(pa.timestamp("us", tz="UTC"), safe=False))
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


# -- 1-3: data, featurestore, datasets ------------------------------------------------
def feature_definitions() -> Any:
    from google.protobuf.duration_pb2 import Duration

    from modelplane.featurestore.v1 import featurestore_pb2 as fs

    def feats(**kinds: fs.ValueType) -> list[Any]:
        return [fs.Feature(name=n, value_type=k) for n, k in kinds.items()]

    # the value types' initials keep the feature tables below one line each
    S, I, D = fs.VALUE_TYPE_STRING, fs.VALUE_TYPE_INT64, fs.VALUE_TYPE_DOUBLE  # noqa: E741

    def ttl(days: int) -> Any:
        d = Duration()
        d.FromTimedelta(timedelta(days=days))
        return d

    customer = fs.Entity(name="customer", join_key="customer_id", value_type=I,
                         description="a card holder")
    views = [
        fs.FeatureView(name="transactions", entities=["customer"], online=False, ttl=ttl(0),
                       features=feats(amount=D, merchant_category=S, hour=I, city=S, is_fraud=I),
                       description="card transactions; is_fraud is known 3 days later"),
        fs.FeatureView(name="customer_profile", entities=["customer"], online=True, ttl=ttl(3),
                       features=feats(age=I, credit_limit=D, segment=S),
                       description="daily customer snapshot"),
        fs.FeatureView(name="customer_activity", entities=["customer"], online=True, ttl=ttl(60),
                       features=feats(txn_count_7d=I, avg_amount_7d=D),
                       description="7-day activity after each transaction"),
    ]
    service = fs.FeatureService(name="fraud_model",
                                description="online features of the fraud model",
                                projections=[
                                    fs.FeatureViewProjection(feature_view="customer_profile",
                                                             features=["age", "credit_limit",
                                                                       "segment"]),
                                    fs.FeatureViewProjection(feature_view="customer_activity",
                                                             features=["txn_count_7d",
                                                                       "avg_amount_7d"])])
    return customer, views, service


async def read_dataset(demo: Demo, dataset_id: str) -> Any:
    import pyarrow as pa

    from modelplane.featurestore.v1 import featurestore_pb2 as fs
    from modelplane.kit.arrow_ipc import ArrowBudget

    tables = []
    budget = ArrowBudget()
    stream = demo.stub("featurestore").ReadDataset(fs.ReadDatasetRequest(id=dataset_id))
    try:
        async for chunk in stream:
            if chunk.arrow_ipc:
                tables.append(budget.read(chunk.arrow_ipc, "ReadDatasetResponse.arrow_ipc"))
    except grpc.aio.AioRpcError as err:
        await call(f"reading dataset {dataset_id}", _raise(err))
    return pa.concat_tables(tables).to_pandas()


async def _raise(err: Exception) -> None:
    raise err


async def stage_data(demo: Demo) -> Any:
    from modelplane.api.v1 import types_pb2
    from modelplane.cli import demo_data
    from modelplane.featurestore.v1 import featurestore_pb2 as fs

    demo.stage(1, "Generate card transactions (5 cities, fraud label known 3 days later)")
    size = demo.size
    # customers of this run get their own ids: a second run on the same platform does not
    # mix its rows with the first run's
    id_offset = (int(time.time()) // 10 % 100_000) * 1_000
    history = await asyncio.to_thread(demo_data.history, size.customers, size.days,
                                      id_offset=id_offset)
    tx = history.transactions
    demo.console.print(f"{len(tx)} transactions of {size.customers} customers over {size.days} "
                       f"days, fraud rate {tx['is_fraud'].mean():.1%}, "
                       f"{int(tx['is_fraud'].isna().sum())} not labeled yet")

    demo.stage(2, "Featurestore: apply definitions, ingest, materialize")
    store = demo.stub("featurestore")
    customer, views, service = feature_definitions()
    applied = await call("ApplyRepo", store.ApplyRepo(fs.ApplyRepoRequest(
        entities=[customer], feature_views=views, feature_services=[service])))
    demo.console.print(f"applied {len(applied.entities)} entity, {len(applied.feature_views)} "
                       f"feature views, {len(applied.feature_services)} feature service")
    tables = {"transactions": tx, "customer_profile": history.customer_profile,
              "customer_activity": history.customer_activity}
    with demo.progress() as progress:
        task = progress.add_task("ingest offline rows", total=sum(len(t) for t in tables.values()))
        for name, df in tables.items():
            written = await call(f"WriteOfflineRows {name}", store.WriteOfflineRows(
                fs.WriteOfflineRowsRequest(feature_view=name,
                                           rows=types_pb2.TableData(arrow_ipc=arrow_ipc(df)))))
            progress.advance(task, written.row_count)
        mat = progress.add_task("materialize online store", total=2)
        # the whole history, not "since the last run": a second demo run writes rows older
        # than what the first one materialized
        request = fs.MaterializeRequest(start_time=_ts(history.start - timedelta(days=1)),
                                        end_time=_ts(history.end + timedelta(seconds=1)))
        rows_written = 0
        try:
            async for p in store.Materialize(request):
                progress.update(mat, total=max(p.views_total, 1), completed=p.views_done)
                rows_written += p.rows_written
        except grpc.aio.AioRpcError as err:
            await call("Materialize", _raise(err))
    demo.summary["featurestore"] = {"rows": {k: len(v) for k, v in tables.items()},
                                    "materialized_rows": rows_written}

    demo.stage(3, "Point-in-time training and holdout Datasets")
    split = history.labeled_until - timedelta(days=max(3, size.days // 5))
    datasets = {}
    warm = history.start + timedelta(days=7)  # the 7-day activity features are complete
    for name, start, end in (("fraud_train", warm, split),
                             ("fraud_holdout", split, history.labeled_until)):
        # entity rows: this run's labeled transactions (with their label) in the window
        rows = tx[(tx["event_timestamp"] >= start) & (tx["event_timestamp"] < end)
                  & tx[demo_data.LABEL].notna()].copy()
        rows[demo_data.LABEL] = rows[demo_data.LABEL].astype("int64")
        ds = await call(f"CreateDataset {name}", store.CreateDataset(fs.CreateDatasetRequest(
            dataset=fs.Dataset(name=name, feature_refs=list(demo_data.ONLINE_FEATURE_REFS),
                               description="labeled transactions joined point-in-time with "
                                           "the customer's profile and activity"),
            entity_rows=types_pb2.TableData(arrow_ipc=arrow_ipc(rows)),
            timestamp_column="event_timestamp")))
        datasets[name] = ds
        demo.console.print(f"Dataset [bold]{ds.id}[/] ({name} v{ds.version}): {ds.row_count} rows, "
                           f"{len(ds.columns)} columns, sha256 {ds.content_hash[:12]}…")
    frames = {name: await read_dataset(demo, ds.id) for name, ds in datasets.items()}
    for df in frames.values():
        df.dropna(subset=[demo_data.LABEL], inplace=True)
    demo.summary["datasets"] = {name: {"id": ds.id, "row_count": ds.row_count}
                                for name, ds in datasets.items()}
    return history, datasets, frames


# -- 4-6: train, register, validate, promote ---------------------------------------------
async def train_register(demo: Demo, kind: str, datasets: dict[str, Any],
                         frames: dict[str, Any], alias_note: str) -> int:
    from google.protobuf import field_mask_pb2

    from modelplane.cli import demo_data
    from modelplane.cli.demo_training import train_and_log
    from modelplane.registry.v1 import registry_pb2 as rg

    refs = list(demo_data.ONLINE_FEATURE_REFS)
    with demo.progress() as progress:
        task = progress.add_task(f"train {kind} and log it to MLflow", total=None)
        training = asyncio.to_thread(
            train_and_log, tracking_uri=demo.platform.mlflow_uri, api_key=demo.api_key,
            kind=kind, train=frames["fraud_train"], holdout=frames["fraud_holdout"],
            dataset_id=datasets["fraud_train"].id,
            holdout_dataset_id=datasets["fraud_holdout"].id, feature_refs=refs,
            registered_model_name=MODEL)
        try:
            trained = await training
        except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; say which
            raise DemoFailed(f"training or logging {kind} with MLflow failed: "
                             f"{type(exc).__name__}: {exc}") from None
        progress.update(task, total=1, completed=1)
    demo.console.print(f"MLflow run {trained.run_id}: train accuracy {trained.train_accuracy:.3f}, "
                       f"holdout accuracy {trained.holdout_accuracy:.3f}")
    # Registered by the stock client (log_model's registered_model_name); the lineage the
    # client cannot express (the featurestore Dataset, the online features) goes in by gRPC.
    mv = await call("UpdateModelVersion", demo.stub("registry").UpdateModelVersion(
        rg.UpdateModelVersionRequest(
            model_version=rg.ModelVersion(
                model_name=MODEL, version=trained.version, description=f"{kind} ({alias_note})",
                lineage=rg.Lineage(dataset_id=datasets["fraud_train"].id, feature_refs=refs)),
            update_mask=field_mask_pb2.FieldMask(
                paths=["description", "lineage.dataset_id", "lineage.feature_refs"]))))
    demo.console.print(f"registered [bold]{MODEL} v{mv.version}[/] with lineage: dataset "
                       f"{mv.lineage.dataset_id}, run {mv.lineage.run_id}, "
                       f"{len(mv.lineage.signature.inputs)} signature inputs")
    demo.summary.setdefault("versions", {})[str(mv.version)] = {
        "kind": kind, "run_id": trained.run_id, "dataset_id": mv.lineage.dataset_id,
        "holdout_accuracy": trained.holdout_accuracy}
    return int(mv.version)


async def validate(demo: Demo, version: int, holdout_id: str, skip_baseline: bool) -> Any:
    from rich.table import Table

    from modelplane.validator.v1 import validator_pb2 as vd

    validator = demo.stub("validator")
    # the stress check loads the version as it will be served: a staging deployment of it
    # (online features joined, predictions not logged), removed after the run
    await deploy_staging(demo, version)
    seconds = "2" if demo.size is SIZES["fast"] else "5"
    try:
        run = await call("CreateValidationRun", validator.CreateValidationRun(
            vd.CreateValidationRunRequest(validation_run=vd.ValidationRun(
                model=MODEL, version=str(version), dataset=vd.DatasetRef(dataset=holdout_id),
                skip_baseline=skip_baseline,
                policy_text=POLICY % {"deployment": STAGING, "seconds": seconds}))))
        final = await _watch_validation(demo, validator, run, version)
    finally:
        await remove_staging(demo)
    if final.state != vd.RUN_STATE_SUCCEEDED:
        raise DemoFailed(f"validation of v{version} ended {vd.RunState.Name(final.state)}: "
                         f"{final.error.message}")
    report = await call("GetValidationReport", validator.GetValidationReport(
        vd.GetValidationReportRequest(id=final.report_id)))
    table = Table(title=f"Validation report {report.id} - {MODEL} v{version} on {holdout_id}"
                        + (f" vs v{report.baseline_version}" if report.baseline_version else ""))
    for col in ("check", "status", "measured", "limit", "message"):
        table.add_column(col)
    colors = {"PASS": "green", "WARN": "yellow", "FAIL": "red", "ERROR": "red",
              "SKIPPED": "dim"}
    for check in report.checks:
        status = vd.CheckStatus.Name(check.status).removeprefix("CHECK_STATUS_")
        worst = sorted(check.thresholds, key=lambda t: -t.status)[:1]
        measured = (f"{worst[0].name}={worst[0].measured:.3f}"
                    + (f" ({worst[0].subject})" if worst[0].subject else "")) if worst else ""
        limit = f"{worst[0].limit:g}" if worst else ""
        table.add_row(check.check, f"[{colors.get(status, 'white')}]{status}[/]", measured,
                      limit, check.message[:80])
    demo.console.print(table)
    status = vd.CheckStatus.Name(report.status).removeprefix("CHECK_STATUS_")
    demo.console.print(f"report status [bold]{status}[/]: {report.summary}; attached to the "
                       f"registry: {final.registry_attached}; observability baseline set: "
                       f"{final.observability_baseline_set}")
    for note in final.notes:
        demo.console.print(f"  note: {note}")
    skipped = [c for c in report.checks if c.status == vd.CHECK_STATUS_SKIPPED]
    demo.console.print(f"{len(report.checks) - len(skipped)} of {len(report.checks)} checks ran"
                       + ("; skipped: " + "; ".join(f"{c.check} ({c.message})" for c in skipped)
                          if skipped else ""))
    demo.summary.setdefault("validation", {})[str(version)] = {
        "report_id": report.id, "status": status, "summary": report.summary,
        "registry_attached": final.registry_attached}
    return report


async def _watch_validation(demo: Demo, validator: Any, run: Any, version: int) -> Any:
    from modelplane.validator.v1 import validator_pb2 as vd

    final = run
    with demo.progress() as progress:
        task = progress.add_task(f"validate v{version}", total=100)
        try:
            async for update in validator.WatchValidationRun(
                    vd.WatchValidationRunRequest(id=run.id), timeout=600):
                final = update
                stage = update.progress.stage or vd.RunState.Name(update.state)
                progress.update(task, completed=int(update.progress.fraction * 100),
                                description=f"validate v{version}: {stage}")
        except grpc.aio.AioRpcError as err:
            await call("WatchValidationRun", _raise(err))
        progress.update(task, completed=100)
    return final


async def deploy_staging(demo: Demo, version: int) -> None:
    from modelplane.cli import demo_data
    from modelplane.serving.v1 import serving_pb2 as sv

    await remove_staging(demo)
    await call("CreateDeployment", demo.stub("serving").CreateDeployment(
        sv.CreateDeploymentRequest(deployment=sv.Deployment(
            name=STAGING, model=MODEL, description=f"v{version} under the validator's stress check",
            traffic_split=sv.TrafficSplit(routes=[sv.Route(
                target=sv.ModelTarget(version=str(version)), weight=100, label="staging")]),
            features=sv.FeatureBinding(feature_refs=list(demo_data.ONLINE_FEATURE_REFS),
                                       entity_keys=["customer_id"]),
            prediction_logging=sv.PREDICTION_LOGGING_OFF),
        # the version is not validated yet (this deployment is part of its validation):
        # serving's gate needs an admin's audited reason to route to it
        validation_override_reason=f"staging: the validator's stress check of v{version} "
                                   "(no live traffic, predictions not logged)")))
    with demo.progress() as progress:
        task = progress.add_task(f"load v{version} into a staging deployment", total=None)
        await wait_ready(demo, progress, task, name=STAGING)


async def remove_staging(demo: Demo) -> None:
    from modelplane.serving.v1 import serving_pb2 as sv

    try:
        await demo.stub("serving").DeleteDeployment(sv.DeleteDeploymentRequest(name=STAGING))
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            await call("DeleteDeployment", _raise(err))


async def set_alias(demo: Demo, alias: str, version: int) -> bool:
    """Point ``alias`` at ``version``; a refused gate is shown, not hidden. True when moved."""
    from modelplane.kit.errors import FailedPrecondition, ModelplaneError
    from modelplane.kit.status import raise_from_rpc_error
    from modelplane.registry.v1 import registry_pb2 as rg

    try:
        a = await demo.stub("registry").SetAlias(rg.SetAliasRequest(
            model_name=MODEL, alias=alias, version=version))
    except grpc.aio.AioRpcError as err:
        try:
            raise_from_rpc_error(err)
        except FailedPrecondition as exc:
            demo.console.print(f"[red]the registry refused {alias} -> v{version}[/]: "
                               f"{exc.reason}: {exc.message}")
            return False
        except ModelplaneError as exc:
            raise DemoFailed(f"SetAlias {alias}: {exc.message}") from None
        raise
    demo.console.print(f"alias [bold]{alias}[/] -> v{a.version}"
                       + (" (protected: gated by the PASS validation)" if a.protected else ""))
    return True


# -- 7: serving ---------------------------------------------------------------------------
def _route(alias: str, weight: float) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    return sv.Route(target=sv.ModelTarget(alias=alias), weight=weight, label=alias)


async def wait_ready(demo: Demo, progress: Any, task: Any, timeout: float = 300,
                     name: str = DEPLOYMENT) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    deadline = time.monotonic() + timeout
    while True:
        d = await call("GetDeployment", demo.stub("serving").GetDeployment(
            sv.GetDeploymentRequest(name=name)))
        if d.state == sv.DEPLOYMENT_STATE_READY:
            progress.update(task, completed=1, total=1)
            return d
        if d.state == sv.DEPLOYMENT_STATE_FAILED:
            raise DemoFailed(f"deployment {name} FAILED: {d.state_message}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"deployment {name} not READY after {timeout:.0f}s "
                             f"({sv.DeploymentState.Name(d.state)}: {d.state_message})")
        await asyncio.sleep(0.5)


async def deploy(demo: Demo) -> Any:
    from modelplane.cli import demo_data
    from modelplane.serving.v1 import serving_pb2 as sv

    serving = demo.stub("serving")
    try:
        await serving.DeleteDeployment(sv.DeleteDeploymentRequest(name=DEPLOYMENT))
        demo.console.print(f"(replaced the deployment {DEPLOYMENT} of an earlier run)")
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            await call("DeleteDeployment", _raise(err))
    deployment = sv.Deployment(
        name=DEPLOYMENT, model=MODEL, description="fraud scoring with online customer features",
        traffic_split=sv.TrafficSplit(routes=[_route("champion", 100)]),
        features=sv.FeatureBinding(feature_refs=list(demo_data.ONLINE_FEATURE_REFS),
                                   entity_keys=["customer_id"]))
    await call("CreateDeployment", serving.CreateDeployment(
        sv.CreateDeploymentRequest(deployment=deployment)))
    with demo.progress() as progress:
        task = progress.add_task(f"load {MODEL}@champion into BentoML", total=None)
        d = await wait_ready(demo, progress, task)
    loaded = ", ".join(f"{m.model} v{m.version} ({m.bento_model_tag})" for m in d.loaded_models)
    demo.console.print(f"deployment [bold]{DEPLOYMENT}[/] READY: {loaded}; online features "
                       f"{', '.join(d.features.feature_refs)} joined by customer_id")
    return d


# -- 8: traffic ---------------------------------------------------------------------------
@dataclass
class Prediction:
    index: int
    prediction_id: str
    version: str
    route: str
    prediction: int
    label: int
    city: str


def _infer_body(row: dict[str, Any]) -> dict[str, Any]:
    def tensor(name: str, datatype: str, value: Any) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": [1], "data": [value]}

    return {"inputs": [
        tensor("customer_id", "INT64", int(row["customer_id"])),
        tensor("amount", "FP64", float(row["amount"])),
        tensor("merchant_category", "BYTES", str(row["merchant_category"])),
        tensor("hour", "INT64", int(row["hour"])),
        tensor("city", "BYTES", str(row["city"])),
    ]}


async def send_traffic(demo: Demo, rows: Any, labels: Any, indices: range, progress: Any,
                       task: Any) -> list[Prediction]:
    import httpx

    # as an application team would: through the gateway (OIP REST, forwarded to serving)
    url = f"{demo.platform.gateway_url}/v2/models/{DEPLOYMENT}/infer"
    headers = {"authorization": f"Bearer {demo.api_key}"}
    out: list[Prediction] = []
    sem = asyncio.Semaphore(demo.size.concurrency)
    failures: list[str] = []

    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
        async def one(i: int) -> None:
            row = rows.iloc[i]
            async with sem:
                r = await client.post(url, json=_infer_body(row.to_dict()))
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
            else:
                body = r.json()
                params = body.get("parameters", {})
                pred = body["outputs"][0]["data"][0]
                out.append(Prediction(i, params["prediction_id"], str(params["model_version"]),
                                      params.get("route", ""), int(pred), int(labels[i]),
                                      str(row["city"])))
            progress.advance(task)

        await asyncio.gather(*(one(i) for i in indices))
    if failures:
        raise DemoFailed(f"{len(failures)} of {len(indices)} inference requests failed, "
                         f"e.g. {failures[0]}")
    return out


# -- 9: observability ---------------------------------------------------------------------
async def send_actuals(demo: Demo, predictions: list[Prediction]) -> Any:
    from modelplane.api.v1 import types_pb2
    from modelplane.observability.v1 import observability_pb2 as ob

    async def batches() -> AsyncIterator[Any]:
        for i in range(0, len(predictions), 250):
            yield ob.LogActualsRequest(actuals=[
                ob.Actual(prediction_id=p.prediction_id, value=types_pb2.Value(int64_value=p.label))
                for p in predictions[i:i + 250]])

    return await call("LogActuals", demo.stub("observability").LogActuals(batches()))


async def observed_records(demo: Demo) -> int:
    from modelplane.observability.v1 import observability_pb2 as ob

    models = await call("ListObservedModels", demo.stub("observability").ListObservedModels(
        ob.ListObservedModelsRequest(page_size=1000)))
    m = next((m for m in models.models if m.model == MODEL), None)
    return int(m.record_count) if m else 0


async def wait_records(demo: Demo, before: int, expected: int, progress: Any, task: Any,
                       timeout: float = 120) -> int:
    """Wait until observability holds this run's predictions (serving logs them in batches);
    ``before`` is what it held from earlier runs."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await observed_records(demo) - before
        progress.update(task, completed=min(max(seen, 0), expected))
        if seen >= expected:
            return seen
        if time.monotonic() > deadline:
            raise DemoFailed(f"observability has {seen} of {expected} predictions after "
                             f"{timeout:.0f}s")
        await asyncio.sleep(0.5)


def _filter(versions: list[str] | None = None, start: datetime | None = None,
            end: datetime | None = None) -> Any:
    from modelplane.observability.v1 import observability_pb2 as ob

    f = ob.EvaluationFilter(model=MODEL, environment=ob.ENVIRONMENT_PRODUCTION,
                            versions=versions or [])
    if start or end:
        f.window.CopyFrom(_window(start, end))
    return f


def _metric(group: Any, metric: int) -> float | None:
    for m in group.metrics:
        if m.metric == metric and m.has_value:
            return float(m.value)
    return None


async def analyse(demo: Demo, t0: datetime, shift_time: datetime, t1: datetime,
                  versions: dict[str, str]) -> dict[str, Any]:
    from rich.table import Table

    from modelplane.cli.demo_data import SHIFTED_CITY
    from modelplane.observability.v1 import observability_pb2 as ob

    obs = demo.stub("observability")
    feature = ob.COLUMN_SOURCE_FEATURE
    before, after = _filter(start=t0, end=shift_time), _filter(start=shift_time, end=t1)

    perf = await call("ComputePerformance", obs.ComputePerformance(ob.ComputePerformanceRequest(
        filter=_filter(start=t0, end=t1), metrics=[ob.METRIC_ACCURACY, ob.METRIC_F1],
        positive_class="1", slice_by=[ob.ColumnRef(source=feature, name="city")])))
    table = Table(title="Accuracy by city, with the delayed actuals")
    for col in ("slice", "predictions", "with actuals", "accuracy", "F1"):
        table.add_column(col)
    for g in [perf.overall, *perf.slices]:
        acc, f1 = _metric(g, ob.METRIC_ACCURACY), _metric(g, ob.METRIC_F1)
        table.add_row(g.slice.display_name or "all", str(g.record_count), str(g.labeled_count),
                      f"{acc:.3f}" if acc is not None else "-",
                      f"{f1:.3f}" if f1 is not None else "-")
    demo.console.print(table)

    drift = await call("ComputeDrift", obs.ComputeDrift(ob.ComputeDriftRequest(
        current=after, reference=ob.ReferenceData(filter=before))))
    table = Table(title="Drift: second half of the traffic vs the first half")
    for col in ("column", "statistic", "value", "p-value", "drifted"):
        table.add_column(col)
    drifted = []
    for c in sorted(drift.columns, key=lambda c: not c.drifted):
        stat = next((s for s in c.statistics if s.method == c.decision_method), None)
        source = ob.ColumnSource.Name(c.column.source).removeprefix("COLUMN_SOURCE_")
        name = c.column.name or source.lower()
        if c.drifted:
            drifted.append(name)
        table.add_row(name, ob.DriftMethod.Name(c.decision_method).removeprefix("DRIFT_METHOD_"),
                      f"{stat.value:.3f}" if stat else "-", f"{stat.p_value:.2g}" if stat else "-",
                      "[red]yes[/]" if c.drifted else "no")
    demo.console.print(table)

    slice_columns = [ob.ColumnRef(source=feature, name=n)
                     for n in ("city", "merchant_category", "segment", "hour")]
    drift_cause = await call("ComputeRootCause (drift)", obs.ComputeRootCause(
        ob.ComputeRootCauseRequest(
            current=after, reference=ob.ReferenceData(filter=before),
            objective=ob.RootCauseObjective(drift_column=ob.ColumnRef(source=feature,
                                                                      name="amount")),
            columns=slice_columns, max_depth=1, max_slices=5)))
    metric_cause = await call("ComputeRootCause (accuracy)", obs.ComputeRootCause(
        ob.ComputeRootCauseRequest(
            current=after, reference=ob.ReferenceData(filter=before),
            objective=ob.RootCauseObjective(metric=ob.METRIC_ACCURACY), positive_class="1",
            columns=slice_columns, max_depth=1, max_slices=5)))
    accuracy_title = (f"Root cause of the accuracy drop: {metric_cause.reference_value:.3f} "
                      f"-> {metric_cause.current_value:.3f}")
    for title, res in (("Root cause of the drift of amount", drift_cause),
                       (accuracy_title, metric_cause)):
        table = Table(title=title, caption="ranked by where the change is concentrated "
                      "(score), not by contribution")
        for col in ("slice", "contribution", "share", "lift", "before", "after"):
            table.add_column(col)
        for s in res.slices[:5]:
            table.add_row(s.slice.display_name, f"{s.contribution:.3f}",
                          f"{s.contribution_share:.0%}", f"{s.lift:.1f}x",
                          f"{s.reference_value:.3f}", f"{s.current_value:.3f}")
        demo.console.print(table)
    top_drift = drift_cause.slices[0].slice.display_name if drift_cause.slices else ""
    top_metric = metric_cause.slices[0].slice.display_name if metric_cause.slices else ""
    named = SHIFTED_CITY in top_drift and SHIFTED_CITY in top_metric
    demo.console.print(
        f"[bold]{'found' if named else 'did not find'}[/] the shifted city: drift points at "
        f"[bold]{top_drift or '-'}[/], the accuracy drop at [bold]{top_metric or '-'}[/]"
        f" (the demo shifted {SHIFTED_CITY})")

    by_version = {}
    for alias, version in versions.items():
        p = await call("ComputePerformance", obs.ComputePerformance(ob.ComputePerformanceRequest(
            filter=_filter(versions=[version], start=t0, end=t1),
            metrics=[ob.METRIC_ACCURACY, ob.METRIC_F1], positive_class="1")))
        by_version[alias] = {"version": version, "predictions": int(p.overall.record_count),
                             "labeled": int(p.overall.labeled_count),
                             "accuracy": _metric(p.overall, ob.METRIC_ACCURACY),
                             "f1": _metric(p.overall, ob.METRIC_F1)}
    return {"overall_accuracy": _metric(perf.overall, ob.METRIC_ACCURACY),
            "drifted_columns": drifted,
            "root_cause_drift": [s.slice.display_name for s in drift_cause.slices],
            "root_cause_accuracy": [s.slice.display_name for s in metric_cause.slices],
            "shifted_city": SHIFTED_CITY, "shifted_city_named": named,
            "by_version": by_version}


async def drift_monitor(demo: Demo, version: str) -> str:
    """A drift monitor on amount, evaluated now, so the alert is on the dashboard."""
    from google.protobuf.duration_pb2 import Duration

    from modelplane.observability.v1 import observability_pb2 as ob

    obs = demo.stub("observability")
    window = Duration()
    window.FromTimedelta(timedelta(minutes=2))
    monitor = await call("CreateMonitor", obs.CreateMonitor(ob.CreateMonitorRequest(
        monitor=ob.Monitor(
            display_name=f"amount drift (PSI) of v{version} vs its validation baseline",
            filter=_filter(versions=[version]), window=window, min_records=30,
            signal=ob.MonitorSignal(drift=ob.DriftSignal(
                column=ob.ColumnRef(source=ob.COLUMN_SOURCE_FEATURE, name="amount"),
                method=ob.DRIFT_METHOD_PSI)),
            comparison=ob.COMPARISON_GREATER, threshold=0.2))))
    result = await call("EvaluateMonitor", obs.EvaluateMonitor(
        ob.EvaluateMonitorRequest(id=monitor.id)))
    if result.HasField("alert"):
        demo.console.print(f"monitor alert: [red]{result.alert.message}[/]")
    else:
        demo.console.print(f"monitor {monitor.id}: amount PSI {result.value:.3f} "
                           f"(evaluated: {result.evaluated})")
    return str(monitor.id)


# -- the whole story ---------------------------------------------------------------------
async def run(demo: Demo) -> dict[str, Any]:
    from rich.progress import Progress  # noqa: F401 - fail early when rich is missing

    from modelplane.cli import demo_data
    from modelplane.serving.v1 import serving_pb2 as sv

    started = time.monotonic()
    history, datasets, frames = await stage_data(demo)
    holdout_id = datasets["fraud_holdout"].id

    demo.stage(4, "Train the first model (stock MLflow client) and register it with lineage")
    champion = await train_register(demo, "logistic_numeric", datasets, frames, "first model")
    demo.summary.update({"model": MODEL, "champion_version": champion})

    demo.stage(5, f"Validate v{champion} and promote it to champion (gated)")
    report = await validate(demo, champion, holdout_id, skip_baseline=True)
    from modelplane.validator.v1 import validator_pb2 as vd

    promoted = await set_alias(demo, "champion", champion)
    demo.summary["champion_promoted"] = promoted
    if not promoted:
        raise DemoFailed(f"v{champion} did not pass validation ({report.summary}); "
                         "the demo stops here rather than override the gate")

    demo.stage(6, "Serve the champion with online features")
    await deploy(demo)

    demo.stage(7, "Train a challenger, validate it against the champion")
    challenger = await train_register(demo, "logistic_all_features", datasets, frames,
                                      "challenger")
    demo.summary["challenger_version"] = challenger
    challenger_report = await validate(demo, challenger, holdout_id, skip_baseline=False)
    await set_alias(demo, "challenger", challenger)

    demo.stage(8, f"Canary: {CANARY_PERCENT:g}% of the traffic to the challenger")
    # Serving routes traffic only to PASS versions unless an admin overrides with a
    # reason (audited): a challenger that only warned gets its canary that way.
    override = "" if challenger_report.status == vd.CHECK_STATUS_PASS else (
        f"demo: {CANARY_PERCENT:g}% canary of challenger v{challenger} "
        f"({vd.CheckStatus.Name(challenger_report.status)}) to measure it on live traffic")
    if override:
        demo.console.print(f"[yellow]validation override[/] (audited): {override}")
    split = sv.SetTrafficSplitRequest(
        name=DEPLOYMENT, traffic_split=sv.TrafficSplit(routes=[
            _route("champion", 100 - CANARY_PERCENT), _route("challenger", CANARY_PERCENT)]),
        validation_override_reason=override)
    d = await call("SetTrafficSplit", demo.stub("serving").SetTrafficSplit(split))
    with demo.progress() as progress:
        task = progress.add_task("load the challenger", total=None)
        d = await wait_ready(demo, progress, task)
    demo.console.print("traffic split: " + ", ".join(
        f"{r.label} {r.weight:g}" for r in d.traffic_split.routes) + "; loaded: " + ", ".join(
        f"v{m.version}" for m in d.loaded_models))
    demo.summary["canary"] = {"routes": {r.label: r.weight for r in d.traffic_split.routes}}

    demo.stage(9, f"Live traffic with online features; halfway, {demo_data.SHIFTED_CITY} shifts")
    traffic = await asyncio.to_thread(demo_data.live_traffic, history, demo.size.requests)
    n = len(traffic.rows)
    records_before = await observed_records(demo)
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    with demo.progress() as progress:
        task = progress.add_task("requests, first half", total=traffic.shift_at)
        first = await send_traffic(demo, traffic.rows, traffic.labels, range(traffic.shift_at),
                                   progress, task)
        await asyncio.sleep(1.0)
        shift_time = datetime.now(UTC)
        await asyncio.sleep(1.0)
        task = progress.add_task(f"requests, {demo_data.SHIFTED_CITY} shifted",
                                 total=n - traffic.shift_at)
        second = await send_traffic(demo, traffic.rows, traffic.labels,
                                    range(traffic.shift_at, n), progress, task)
    predictions = sorted(first + second, key=lambda p: p.index)
    demo.summary["traffic"] = {
        "requests": len(predictions), "routes": dict(Counter(p.route for p in predictions)),
        "by_version": dict(Counter(p.version for p in predictions)),
        "t0": t0.isoformat(), "shift_time": shift_time.isoformat(),
        "customer_id": int(traffic.rows["customer_id"].iloc[0]),
        "prediction_ids": [p.prediction_id for p in predictions]}
    t1 = datetime.now(UTC) + timedelta(seconds=1)
    routes = Counter(p.route for p in predictions)
    demo.console.print(f"{len(predictions)} predictions: " + ", ".join(
        f"{k} {v} ({v / len(predictions):.0%})" for k, v in routes.most_common()))
    version_of = {"champion": str(champion), "challenger": str(challenger)}

    demo.stage(10, "Delayed actuals to observability, then drift and root cause")
    with demo.progress() as progress:
        task = progress.add_task("predictions logged by serving", total=len(predictions))
        await wait_records(demo, records_before, len(predictions), progress, task)
        task = progress.add_task("actuals (labels arrive days later)", total=1)
        actuals = await send_actuals(demo, predictions)
        demo.summary["actuals"] = {"accepted": int(actuals.accepted_count),
                                   "unmatched": int(actuals.unmatched_count)}
        progress.update(task, completed=1)
    demo.console.print(f"actuals: {actuals.accepted_count} accepted, "
                       f"{actuals.unmatched_count} not matched to a prediction")
    analysis = await analyse(demo, t0, shift_time, t1, version_of)
    demo.summary["traffic"]["t1"] = t1.isoformat()
    demo.summary["analysis"] = analysis
    monitor_id = await drift_monitor(demo, str(champion))

    demo.stage(11, "Promote the challenger or roll back, by the numbers")
    champ, chall = analysis["by_version"]["champion"], analysis["by_version"]["challenger"]
    table_rows = [(alias, v) for alias, v in (("champion", champ), ("challenger", chall))]
    from rich.table import Table

    table = Table(title="Canary result (live predictions with actuals)")
    for col in ("route", "version", "predictions", "accuracy", "F1"):
        table.add_column(col)
    for alias, v in table_rows:
        table.add_row(alias, v["version"], str(v["labeled"]),
                      f"{v['accuracy']:.3f}" if v["accuracy"] is not None else "-",
                      f"{v['f1']:.3f}" if v["f1"] is not None else "-")
    demo.console.print(table)
    passed = challenger_report.status == vd.CHECK_STATUS_PASS
    better = (chall["accuracy"] is not None and champ["accuracy"] is not None
              and chall["accuracy"] >= champ["accuracy"]
              and (chall["f1"] or 0) >= (champ["f1"] or 0))
    serving = demo.stub("serving")
    if passed and better and await set_alias(demo, "champion", challenger):
        decision = "promoted"
        demo.console.print(f"[green]challenger v{challenger} promoted[/]: accuracy "
                           f"{chall['accuracy']:.3f} vs {champ['accuracy']:.3f}, F1 "
                           f"{chall['f1'] or 0:.3f} vs {champ['f1'] or 0:.3f}")
    else:
        decision = "rolled_back"
        why = "its validation did not PASS" if not passed else "it was not better on live traffic"
        demo.console.print(f"[yellow]challenger v{challenger} rolled back[/]: {why}")
    await call("SetTrafficSplit", serving.SetTrafficSplit(sv.SetTrafficSplitRequest(
        name=DEPLOYMENT, traffic_split=sv.TrafficSplit(routes=[_route("champion", 100)]))))
    from modelplane.registry.v1 import registry_pb2 as rg

    await call("DeleteAlias", demo.stub("registry").DeleteAlias(rg.DeleteAliasRequest(
        model_name=MODEL, alias="challenger", reason=f"canary {decision}")))
    final = await call("GetAlias", demo.stub("registry").GetAlias(
        rg.GetAliasRequest(model_name=MODEL, alias="champion")))
    demo.console.print(f"champion is v{final.version}; all traffic goes to it")

    demo.summary.update({
        "deployment": DEPLOYMENT, "final_champion_version": int(final.version),
        "decision": decision, "monitor_id": monitor_id,
        "seconds": round(time.monotonic() - started, 1)})
    return demo.summary


def print_urls(demo: Demo) -> dict[str, str]:
    from urllib.parse import quote

    p = demo.platform
    urls = {"gateway": p.gateway_url, "openapi": f"{p.gateway_url}/openapi.json",
            "mlflow": p.mlflow_uri, "dashboard": f"{p.dashboard_url}models/{quote(MODEL)}",
            "oip_rest": f"{p.gateway_url}/v2/models/{DEPLOYMENT}"}
    demo.console.rule("[bold]The platform keeps running")
    demo.console.print(f"gateway      {urls['gateway']}   (try {urls['gateway']}/v1/models)")
    demo.console.print(f"OpenAPI      {urls['openapi']}")
    demo.console.print(f"MLflow UI    {urls['mlflow']}   "
                       "(runs of experiment 'fraud-detector-demo')")
    demo.console.print(f"dashboard    {urls['dashboard']}?key=<admin key>   "
                       "(performance, drift, worst slices)")
    demo.console.print(f"inference    POST {urls['oip_rest']}/infer   (Open Inference Protocol v2, "
                       "through the gateway)")
    demo.console.print(f"admin key    in {p.admin_key_file}; `modelplane down` stops it all")
    return urls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=".modelplane",
                        help="data directory of the running platform (default ./.modelplane)")
    parser.add_argument("--fast", action="store_true",
                        help="smaller data and traffic (for tests and slow machines)")
    parser.add_argument("--summary", default="",
                        help="where to write the JSON summary "
                             "(default <data-dir>/demo/summary.json)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    from rich.console import Console

    console = Console()
    data_dir = Path(args.data_dir).expanduser().resolve()
    platform = Platform.load(data_dir)
    if platform is None or not platform.admin_key_file.exists():
        console.print(f"[red]no running platform in {data_dir}[/]: start it with "
                      f"`modelplane up --detach --data-dir {args.data_dir}` first")
        return 2
    from modelplane.cli.main import _all_serving, status_report

    if not _all_serving(status_report(platform)):
        console.print(f"[red]the platform in {data_dir} is not healthy[/]; "
                      "see `modelplane status`")
        return 2
    demo = Demo(platform=platform, api_key=platform.admin_key_file.read_text().strip(),
                size=SIZES["fast" if args.fast else "full"], console=console)

    async def go() -> dict[str, Any]:
        try:
            return await run(demo)
        finally:
            await demo.close()

    summary_path = Path(args.summary) if args.summary else data_dir / "demo" / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = asyncio.run(go())
    except DemoFailed as exc:
        console.print(f"[red bold]demo stopped:[/] {exc}")
        demo.summary["error"] = str(exc)
        summary_path.write_text(json.dumps(demo.summary, indent=2, default=str))
        return 1
    summary["urls"] = print_urls(demo)
    summary_path.write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"summary written to {summary_path} (took {summary['seconds']:.0f}s)")
    return 0


