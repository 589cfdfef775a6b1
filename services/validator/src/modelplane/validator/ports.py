"""What the validation service needs from the rest of the platform, as interfaces.

The service depends on these; ``adapters/`` implements them over the registry,
featurestore and observability contracts (and MLflow), tests may pass their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from modelplane.validator.checks.base import (
    DeploymentLoad,
    FeatureParitySource,
    HistoricalFeatures,
    PreviousValidation,
)
from modelplane.validator.report import ValidationReport
from modelplane.validator.run import DatasetRef


@dataclass
class ModelVersionInfo:
    """A registered model version as the validator needs it."""

    model: str
    version: str
    #: where the artifacts download from (MLflow URI) and the tracking server to use
    download_uri: str
    tracking_uri: str = ""
    #: the model's input columns from its signature (empty = unknown)
    input_columns: list[str] = field(default_factory=list)
    #: lineage
    run_id: str = ""
    dataset_id: str = ""
    feature_refs: list[str] = field(default_factory=list)


@dataclass
class DatasetInfo:
    """A dataset's shape, known before its rows are read."""

    ref: DatasetRef
    columns: list[str]
    row_count: int = -1
    join_keys: list[str] = field(default_factory=list)
    timestamp_column: str = ""
    feature_refs: list[str] = field(default_factory=list)
    content_hash: str = ""


class ModelRegistry(Protocol):
    async def get_version(self, model: str, version: str) -> ModelVersionInfo:
        """The version; NotFound naming the model or version when unknown."""

    async def resolve_alias(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version an alias points at; None when the alias is not set."""

    async def attach_validation(self, model: str, version: str, report: ValidationReport) -> None:
        """Attach the report's summary (status, id, artifact URI) to the version."""


class ModelLoader(Protocol):
    def load(self, info: ModelVersionInfo) -> Any:
        """A model object with ``predict`` (and ``predict_proba`` when it has one). Blocking."""

    def publish_report(self, info: ModelVersionInfo, report: ValidationReport, body: str) -> str:
        """Store the report JSON as an artifact next to the model; return its URI. Blocking."""


class DatasetSource(Protocol):
    async def describe(self, ref: DatasetRef, field: str = "dataset") -> DatasetInfo:
        """Columns and keys; NotFound / InvalidArgument / PermissionDenied naming the
        dataset (as request ``field``) when unusable."""

    async def load(self, ref: DatasetRef, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows."""

    def parity_source(self) -> FeatureParitySource | None:
        """Offline/online feature reads for the parity check; None without a featurestore."""

    def history_source(self) -> HistoricalFeatures | None:
        """Point-in-time feature joins for the backtest's windows; None without a featurestore."""


class BaselineSink(Protocol):
    async def set_baseline(self, report: ValidationReport, records: pd.DataFrame) -> None:
        """Hand the version's validation predictions and metrics to observability."""


class BaselineSource(Protocol):
    async def previous_validation(self, model: str, version: str,
                                  max_rows: int) -> tuple[PreviousValidation | None, str]:
        """A version's validation records (its baseline in observability), at most
        ``max_rows`` of them; or None and why (no baseline set, no records)."""


class DeploymentTarget(Protocol):
    def deployment_load(self) -> DeploymentLoad | None:
        """The load client for named deployments; None when no serving peer is configured."""
