"""Runs and reports to and from JSON: the stored form and the report artifact."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import (
    Bound,
    CheckResult,
    CheckStatus,
    Measurement,
    SliceResult,
    TaskType,
    ThresholdOutcome,
    ValidationReport,
)
from modelplane.validator.run import DatasetRef, RunError, RunProgress, RunState, ValidationRun


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _num(value: float | None) -> float | str | None:
    """JSON has no NaN / infinity: keep them as strings."""
    if value is None:
        return None
    if not math.isfinite(value):
        return str(value)
    return value


def _unnum(value: Any) -> float | None:
    return None if value is None else float(value)


def policy_from_stored(data: dict[str, Any]) -> Policy:
    policy = Policy(label_column=data["label_column"])
    for key, value in data.items():
        if key == "checks":
            policy.checks = [CheckConfig(**c) for c in value]
        elif key == "task":
            policy.task = TaskType(value) if value else None
        else:
            setattr(policy, key, value)
    return policy


def run_to_json(run: ValidationRun) -> str:
    return json.dumps({
        "id": run.id, "model": run.model, "version": run.version,
        "dataset": run.dataset.to_dict(), "policy": run.policy.to_dict(),
        "policy_text": run.policy_text, "baseline_version": run.baseline_version,
        "skip_baseline": run.skip_baseline,
        "training_dataset": run.training_dataset.to_dict() if run.training_dataset else None,
        "state": run.state.value, "progress": vars(run.progress),
        "report_id": run.report_id,
        "report_status": run.report_status.name if run.report_status else None,
        "error": vars(run.error) if run.error else None,
        "resolved_baseline_version": run.resolved_baseline_version,
        "registry_attached": run.registry_attached,
        "observability_baseline_set": run.observability_baseline_set,
        "notes": run.notes, "creator": run.creator,
        "create_time": _time(run.create_time), "start_time": _time(run.start_time),
        "end_time": _time(run.end_time),
    })


def run_from_json(text: str) -> ValidationRun:
    d = json.loads(text)
    return ValidationRun(
        id=d["id"], model=d["model"], version=d["version"],
        dataset=DatasetRef.from_dict(d["dataset"]) or DatasetRef(),
        policy=policy_from_stored(d["policy"]), policy_text=d["policy_text"],
        baseline_version=d["baseline_version"], skip_baseline=d["skip_baseline"],
        training_dataset=DatasetRef.from_dict(d["training_dataset"]),
        state=RunState(d["state"]), progress=RunProgress(**d["progress"]),
        report_id=d["report_id"],
        report_status=CheckStatus[d["report_status"]] if d["report_status"] else None,
        error=RunError(**d["error"]) if d["error"] else None,
        resolved_baseline_version=d["resolved_baseline_version"],
        registry_attached=d["registry_attached"],
        observability_baseline_set=d["observability_baseline_set"],
        notes=d["notes"], creator=d["creator"], create_time=_parse_time(d["create_time"]),
        start_time=_parse_time(d["start_time"]), end_time=_parse_time(d["end_time"]),
    )


def _check_to_dict(c: CheckResult) -> dict[str, Any]:
    return {
        "check": c.check, "status": c.status.name, "message": c.message,
        "measurements": [{"name": m.name, "subject": m.subject, "value": _num(m.value),
                          "baseline_value": _num(m.baseline_value)} for m in c.measurements],
        "thresholds": [{"name": t.name, "bound": t.bound.value, "limit": _num(t.limit),
                        "warn_limit": _num(t.warn_limit), "measured": _num(t.measured),
                        "subject": t.subject, "status": t.status.name} for t in c.thresholds],
        "slices": [{"column": s.column, "value": s.value, "row_count": s.row_count,
                    "status": s.status.name,
                    "measurements": [{"name": m.name, "subject": m.subject, "value": _num(m.value),
                                      "baseline_value": _num(m.baseline_value)}
                                     for m in s.measurements]} for s in c.slices],
        "findings": c.findings, "params": c.params, "duration_s": c.duration_s,
    }


def _measurement(d: dict[str, Any]) -> Measurement:
    return Measurement(d["name"], float(d["value"]), d["subject"], _unnum(d["baseline_value"]))


def _check_from_dict(d: dict[str, Any]) -> CheckResult:
    return CheckResult(
        check=d["check"], status=CheckStatus[d["status"]], message=d["message"],
        measurements=[_measurement(m) for m in d["measurements"]],
        thresholds=[ThresholdOutcome(t["name"], Bound(t["bound"]), float(t["limit"]),
                                     float(t["measured"]), CheckStatus[t["status"]], t["subject"],
                                     _unnum(t["warn_limit"])) for t in d["thresholds"]],
        slices=[SliceResult(s["column"], s["value"], s["row_count"],
                            [_measurement(m) for m in s["measurements"]], CheckStatus[s["status"]])
                for s in d["slices"]],
        findings=d["findings"], params=d["params"], duration_s=d["duration_s"])


def report_to_dict(r: ValidationReport, *, with_checks: bool = True) -> dict[str, Any]:
    return {
        "id": r.id, "run_id": r.run_id, "model": r.model, "version": r.version,
        "status": r.status.name, "summary": r.summary,
        "checks": [_check_to_dict(c) for c in r.checks] if with_checks else [],
        "task": r.task.value, "row_count": r.row_count, "dataset": r.dataset, "policy": r.policy,
        "baseline_version": r.baseline_version, "training_dataset": r.training_dataset,
        "dataset_sha256": r.dataset_sha256, "model_uri": r.model_uri,
        "create_time": _time(r.create_time), "duration_s": r.duration_s,
        "report_uri": r.report_uri,
    }


def report_to_json(r: ValidationReport) -> str:
    return json.dumps(report_to_dict(r), indent=None)


def report_from_json(text: str) -> ValidationReport:
    d = json.loads(text)
    return ValidationReport(
        id=d["id"], run_id=d["run_id"], model=d["model"], version=d["version"],
        status=CheckStatus[d["status"]], summary=d["summary"],
        checks=[_check_from_dict(c) for c in d["checks"]], task=TaskType(d["task"]),
        row_count=d["row_count"], dataset=d["dataset"], policy=d["policy"],
        baseline_version=d["baseline_version"], training_dataset=d["training_dataset"],
        dataset_sha256=d["dataset_sha256"], model_uri=d["model_uri"],
        create_time=_parse_time(d["create_time"]), duration_s=d["duration_s"],
        report_uri=d["report_uri"])
