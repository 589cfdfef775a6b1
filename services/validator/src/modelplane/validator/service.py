"""The validation service: runs as resources, checked up front, executed in the background.

``create_run`` does every check that can be done without the data (model and
versions exist, dataset exists and has the columns, the policy names known
checks, thresholds and columns) and raises before a run is recorded. The run
then loads the data and models, runs the checks in a worker thread, saves the
report, attaches it to the version in the registry and hands the baseline to
observability. Progress is pushed to watchers as it happens.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from modelplane.kit.errors import FieldViolation, InvalidArgument, ModelplaneError
from modelplane.validator.checks import CATALOG, Check, CheckContext
from modelplane.validator.checks.base import DeploymentLoad, PreviousValidation
from modelplane.validator.codec import report_to_json
from modelplane.validator.engine import (
    Availability,
    Cancelled,
    ValidationPlan,
    build_context,
    dataset_fingerprint,
    plan_validation,
    run_checks,
)
from modelplane.validator.policy import Policy, parse_policy_text
from modelplane.validator.ports import (
    BaselineSink,
    BaselineSource,
    DatasetInfo,
    DatasetSource,
    ModelLoader,
    ModelRegistry,
    ModelVersionInfo,
)
from modelplane.validator.report import ValidationReport, overall_status, summarize
from modelplane.validator.run import DatasetRef, RunError, RunProgress, RunState, ValidationRun
from modelplane.validator.store import RunStore

log = logging.getLogger(__name__)

CHAMPION = "champion"
LOAD_FRACTION = 0.1
CHECKS_FRACTION = 0.85


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRequest:
    """What a caller asks for (the input fields of a ValidationRun)."""

    model: str
    version: str
    dataset: DatasetRef | None
    policy: Policy | None = None
    policy_text: str = ""
    baseline_version: str = ""
    skip_baseline: bool = False
    training_dataset: DatasetRef | None = None


@dataclass
class _Prepared:
    run: ValidationRun
    plan: ValidationPlan
    candidate: ModelVersionInfo
    baseline: ModelVersionInfo | None
    dataset: DatasetInfo
    training: DatasetInfo | None
    #: the version whose validation data the drift checks compare with ("" = none)
    previous_version: str = ""
    previous_missing: str = ""


class ValidationService:
    def __init__(self, store: RunStore, registry: ModelRegistry, loader: ModelLoader,
                 datasets: DatasetSource, baseline_sink: BaselineSink | None = None, *,
                 max_concurrent_runs: int = 1, max_baseline_rows: int = 100_000,
                 baseline_source: BaselineSource | None = None,
                 deployments: DeploymentLoad | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._registry = registry
        self._loader = loader
        self._datasets = datasets
        self._sink = baseline_sink
        self._baseline_source = baseline_source
        self._deployments = deployments
        self._clock = clock
        self._slots = asyncio.Semaphore(max_concurrent_runs)
        self._max_baseline_rows = max_baseline_rows
        self._watchers: dict[str, set[asyncio.Queue[ValidationRun]]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runs: dict[str, ValidationRun] = {}  # live runs, newest state
        self._publish_lock = asyncio.Lock()

    # lifecycle -------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Runs left PENDING/RUNNING by a previous process can't resume: mark them FAILED."""
        for run in await asyncio.to_thread(self._store.unfinished_runs):
            run.state = RunState.FAILED
            run.end_time = self._clock()
            run.error = RunError("ABORTED", "the validator restarted while the run was going on",
                                 "RUN_INTERRUPTED")
            await asyncio.to_thread(self._store.save_run, run)

    async def close(self) -> None:
        for event in self._cancel.values():
            event.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)

    # commands --------------------------------------------------------------------------------

    async def create_run(self, request: RunRequest, creator: str = "") -> ValidationRun:
        prepared = await self._prepare(request, creator)
        run = prepared.run
        await asyncio.to_thread(self._store.save_run, run)
        self._runs[run.id] = run
        self._cancel[run.id] = threading.Event()
        task = asyncio.create_task(self._execute(prepared), name=f"validation-run-{run.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return replace(run)

    async def cancel_run(self, run_id: str) -> ValidationRun:
        run = await self.get_run(run_id)
        if run.state.final:
            return run
        event = self._cancel.get(run_id)
        if event is not None:
            event.set()
        run.state = RunState.CANCELLED
        run.end_time = self._clock()
        run.progress.stage = "cancelled"
        await self._publish(run)
        return replace(run)

    # queries ---------------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> ValidationRun:
        live = self._runs.get(run_id)
        if live is not None:
            return replace(live, progress=replace(live.progress))
        return await asyncio.to_thread(self._store.get_run, run_id)

    async def list_runs(self, **kw: Any) -> tuple[list[ValidationRun], str]:
        return await asyncio.to_thread(lambda: self._store.list_runs(**kw))

    async def get_report(self, report_id: str) -> ValidationReport:
        return await asyncio.to_thread(self._store.get_report, report_id)

    async def list_reports(self, **kw: Any) -> tuple[list[ValidationReport], str]:
        return await asyncio.to_thread(lambda: self._store.list_reports(**kw))

    @staticmethod
    def list_checks() -> list[Check]:
        return list(CATALOG.values())

    async def watch_run(self, run_id: str) -> AsyncIterator[ValidationRun]:
        """The run now, then every change, until it is final."""
        queue: asyncio.Queue[ValidationRun] = asyncio.Queue()
        self._watchers.setdefault(run_id, set()).add(queue)
        try:
            current = await self.get_run(run_id)
            yield current
            while not current.state.final:
                current = await queue.get()
                yield current
        finally:
            watchers = self._watchers.get(run_id)
            if watchers is not None:
                watchers.discard(queue)
                if not watchers:
                    self._watchers.pop(run_id, None)

    # preparing: everything that can fail before any work ---------------------------------------

    async def _prepare(self, request: RunRequest, creator: str) -> _Prepared:
        violations = []
        if not request.model:
            violations.append(FieldViolation("validation_run.model", "required"))
        if not request.version:
            violations.append(FieldViolation("validation_run.version", "required"))
        elif not (request.version.isascii() and request.version.isdigit()):
            violations.append(FieldViolation("validation_run.version",
                                             f"expected a version number, got {request.version!r}"))
        wanted = request.baseline_version
        if wanted and not (wanted.isascii() and wanted.isdigit()):
            violations.append(FieldViolation(
                "validation_run.baseline_version",
                f"expected a version number, got {request.baseline_version!r}"))
        if request.dataset is None or not (request.dataset.dataset or request.dataset.parquet_uri):
            violations.append(FieldViolation(
                "validation_run.dataset", "required: a featurestore dataset id or a parquet URI"))
        if (request.policy is None) == (not request.policy_text):
            violations.append(FieldViolation("validation_run.policy",
                                             "exactly one of policy and policy_text is required"))
        if violations:
            v = violations[0]
            raise InvalidArgument(f"{v.field}: {v.description}", field_violations=violations,
                                  metadata={"field": v.field})
        assert request.dataset is not None
        policy = request.policy or parse_policy_text(request.policy_text)

        candidate = await self._registry.get_version(request.model, request.version)
        baseline: ModelVersionInfo | None = None
        notes: list[str] = []
        if request.skip_baseline:
            notes.append("baseline comparison skipped on request")
        elif request.baseline_version:
            if request.baseline_version == request.version:
                raise InvalidArgument(
                    "validation_run.baseline_version: the baseline must differ from the candidate",
                    field_violations=[FieldViolation("validation_run.baseline_version",
                                                     "same as version")])
            baseline = await self._registry.get_version(request.model, request.baseline_version)
        else:
            champion = await self._registry.resolve_alias(request.model, CHAMPION)
            if champion is None:
                notes.append(f"no baseline: model {request.model!r} has no {CHAMPION!r} alias")
            elif champion.version == candidate.version:
                notes.append(f"no baseline: version {candidate.version} is the {CHAMPION} itself")
            else:
                baseline = champion
        dataset = await self._datasets.describe(request.dataset)
        training_info: DatasetInfo | None = None
        training_ref = request.training_dataset
        if training_ref is not None:
            training_info = await self._datasets.describe(training_ref, "training_dataset")
        elif candidate.dataset_id:
            try:
                training_ref = DatasetRef(dataset=candidate.dataset_id)
                training_info = await self._datasets.describe(training_ref)
            except ModelplaneError as exc:
                training_ref = None
                notes.append(f"training dataset {candidate.dataset_id} of the version's lineage "
                             f"is not readable: {exc.message}")
        previous, previous_missing = self._previous_version(candidate, baseline)
        if previous:
            notes.append(f"drift reference: version {previous}'s validation data (its baseline "
                         "in observability)")
        policy = self._with_dataset_defaults(policy, dataset)
        parity = self._datasets.parity_source() if request.dataset.dataset else None
        plan = plan_validation(
            policy, dataset.columns, candidate.input_columns or None,
            Availability(baseline=baseline is not None, training=training_info is not None,
                         featurestore=parity is not None, previous=bool(previous)),
            training_columns=training_info.columns if training_info else None)
        now = self._clock()
        run = ValidationRun(
            id=uuid.uuid4().hex, model=request.model, version=candidate.version,
            dataset=request.dataset, policy=policy, policy_text=request.policy_text,
            baseline_version=request.baseline_version, skip_baseline=request.skip_baseline,
            training_dataset=training_ref,
            resolved_baseline_version=baseline.version if baseline else "",
            notes=notes + plan.notes, creator=creator, create_time=now,
            progress=RunProgress(checks_total=len(plan.checks), stage="queued"))
        return _Prepared(run, plan, candidate, baseline, dataset, training_info,
                         previous, previous_missing)

    def _previous_version(self, candidate: ModelVersionInfo,
                          baseline: ModelVersionInfo | None) -> tuple[str, str]:
        """The version whose validation data the drift checks compare with: the baseline
        version (given, or the champion), else the version just before the candidate."""
        if self._baseline_source is None:
            return "", "no observability configured to read a previous version's baseline from"
        if baseline is not None:
            return baseline.version, ""
        number = int(candidate.version)
        if number <= 1:
            return "", f"version {candidate.version} is the first: no previous version"
        return str(number - 1), ""

    @staticmethod
    def _with_dataset_defaults(policy: Policy, dataset: DatasetInfo) -> Policy:
        """A featurestore dataset knows its entity keys and event time column."""
        policy = replace(policy)
        if not policy.entity_columns and dataset.join_keys:
            policy.entity_columns = [k for k in dataset.join_keys if k in dataset.columns]
        if not policy.event_timestamp_column and dataset.timestamp_column in dataset.columns:
            policy.event_timestamp_column = dataset.timestamp_column
        return policy

    # executing -------------------------------------------------------------------------------

    async def _execute(self, prepared: _Prepared) -> None:
        run = prepared.run
        cancel = self._cancel[run.id]
        try:
            async with self._slots:
                if cancel.is_set():
                    raise Cancelled()
                run.state, run.start_time = RunState.RUNNING, self._clock()
                await self._progress(run, stage="loading data", fraction=0.0)
                report, ctx = await self._validate(prepared, cancel)
                if cancel.is_set():
                    raise Cancelled()
                await self._progress(run, stage="saving report",
                                     fraction=LOAD_FRACTION + CHECKS_FRACTION)
                await self._finish(prepared, report, ctx)
                run.state = RunState.SUCCEEDED
                run.report_id, run.report_status = report.id, report.status
                run.progress = replace(run.progress, fraction=1.0, stage="done", current_check="")
        except Cancelled:
            run.state = RunState.CANCELLED
            run.progress.stage = "cancelled"
        except ModelplaneError as exc:
            run.state = RunState.FAILED
            run.error = RunError(exc.code, exc.message, exc.reason, dict(exc.metadata))
        except Exception as exc:
            ref = uuid.uuid4().hex[:12]
            log.exception("validation run %s failed (reference %s)", run.id, ref)
            run.state = RunState.FAILED
            run.error = RunError("INTERNAL",
                                 f"{type(exc).__name__}: {str(exc)[:300]} (reference {ref})",
                                 "RUN_FAILED", {"reference": ref})
        finally:
            if cancel.is_set() and run.state != RunState.SUCCEEDED:
                run.state = RunState.CANCELLED
            run.end_time = run.end_time or self._clock()
            await self._publish(run)
            self._runs.pop(run.id, None)
            self._cancel.pop(run.id, None)

    async def _validate(self, prepared: _Prepared,
                        cancel: threading.Event) -> tuple[ValidationReport, CheckContext]:
        run, plan = prepared.run, prepared.plan
        data = await self._datasets.load(run.dataset)
        training = (await self._datasets.load(run.training_dataset)
                    if run.training_dataset is not None and prepared.training is not None else None)
        if cancel.is_set():
            raise Cancelled()
        await self._progress(run, stage="loading model", fraction=LOAD_FRACTION / 2)
        model = await asyncio.to_thread(self._loader.load, prepared.candidate)
        baseline = (await asyncio.to_thread(self._loader.load, prepared.baseline)
                    if prepared.baseline is not None else None)
        parity = self._datasets.parity_source() if run.dataset.dataset else None
        previous, previous_missing = await self._read_previous(prepared)
        loop = asyncio.get_running_loop()
        total = max(len(plan.checks), 1)

        def progress(check: str, done: int, _total: int) -> None:
            fraction = LOAD_FRACTION + CHECKS_FRACTION * done / total
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._progress(
                run, stage=f"running {check}" if check else "checks done", fraction=fraction,
                current_check=check, checks_done=done)))

        def work() -> tuple[list, CheckContext, str]:
            ctx = build_context(plan, model, data, baseline=baseline, training=training,
                                parity_source=parity,
                                feature_refs=(prepared.candidate.feature_refs
                                              or prepared.dataset.feature_refs) if parity else (),
                                previous=previous, previous_missing=previous_missing,
                                deployments=self._deployments,
                                history=self._datasets.history_source(),
                                run_name=f"validator_{run.id[:12]}")
            results = run_checks(plan, ctx, progress=progress, cancelled=cancel.is_set)
            return results, ctx, dataset_fingerprint(data)

        started = self._clock()
        results, ctx, sha = await asyncio.to_thread(work)
        finished = self._clock()
        status = overall_status(results)
        report = ValidationReport(
            id=uuid.uuid4().hex, run_id=run.id, model=run.model, version=run.version,
            status=status, summary=summarize(results), checks=results, task=ctx.task,
            row_count=len(data), dataset=run.dataset.to_dict(), policy=plan.policy.to_dict(),
            baseline_version=prepared.baseline.version if prepared.baseline else "",
            training_dataset=run.training_dataset.to_dict() if run.training_dataset else None,
            dataset_sha256=sha, model_uri=prepared.candidate.download_uri,
            create_time=finished, duration_s=(finished - started).total_seconds())
        return report, ctx

    async def _read_previous(self, prepared: _Prepared) -> tuple[PreviousValidation | None, str]:
        """The previous version's validation records, when a drift check will use them."""
        if not prepared.previous_version or self._baseline_source is None:
            return None, prepared.previous_missing or "no previous version"
        wanted = {"feature_drift", "prediction_drift"}
        if not any(p.check.name in wanted and not p.skip_reason for p in prepared.plan.checks):
            return None, "not needed"
        return await self._baseline_source.previous_validation(
            prepared.run.model, prepared.previous_version, prepared.plan.policy.sample_rows)

    async def _finish(self, prepared: _Prepared, report: ValidationReport,
                      ctx: CheckContext) -> None:
        run = prepared.run
        await asyncio.to_thread(self._store.save_report, report)
        try:
            report.report_uri = await asyncio.to_thread(
                self._loader.publish_report, prepared.candidate, report, report_to_json(report))
            await asyncio.to_thread(self._store.save_report, report)
        except Exception as exc:  # noqa: BLE001 - the report is saved here either way
            run.notes.append(f"report artifact not written: {exc}")
        try:
            await self._registry.attach_validation(run.model, run.version, report)
            run.registry_attached = True
        except Exception as exc:  # noqa: BLE001 - reported on the run, not fatal
            message = exc.message if isinstance(exc, ModelplaneError) else str(exc)
            run.notes.append(f"not attached in the registry: {message}")
        if self._sink is None:
            run.notes.append("observability baseline not set: no observability service configured")
            return
        try:
            await self._sink.set_baseline(report, self.baseline_records(report, ctx))
            run.observability_baseline_set = True
        except Exception as exc:  # noqa: BLE001
            message = exc.message if isinstance(exc, ModelplaneError) else str(exc)
            run.notes.append(f"observability baseline not set: {message}")

    def baseline_records(self, report: ValidationReport, ctx: CheckContext) -> pd.DataFrame:
        """The validation predictions as evaluation records (observability's import columns)."""
        n = len(ctx.data)
        rows = np.arange(n) if n <= self._max_baseline_rows else \
            np.sort(np.random.default_rng(ctx.seed).choice(n, self._max_baseline_rows,
                                                           replace=False))
        frame = ctx.x.iloc[rows].reset_index(drop=True).copy()
        frame["prediction_id"] = [f"{report.id}-{i}" for i in rows]
        column = ctx.policy.event_timestamp_column
        if column:
            frame["prediction_time"] = pd.to_datetime(ctx.data[column].iloc[rows],
                                                      utc=True).to_numpy()
        else:
            frame["prediction_time"] = pd.Timestamp(report.create_time or self._clock())
        frame["prediction"] = ctx.predictions[rows]
        frame["actual"] = ctx.y[rows]
        if ctx.probabilities is not None:
            for j, cls in enumerate(ctx.classes):
                frame[f"score_{cls}"] = ctx.probabilities[rows, j]
        for col in {*ctx.policy.slice_columns, *ctx.policy.protected_attributes}:
            frame[f"tag_{col}"] = ctx.data[col].iloc[rows].astype(str).to_numpy()
        return frame

    # progress --------------------------------------------------------------------------------

    async def _progress(self, run: ValidationRun, *, stage: str, fraction: float,
                        current_check: str | None = None, checks_done: int | None = None) -> None:
        if run.state.final:
            return
        run.progress.stage = stage
        run.progress.fraction = round(max(run.progress.fraction, fraction), 4)
        if current_check is not None:
            run.progress.current_check = current_check
        if checks_done is not None:
            run.progress.checks_done = checks_done
        await self._publish(run)

    async def _publish(self, run: ValidationRun) -> None:
        # One writer at a time, snapshot taken under the lock: the last write is the newest state.
        async with self._publish_lock:
            snapshot = replace(run, progress=replace(run.progress), notes=list(run.notes))
            await asyncio.to_thread(self._store.save_run, snapshot)
            for queue in self._watchers.get(run.id, ()):
                queue.put_nowait(snapshot)

