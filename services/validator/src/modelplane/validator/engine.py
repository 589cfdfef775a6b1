"""The check engine: plan a policy against the inputs, then run the checks.

Pure domain: a model object with ``predict`` (and ``predict_proba``), pandas
frames and a policy in; ``CheckResult`` list out. No grpc, no storage.

``plan_validation`` does every check of names that can be done without the
data (catalog names, thresholds, parameters, columns, model inputs, required
inputs) and raises ``InvalidArgument`` / ``FailedPrecondition`` naming each
offender, so a run never starts on bad input. ``run_checks`` does the work.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from modelplane.kit.errors import FailedPrecondition, FieldViolation, InvalidArgument
from modelplane.validator.checks import (
    CATALOG,
    Check,
    CheckContext,
    FeatureParitySource,
    Predictor,
    Requirement,
    Skip,
)
from modelplane.validator.checks.base import (
    DeploymentLoad,
    HistoricalFeatures,
    PreviousValidation,
    ResolvedConfig,
)
from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import CheckResult, CheckStatus, TaskType

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""(current check or stage, checks done, checks total)."""


class Cancelled(Exception):
    """The run was cancelled between two checks."""


@dataclass
class PlannedCheck:
    check: Check
    config: ResolvedConfig
    skip_reason: str = ""


@dataclass
class ValidationPlan:
    policy: Policy
    checks: list[PlannedCheck]
    features: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Availability:
    """Which optional inputs a run has (decided before any work)."""

    baseline: bool = False
    training: bool = False
    featurestore: bool = False
    #: a previous version whose baseline (validation data) may be in observability
    previous: bool = False


def _resolve_config(check: Check, cfg: CheckConfig, path: str,
                    violations: list[FieldViolation]) -> ResolvedConfig | None:
    known_limits = {s.name for s in check.thresholds}
    known_params = {p.name: p for p in check.params}
    ok = True
    for kind in ("thresholds", "warn_thresholds"):
        for name in getattr(cfg, kind):
            if name not in known_limits:
                violations.append(FieldViolation(
                    f"{path}.{kind}.{name}",
                    f"unknown threshold {name!r} of check {check.name!r}; known: "
                    f"{', '.join(sorted(known_limits)) or 'none'}"))
                ok = False
    for name, raw in cfg.params.items():
        spec = known_params.get(name)
        if spec is None:
            violations.append(FieldViolation(
                f"{path}.params.{name}", f"unknown parameter {name!r} of check {check.name!r}; "
                f"known: {', '.join(sorted(known_params)) or 'none'}"))
            ok = False
            continue
        try:
            if spec.kind is str and name == "ranges" and raw:
                json.loads(raw)
            else:
                spec.kind(raw)
        except (TypeError, ValueError):
            violations.append(FieldViolation(f"{path}.params.{name}",
                                             f"expected {spec.kind.__name__}, got {raw!r}"))
            ok = False
            continue
        if name == "degradation_metrics" and raw:
            from modelplane.validator.statistics import (
                CLASSIFICATION_METRICS,
                REGRESSION_METRICS,
            )

            metrics = CLASSIFICATION_METRICS + REGRESSION_METRICS
            unknown = sorted({m.strip() for m in raw.split(",") if m.strip()} - set(metrics))
            if unknown:
                violations.append(FieldViolation(
                    f"{path}.params.{name}", f"{', '.join(unknown)}: not a metric (they are "
                    f"{', '.join(metrics)})"))
                ok = False
                continue
        if spec.choices and raw not in spec.choices:
            choices = ", ".join(spec.choices)
            violations.append(FieldViolation(f"{path}.params.{name}",
                                             f"expected one of {choices}, got {raw!r}"))
            ok = False
    return check.resolve(cfg) if ok else None


def derive_features(policy: Policy, columns: Sequence[str],
                    model_inputs: Sequence[str] | None) -> list[str]:
    """Model input columns: the policy's, else the model's, else every non-meta column."""
    if policy.feature_columns:
        return list(policy.feature_columns)
    if model_inputs:
        return list(model_inputs)
    meta = {policy.label_column, policy.event_timestamp_column, *policy.feature_timestamp_columns,
            *policy.entity_columns, *policy.protected_attributes}
    return [c for c in columns if c not in meta]


def plan_validation(policy: Policy, columns: Sequence[str], model_inputs: Sequence[str] | None,
                    availability: Availability,
                    training_columns: Sequence[str] | None = None,
                    catalog: dict[str, Check] = CATALOG) -> ValidationPlan:
    """Check the policy against the catalog and the inputs; raise before any work."""
    violations: list[FieldViolation] = []
    column_set = set(columns)

    def need_column(path: str, name: str, what: str) -> None:
        if name and name not in column_set:
            violations.append(FieldViolation(path,
                                             f"{what} {name!r} is not a column of the dataset"))

    need_column("policy.label_column", policy.label_column, "label column")
    for i, name in enumerate(policy.slice_columns):
        need_column(f"policy.slice_columns[{i}]", name, "slice column")
    for i, name in enumerate(policy.protected_attributes):
        need_column(f"policy.protected_attributes[{i}]", name, "protected attribute")
    for i, name in enumerate(policy.entity_columns):
        need_column(f"policy.entity_columns[{i}]", name, "entity column")
    for i, name in enumerate(policy.feature_timestamp_columns):
        need_column(f"policy.feature_timestamp_columns[{i}]", name, "feature timestamp column")
    need_column("policy.event_timestamp_column", policy.event_timestamp_column,
                "event timestamp column")
    for i, name in enumerate(policy.feature_columns):
        need_column(f"policy.feature_columns[{i}]", name, "feature column")
    features = derive_features(policy, columns, model_inputs)
    if not policy.feature_columns:
        missing = [f for f in features if f not in column_set]
        if missing:
            violations.append(FieldViolation(
                "dataset", f"the dataset lacks the model's input column(s): {', '.join(missing)}"))
    if not features:
        violations.append(FieldViolation("policy.feature_columns", "no model input columns"))
    if policy.label_column in features:
        violations.append(FieldViolation("policy.label_column",
                                         f"{policy.label_column!r} is also a model input"))
    configs: dict[str, CheckConfig] = {}
    for i, cfg in enumerate(policy.checks):
        path = f"policy.checks[{i}]"
        if cfg.check not in catalog:
            violations.append(FieldViolation(
                f"{path}.check", f"unknown check {cfg.check!r}; known: {', '.join(catalog)}"))
        elif cfg.check in configs:
            violations.append(FieldViolation(f"{path}.check", f"check {cfg.check!r} listed twice"))
        else:
            configs[cfg.check] = cfg
    resolved: dict[str, ResolvedConfig] = {}
    for i, cfg in enumerate(policy.checks):
        if cfg.check in catalog and configs.get(cfg.check) is cfg:
            rc = _resolve_config(catalog[cfg.check], cfg, f"policy.checks[{i}]", violations)
            if rc is not None:
                resolved[cfg.check] = rc
    if training_columns is not None:
        train_set = set(training_columns)
        lacking = [c for c in [policy.label_column, *features] if c and c not in train_set]
        if lacking:
            violations.append(FieldViolation(
                "training_dataset", f"the training dataset lacks column(s): {', '.join(lacking)}"))
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise InvalidArgument(f"{first.field}: {first.description}{more}", reason="INVALID_POLICY",
                              metadata={"field": first.field}, field_violations=violations)

    explicit = bool(policy.checks)
    chosen = [catalog[c.check] for c in policy.checks] if explicit else list(catalog.values())
    planned: list[PlannedCheck] = []
    notes: list[str] = []
    for check in chosen:
        reason = _missing_input(check, policy, availability)
        if reason and explicit and not {Requirement.BASELINE,
                                        Requirement.DRIFT_REFERENCE} & set(check.requires):
            raise FailedPrecondition(
                f"check {check.name!r} needs {reason}", reason="CHECK_INPUT_MISSING",
                metadata={"check": check.name, "missing": reason})
        planned.append(PlannedCheck(check, resolved.get(check.name) or check.resolve(None),
                                    skip_reason=reason))
        if reason:
            notes.append(f"{check.name} skipped: needs {reason}")
    return ValidationPlan(policy=policy, checks=planned, features=features, notes=notes)


def _missing_input(check: Check, policy: Policy, availability: Availability) -> str:
    for req in check.requires:
        if req == Requirement.BASELINE and not availability.baseline:
            return "a baseline version (none given and no champion)"
        if req == Requirement.DRIFT_REFERENCE and not (
                availability.previous or availability.baseline or availability.training):
            return ("something to compare with: a previous version's baseline, a baseline "
                    "version or a training dataset")
        if req == Requirement.TRAINING and not availability.training:
            return "a training dataset (none given and none in the version's lineage)"
        if req == Requirement.EVENT_TIME and not policy.event_timestamp_column:
            return "policy.event_timestamp_column"
        if req == Requirement.PROTECTED and not policy.protected_attributes:
            return "policy.protected_attributes"
        if req == Requirement.ENTITIES and not policy.entity_columns:
            return "policy.entity_columns"
        if req == Requirement.FEATURESTORE and not availability.featurestore:
            return "the featurestore (online features)"
    return ""


def infer_task(policy: Policy, model: Predictor, labels: pd.Series) -> TaskType:
    """The policy's task, else classification when the model scores classes or the
    label looks categorical (bool, text, or integers with at most 20 values)."""
    if policy.task is not None:
        return policy.task
    if model.has_proba or model.classes is not None:
        return TaskType.CLASSIFICATION
    if pd.api.types.is_bool_dtype(labels) or not pd.api.types.is_numeric_dtype(labels):
        return TaskType.CLASSIFICATION
    if pd.api.types.is_integer_dtype(labels) and labels.nunique() <= 20:
        return TaskType.CLASSIFICATION
    return TaskType.REGRESSION


def build_context(plan: ValidationPlan, model: Any, data: pd.DataFrame, *,
                  baseline: Any = None, training: pd.DataFrame | None = None,
                  parity_source: FeatureParitySource | None = None,
                  feature_refs: Sequence[str] = (),
                  previous: PreviousValidation | None = None,
                  previous_missing: str = "no previous version's baseline was given",
                  deployments: DeploymentLoad | None = None,
                  history: HistoricalFeatures | None = None,
                  run_name: str = "validation") -> CheckContext:
    predictor = model if isinstance(model, Predictor) else Predictor(model, "candidate")
    base = None if baseline is None else (
        baseline if isinstance(baseline, Predictor) else Predictor(baseline, "baseline"))
    data = data.reset_index(drop=True)
    task = infer_task(plan.policy, predictor, data[plan.policy.label_column])
    return CheckContext(model=predictor, data=data, policy=plan.policy, features=plan.features,
                        task=task, baseline=base, training=training, parity_source=parity_source,
                        feature_refs=list(feature_refs), previous=previous,
                        previous_missing=previous_missing, deployments=deployments,
                        history=history, run_name=run_name)


def run_checks(plan: ValidationPlan, ctx: CheckContext, *,
               progress: ProgressCallback | None = None,
               cancelled: Callable[[], bool] | None = None) -> list[CheckResult]:
    """Run the planned checks in order; a check that raises is reported as ERROR.

    Native thread pools (OpenMP, BLAS) are held to one thread: a run takes one core,
    and OpenMP's spin-waiting makes oversubscribed small machines crawl (measured
    here: a 1-row HistGradientBoosting predict went from ~1 ms to seconds under load).
    """
    with threadpool_limits(1):
        return _run_checks(plan, ctx, progress, cancelled)


def _run_checks(plan: ValidationPlan, ctx: CheckContext, progress: ProgressCallback | None,
                cancelled: Callable[[], bool] | None) -> list[CheckResult]:
    results: list[CheckResult] = []
    total = len(plan.checks)
    for done, planned in enumerate(plan.checks):
        if cancelled is not None and cancelled():
            raise Cancelled()
        name = planned.check.name
        if progress:
            progress(name, done, total)
        if planned.skip_reason:
            results.append(CheckResult(name, CheckStatus.SKIPPED, f"needs {planned.skip_reason}",
                                       params=_text_params(planned.config)))
            continue
        start = time.perf_counter()
        try:
            result = planned.check.run(ctx, planned.config)
        except Skip as skip:
            result = CheckResult(name, CheckStatus.SKIPPED, str(skip))
        except Exception as exc:
            log.exception("check %s raised", name)
            result = CheckResult(name, CheckStatus.ERROR, f"{type(exc).__name__}: {str(exc)[:300]}")
        result.duration_s = time.perf_counter() - start
        result.params = _text_params(planned.config)
        for m in result.measurements:
            m.value = float(m.value)
        results.append(result)
    if progress:
        progress("", total, total)
    return results


def _text_params(cfg: ResolvedConfig) -> dict[str, str]:
    return {k: ("" if v is None else str(v)) for k, v in cfg.params.items()}


def validate(model: Any, data: pd.DataFrame, policy: Policy, *, baseline: Any = None,
             training: pd.DataFrame | None = None,
             parity_source: FeatureParitySource | None = None,
             feature_refs: Sequence[str] = (),
             previous: PreviousValidation | None = None,
             deployments: DeploymentLoad | None = None,
             history: HistoricalFeatures | None = None) -> list[CheckResult]:
    """Plan and run in one call: the library entry point (notebooks, tests, benchmarks).

    ``previous`` is the previous version's validation data (the drift checks' default
    reference), ``deployments`` the stress check's load client, ``history`` the backtest's
    point-in-time source."""
    inputs = getattr(model, "feature_names_in_", None)
    plan = plan_validation(
        policy, list(data.columns), None if inputs is None else [str(c) for c in inputs],
        Availability(baseline=baseline is not None, training=training is not None,
                     featurestore=parity_source is not None, previous=previous is not None),
        training_columns=None if training is None else list(training.columns))
    ctx = build_context(plan, model, data, baseline=baseline, training=training,
                        parity_source=parity_source, feature_refs=feature_refs,
                        previous=previous, deployments=deployments, history=history)
    return run_checks(plan, ctx)


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the frame's content (values and column names), order-sensitive."""
    import hashlib

    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(np.ascontiguousarray(pd.util.hash_pandas_object(frame,
                                                             index=False).to_numpy()).tobytes())
    return h.hexdigest()
