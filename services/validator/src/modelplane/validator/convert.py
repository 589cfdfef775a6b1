"""``modelplane.validator.v1`` messages <-> the validator's domain objects: runs,
policies, dataset references, reports and their checks. Translation only.
"""

from __future__ import annotations

import math

from google.protobuf import duration_pb2
from google.rpc import code_pb2, status_pb2

from modelplane.kit.errors import FieldViolation, InvalidArgument
from modelplane.kit.timestamps import time_to_pb
from modelplane.validator.checks import Check
from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import (
    Bound,
    CheckResult,
    CheckStatus,
    Measurement,
    TaskType,
    ValidationReport,
)
from modelplane.validator.run import DatasetRef, RunState, ValidationRun
from modelplane.validator.service import RunRequest
from modelplane.validator.v1 import validator_pb2 as pb

_STATUS = {CheckStatus.PASS: pb.CHECK_STATUS_PASS, CheckStatus.WARN: pb.CHECK_STATUS_WARN,
           CheckStatus.FAIL: pb.CHECK_STATUS_FAIL, CheckStatus.SKIPPED: pb.CHECK_STATUS_SKIPPED,
           CheckStatus.ERROR: pb.CHECK_STATUS_ERROR}
CHECK_STATUS_FROM_PB = {v: k for k, v in _STATUS.items()}
_STATE = {RunState.PENDING: pb.RUN_STATE_PENDING, RunState.RUNNING: pb.RUN_STATE_RUNNING,
          RunState.SUCCEEDED: pb.RUN_STATE_SUCCEEDED, RunState.FAILED: pb.RUN_STATE_FAILED,
          RunState.CANCELLED: pb.RUN_STATE_CANCELLED}
RUN_STATE_FROM_PB = {v: k for k, v in _STATE.items()}
_TASK = {TaskType.CLASSIFICATION: pb.TASK_TYPE_CLASSIFICATION,
         TaskType.REGRESSION: pb.TASK_TYPE_REGRESSION}
_TASK_BACK = {v: k for k, v in _TASK.items()}
_BOUND = {Bound.LOWER: pb.THRESHOLD_BOUND_LOWER, Bound.UPPER: pb.THRESHOLD_BOUND_UPPER}


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def _finite(value: float) -> float:
    if math.isfinite(value):
        return value
    return math.copysign(1e308, value) if math.isinf(value) else math.nan


# ---- messages -> domain ------------------------------------------------------------------------

def dataset_from_pb(msg: pb.DatasetRef, field: str) -> DatasetRef | None:
    kind = msg.WhichOneof("source")
    if kind is None:
        return None
    ref = DatasetRef(dataset=msg.dataset, parquet_uri=msg.parquet_uri)
    if not (ref.dataset or ref.parquet_uri):
        raise InvalidArgument(f"{field}: empty {kind}",
                              field_violations=[FieldViolation(field, "empty")])
    return ref


def policy_from_pb(msg: pb.ValidationPolicy) -> Policy:
    return Policy(
        label_column=msg.label_column,
        checks=[CheckConfig(c.check, dict(c.thresholds), dict(c.warn_thresholds), dict(c.params))
                for c in msg.checks],
        task=_TASK_BACK.get(msg.task), positive_class=msg.positive_class,
        slice_columns=list(msg.slice_columns), protected_attributes=list(msg.protected_attributes),
        feature_columns=list(msg.feature_columns),
        event_timestamp_column=msg.event_timestamp_column,
        feature_timestamp_columns=list(msg.feature_timestamp_columns),
        entity_columns=list(msg.entity_columns), seed=msg.seed or 42,
        sample_rows=msg.sample_rows or 20_000)


def request_from_pb(msg: pb.ValidationRun) -> RunRequest:
    policy = None
    if msg.HasField("policy"):
        policy = policy_from_pb(msg.policy)
        if not policy.label_column:
            raise InvalidArgument("validation_run.policy.label_column: required",
                                  field_violations=[FieldViolation("validation_run.policy.label_column",
                                                                   "required")])
    return RunRequest(
        model=msg.model, version=msg.version,
        dataset=dataset_from_pb(msg.dataset,
                                "validation_run.dataset") if msg.HasField("dataset") else None,
        policy=policy, policy_text=msg.policy_text, baseline_version=msg.baseline_version,
        skip_baseline=msg.skip_baseline,
        training_dataset=dataset_from_pb(msg.training_dataset, "validation_run.training_dataset")
        if msg.HasField("training_dataset") else None)


# ---- domain -> messages ------------------------------------------------------------------------

def dataset_to_pb(ref: DatasetRef | dict[str, str] | None) -> pb.DatasetRef | None:
    if ref is None:
        return None
    if isinstance(ref, dict):
        ref = DatasetRef.from_dict(ref)
        if ref is None:
            return None
    if ref.dataset:
        return pb.DatasetRef(dataset=ref.dataset)
    return pb.DatasetRef(parquet_uri=ref.parquet_uri)


def policy_to_pb(policy: Policy) -> pb.ValidationPolicy:
    return pb.ValidationPolicy(
        checks=[pb.CheckConfig(check=c.check, thresholds=c.thresholds,
                               warn_thresholds=c.warn_thresholds, params=c.params)
                for c in policy.checks],
        label_column=policy.label_column, task=_TASK.get(policy.task, pb.TASK_TYPE_UNSPECIFIED)
        if policy.task else pb.TASK_TYPE_UNSPECIFIED,
        positive_class=policy.positive_class, slice_columns=policy.slice_columns,
        protected_attributes=policy.protected_attributes, feature_columns=policy.feature_columns,
        event_timestamp_column=policy.event_timestamp_column,
        feature_timestamp_columns=policy.feature_timestamp_columns,
        entity_columns=policy.entity_columns, seed=policy.seed, sample_rows=policy.sample_rows)


def run_to_pb(run: ValidationRun) -> pb.ValidationRun:
    msg = pb.ValidationRun(
        id=run.id, model=run.model, version=run.version, baseline_version=run.baseline_version,
        skip_baseline=run.skip_baseline, dataset=dataset_to_pb(run.dataset),
        training_dataset=dataset_to_pb(run.training_dataset), policy=policy_to_pb(run.policy),
        policy_text=run.policy_text, state=_STATE[run.state],
        progress=pb.RunProgress(checks_total=run.progress.checks_total,
                                checks_done=run.progress.checks_done,
                                current_check=run.progress.current_check,
                                fraction=run.progress.fraction, stage=run.progress.stage),
        report_id=run.report_id,
        report_status=(_STATUS[run.report_status] if run.report_status
                       else pb.CHECK_STATUS_UNSPECIFIED),
        resolved_baseline_version=run.resolved_baseline_version,
        registry_attached=run.registry_attached,
        observability_baseline_set=run.observability_baseline_set, notes=run.notes,
        creator=run.creator, create_time=time_to_pb(run.create_time),
        start_time=time_to_pb(run.start_time), end_time=time_to_pb(run.end_time))
    if run.error is not None:
        code = getattr(code_pb2, run.error.code, code_pb2.UNKNOWN)
        msg.error.CopyFrom(status_pb2.Status(code=code, message=run.error.message))
    return msg


def _measurements(items: list[Measurement]) -> list[pb.Measurement]:
    out = []
    for m in items:
        msg = pb.Measurement(name=m.name, subject=m.subject, value=_finite(m.value))
        if m.baseline_value is not None:
            msg.baseline_value = _finite(m.baseline_value)
        out.append(msg)
    return out


def check_to_pb(c: CheckResult) -> pb.CheckResult:
    thresholds = []
    for t in c.thresholds:
        msg = pb.ThresholdOutcome(name=t.name, bound=_BOUND[t.bound], limit=_finite(t.limit),
                                  measured=_finite(t.measured), subject=t.subject,
                                  status=_STATUS[t.status])
        if t.warn_limit is not None:
            msg.warn_limit = t.warn_limit
        thresholds.append(msg)
    return pb.CheckResult(
        check=c.check, status=_STATUS[c.status], message=c.message,
        measurements=_measurements(c.measurements), thresholds=thresholds,
        slices=[pb.SliceResult(column=s.column, value=s.value, row_count=s.row_count,
                               measurements=_measurements(s.measurements), status=_STATUS[s.status])
                for s in c.slices],
        findings=c.findings, params=c.params, duration=_duration(c.duration_s))


def report_to_pb(r: ValidationReport, full: bool = True) -> pb.ValidationReport:
    from modelplane.validator.codec import policy_from_stored

    return pb.ValidationReport(
        id=r.id, run_id=r.run_id, model=r.model, version=r.version,
        baseline_version=r.baseline_version, dataset=dataset_to_pb(r.dataset),
        training_dataset=dataset_to_pb(r.training_dataset),
        policy=policy_to_pb(policy_from_stored(r.policy)), status=_STATUS[r.status],
        summary=r.summary, checks=[check_to_pb(c) for c in r.checks] if full else [],
        task=_TASK[r.task], row_count=r.row_count, dataset_sha256=r.dataset_sha256,
        model_uri=r.model_uri, create_time=time_to_pb(r.create_time),
        duration=_duration(r.duration_s), report_uri=r.report_uri)


def check_descriptor(check: Check) -> pb.CheckDescriptor:
    thresholds = []
    for t in check.thresholds:
        msg = pb.ThresholdSpec(name=t.name, bound=_BOUND[t.bound], description=t.description)
        if t.default is not None:
            msg.default_limit = t.default
        thresholds.append(msg)
    return pb.CheckDescriptor(
        name=check.name, title=check.title, description=check.description, thresholds=thresholds,
        params=[pb.ParameterSpec(name=p.name, default_value=p.default, description=p.description)
                for p in check.params],
        requires=[r.value for r in check.requires], tasks=[_TASK[t] for t in check.tasks])
