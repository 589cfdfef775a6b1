"""Where one prediction comes from (GetPredictionLineage).

The record is observability's own; the rest is asked of the peers that hold it,
each through an adapter (``adapters/``) that may be absent or down:

- **registry** (``GetModelVersion``): the version's run, experiment, training
  dataset id, feature refs, code version, aliases and the validation summary
  attached to it (report id, status);
- **featurestore** (``GetDataset``): the training dataset's name, version and
  content hash;
- **validator** (``GetValidationReport``): the report's dataset, its SHA-256 as
  validated, rows, baseline version;
- **serving** (``ListRollouts``, ``ListRolloutEvents``): the rollout on the
  record's deployment (from the record's ``deployment`` tag, as serving logs
  it; else any rollout of the record's model whose champion or challenger is
  the record's version) active at the prediction time, and its step then (the
  last event at or before that time).

A peer that is not configured, down or refusing adds a :class:`Missing` entry
(part, service, reason) and the rest of the answer stands; only an unknown
prediction id fails the call (NOT_FOUND, raised by the caller).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from modelplane.observability.records import EvaluationRecord
from modelplane.observability.store.base import EvaluationStore, ScanSpec
from modelplane.observability.store.frames import record_from_json

#: rollout states after which the rollout no longer routes traffic
TERMINAL_ROLLOUT_STATES = frozenset({"ROLLOUT_STATE_PROMOTED", "ROLLOUT_STATE_ROLLED_BACK",
                                     "ROLLOUT_STATE_ABORTED", "ROLLOUT_STATE_FAILED"})


class PeerError(Exception):
    """A peer could not answer: ``reason`` says why, in words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ValidationRef:
    report_id: str
    status: str
    summary: str = ""
    report_uri: str = ""


@dataclass
class VersionInfo:
    run_id: str = ""
    experiment_id: str = ""
    dataset_id: str = ""
    feature_refs: list[str] = field(default_factory=list)
    code_version: str = ""
    source: str = ""
    aliases: list[str] = field(default_factory=list)
    validation: ValidationRef | None = None


@dataclass
class DatasetInfo:
    id: str
    name: str = ""
    version: int = 0
    content_hash: str = ""
    row_count: int = 0
    storage_uri: str = ""


@dataclass
class ReportInfo:
    id: str
    status: str = ""
    summary: str = ""
    dataset: str = ""
    dataset_sha256: str = ""
    row_count: int = 0
    baseline_version: str = ""
    create_time: datetime | None = None


@dataclass
class RolloutInfo:
    name: str
    deployment: str
    challenger_model: str
    challenger_version: str
    champion_version: str
    create_time: datetime | None = None


@dataclass
class RolloutEventInfo:
    sequence: int
    time: datetime
    state: str
    step: int
    weight: float


@dataclass
class RolloutAt:
    rollout: str
    deployment: str
    role: str
    step: int
    weight: float
    state: str
    event_sequence: int
    event_time: datetime
    matched_by: str


@dataclass
class Missing:
    part: str
    service: str
    reason: str


class ModelVersions(Protocol):
    async def model_version(self, model: str, version: str) -> VersionInfo: ...


class Datasets(Protocol):
    async def dataset(self, dataset_id: str) -> DatasetInfo: ...


class ValidationReports(Protocol):
    async def report(self, report_id: str) -> ReportInfo: ...


class Rollouts(Protocol):
    async def rollouts(self, deployment: str) -> list[RolloutInfo]: ...

    async def events(self, rollout: str) -> list[RolloutEventInfo]: ...


@dataclass
class LineagePeers:
    """The peers' adapters; None = not configured in this service."""

    registry: ModelVersions | None = None
    featurestore: Datasets | None = None
    validator: ValidationReports | None = None
    serving: Rollouts | None = None


@dataclass
class PredictionLineage:
    record: EvaluationRecord
    deployment: str
    route: str
    version: VersionInfo | None = None
    dataset: DatasetInfo | None = None
    validation: ValidationRef | None = None
    report: ReportInfo | None = None
    rollout: RolloutAt | None = None
    rollout_note: str = ""
    missing: list[Missing] = field(default_factory=list)


def load_record(store: EvaluationStore, prediction_id: str) -> EvaluationRecord | None:
    """One record by prediction id, with its actual; None when the store has none.
    Blocking."""
    model = store.model_of(prediction_id)
    if model is None:
        return None
    data = store.scan(ScanSpec(model, prediction_ids=(prediction_id,)))
    lines = [ln for ln in data.splitlines() if ln.strip()]
    return record_from_json(json.loads(lines[0]), model) if lines else None


_NOT_CONFIGURED = "not configured in this service"


async def prediction_lineage(record: EvaluationRecord, peers: LineagePeers) -> PredictionLineage:
    """Everything the peers can tell about ``record``; what they cannot is in ``missing``."""
    out = PredictionLineage(record, record.tags.get("deployment", ""),
                            record.tags.get("route", ""))
    await _version(out, peers)
    await _rollout(out, peers)
    return out


async def _version(out: PredictionLineage, peers: LineagePeers) -> None:
    rec = out.record
    if peers.registry is None:
        out.missing.append(Missing("model_version", "registry", _NOT_CONFIGURED))
    elif not rec.version.isdigit():
        out.missing.append(Missing("model_version", "registry",
                                   f"version {rec.version!r} is not a registry version number"))
    else:
        try:
            out.version = await peers.registry.model_version(rec.model, rec.version)
        except PeerError as exc:
            out.missing.append(Missing("model_version", "registry", exc.reason))
    if out.version is None:
        return
    out.validation = out.version.validation
    if out.version.dataset_id:
        if peers.featurestore is None:
            out.missing.append(Missing("dataset", "featurestore", _NOT_CONFIGURED))
        else:
            try:
                out.dataset = await peers.featurestore.dataset(out.version.dataset_id)
            except PeerError as exc:
                out.missing.append(Missing("dataset", "featurestore", exc.reason))
    if out.validation is not None and out.validation.report_id:
        if peers.validator is None:
            out.missing.append(Missing("validation_report", "validator", _NOT_CONFIGURED))
        else:
            try:
                out.report = await peers.validator.report(out.validation.report_id)
            except PeerError as exc:
                out.missing.append(Missing("validation_report", "validator", exc.reason))


async def _rollout(out: PredictionLineage, peers: LineagePeers) -> None:
    rec = out.record
    if rec.prediction_time is None:
        out.rollout_note = "could not be determined: the record has no prediction time"
        return
    if peers.serving is None:
        out.missing.append(Missing("rollout", "serving", _NOT_CONFIGURED))
        out.rollout_note = "could not be determined: serving is not reachable from here"
        return
    try:
        candidates = await peers.serving.rollouts(out.deployment)
        if out.deployment:
            matched_by = "deployment"
            candidates = [r for r in candidates if r.deployment == out.deployment]
        else:
            matched_by = "model_version"
            candidates = [r for r in candidates
                          if r.challenger_model in ("", rec.model)
                          and rec.version in (r.challenger_version, r.champion_version)]
        active: list[RolloutAt] = []
        for r in candidates:
            if r.create_time is not None and r.create_time > rec.prediction_time:
                continue
            at = _step_at(r, await peers.serving.events(r.name), rec.prediction_time,
                          rec.version, matched_by)
            if at is not None:
                active.append(at)
    except PeerError as exc:
        out.missing.append(Missing("rollout", "serving", exc.reason))
        out.rollout_note = "could not be determined: serving did not answer"
        return
    where = (f"deployment {out.deployment!r}" if out.deployment else
             f"model {rec.model!r} version {rec.version!r} (the record names no deployment)")
    if not active:
        out.rollout_note = f"no rollout of {where} was active at the prediction time"
    elif len(active) > 1:
        out.rollout_note = (f"could not be determined: {len(active)} rollouts of {where} were "
                            f"active at the prediction time "
                            f"({', '.join(sorted(a.rollout for a in active))})")
    else:
        out.rollout = active[0]
        out.rollout_note = f"matched by {matched_by}"


def _step_at(r: RolloutInfo, events: Sequence[RolloutEventInfo], t: datetime, version: str,
             matched_by: str) -> RolloutAt | None:
    """The rollout's step at ``t`` (its last event at or before ``t``), or None when it
    had not started or had already ended then."""
    before = [e for e in events if e.time <= t]
    if not before:
        return None
    last = max(before, key=lambda e: e.sequence)
    if last.state in TERMINAL_ROLLOUT_STATES:
        return None
    role = ("challenger" if version == r.challenger_version else
            "champion" if version == r.champion_version else "")
    return RolloutAt(r.name, r.deployment, role, last.step, last.weight, last.state,
                     last.sequence, last.time, matched_by)


__all__ = ["DatasetInfo", "LineagePeers", "Missing", "PeerError", "PredictionLineage",
           "ReportInfo", "RolloutAt", "RolloutEventInfo", "RolloutInfo", "ValidationRef",
           "VersionInfo", "load_record", "prediction_lineage"]
