"""Lineage and validation as MLflow model-version tags: the one place they live.

Keeping them as tags (rather than in a table of ours) makes them visible in the
MLflow UI and to the stock client, and keeps one source of truth. The keys:

    modelplane.lineage.dataset_id      featurestore Dataset id
    modelplane.lineage.feature_refs    JSON list of "view:feature"
    modelplane.lineage.code_version    git sha
    modelplane.lineage.experiment_id   the run's experiment
    modelplane.created_by              API key name that registered the version
    modelplane.validation.status       PASS | WARN | FAIL
    modelplane.validation.report_id / .report_uri / .summary / .attached_by / .attach_time_ms

A run can carry lineage for versions registered with the stock client: run
tags ``modelplane.dataset_id`` and ``modelplane.feature_refs`` (JSON list or
comma-separated), and MLflow's own ``mlflow.source.git.commit``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

from modelplane.registry.model import Lineage, Signature, ValidationStatus, ValidationSummary

LINEAGE_PREFIX = "modelplane.lineage."
VALIDATION_PREFIX = "modelplane.validation."
DATASET_ID = LINEAGE_PREFIX + "dataset_id"
FEATURE_REFS = LINEAGE_PREFIX + "feature_refs"
CODE_VERSION = LINEAGE_PREFIX + "code_version"
EXPERIMENT_ID = LINEAGE_PREFIX + "experiment_id"
CREATED_BY = "modelplane.created_by"
VALIDATION_STATUS = VALIDATION_PREFIX + "status"
VALIDATION_REPORT_ID = VALIDATION_PREFIX + "report_id"
VALIDATION_REPORT_URI = VALIDATION_PREFIX + "report_uri"
VALIDATION_SUMMARY = VALIDATION_PREFIX + "summary"
VALIDATION_ATTACHED_BY = VALIDATION_PREFIX + "attached_by"
VALIDATION_ATTACH_TIME = VALIDATION_PREFIX + "attach_time_ms"

RUN_DATASET_ID = "modelplane.dataset_id"
RUN_FEATURE_REFS = "modelplane.feature_refs"
RUN_GIT_COMMIT = "mlflow.source.git.commit"


def parse_feature_refs(text: str) -> tuple[str, ...]:
    text = text.strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            return tuple(str(x) for x in json.loads(text))
        except ValueError:
            pass
    return tuple(part.strip() for part in text.split(",") if part.strip())


def lineage_tags(dataset_id: str, feature_refs: tuple[str, ...], code_version: str,
                 experiment_id: str) -> dict[str, str]:
    tags = {}
    if dataset_id:
        tags[DATASET_ID] = dataset_id
    if feature_refs:
        tags[FEATURE_REFS] = json.dumps(list(feature_refs))
    if code_version:
        tags[CODE_VERSION] = code_version
    if experiment_id:
        tags[EXPERIMENT_ID] = experiment_id
    return tags


def lineage_tags_from_run(run_tags: Mapping[str, str], experiment_id: str) -> dict[str, str]:
    """Version tags derived from the run, for a version registered by the stock client."""
    return lineage_tags(run_tags.get(RUN_DATASET_ID, "").strip(),
                        parse_feature_refs(run_tags.get(RUN_FEATURE_REFS, "")),
                        run_tags.get(RUN_GIT_COMMIT, "").strip(), experiment_id)


def lineage_from_tags(run_id: str, tags: Mapping[str, str], run_tags: Mapping[str, str],
                      run_experiment_id: str, signature: Signature | None) -> Lineage:
    """Version tags first; the run's tags fill what the version lacks."""
    return Lineage(
        run_id=run_id,
        experiment_id=tags.get(EXPERIMENT_ID) or run_experiment_id,
        dataset_id=tags.get(DATASET_ID) or run_tags.get(RUN_DATASET_ID, ""),
        feature_refs=parse_feature_refs(tags.get(FEATURE_REFS)
                                        or run_tags.get(RUN_FEATURE_REFS, "")),
        code_version=tags.get(CODE_VERSION) or run_tags.get(RUN_GIT_COMMIT, ""),
        signature=signature,
    )


def validation_tags(v: ValidationSummary) -> dict[str, str]:
    attach_ms = int((v.attach_time or datetime.now(UTC)).timestamp() * 1000)
    return {
        VALIDATION_STATUS: v.status.value,
        VALIDATION_REPORT_ID: v.report_id,
        VALIDATION_REPORT_URI: v.report_uri,
        VALIDATION_SUMMARY: v.summary,
        VALIDATION_ATTACHED_BY: v.attached_by,
        VALIDATION_ATTACH_TIME: str(attach_ms),
    }


def validation_from_tags(tags: Mapping[str, str]) -> ValidationSummary | None:
    status = tags.get(VALIDATION_STATUS)
    if not status:
        return None
    try:
        parsed = ValidationStatus(status.upper())
    except ValueError:
        return None
    ms = tags.get(VALIDATION_ATTACH_TIME, "")
    return ValidationSummary(
        report_id=tags.get(VALIDATION_REPORT_ID, ""), status=parsed,
        report_uri=tags.get(VALIDATION_REPORT_URI, ""), summary=tags.get(VALIDATION_SUMMARY, ""),
        attached_by=tags.get(VALIDATION_ATTACHED_BY, ""),
        attach_time=datetime.fromtimestamp(int(ms) / 1000,
                                           UTC) if ms.isascii() and ms.isdigit() else None)


def user_visible_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("modelplane.")}
