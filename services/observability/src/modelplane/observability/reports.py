"""What the analyses answer: performance, drift, proxy performance, root cause,
feature importance and explanations, each with how it was computed
(``AnalysisMode``: exact, sampled or from profiles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from modelplane.observability import metrics as M
from modelplane.observability.analysis_limits import AnalysisMode, Sampling
from modelplane.observability.drift import SampleDrift
from modelplane.observability.records import (
    ColumnKind,
    ColumnRef,
    SlicePredicate,
    TimeWindow,
    describe_slice,
)

MetricValues = dict[M.Metric, float | None]


@dataclass
class PerformanceGroup:
    record_count: int
    labeled_count: int
    metrics: MetricValues
    window: TimeWindow | None = None
    slice: tuple[SlicePredicate, ...] | None = None


@dataclass
class PerformanceReport:
    task: M.TaskType
    overall: PerformanceGroup
    windows: list[PerformanceGroup]
    slices: list[PerformanceGroup]
    mode: AnalysisMode = AnalysisMode.EXACT
    #: SAMPLE: records read (all sides) and records in the windows they were drawn from
    sample_size: int = 0
    population_size: int = 0


@dataclass
class ColumnDriftResult:
    column: ColumnRef
    kind: ColumnKind
    drift: SampleDrift


@dataclass
class DriftReport:
    columns: list[ColumnDriftResult]
    reference_count: int
    current_count: int
    mode: AnalysisMode = AnalysisMode.EXACT
    #: PROFILE: the sketches' normalized rank error ε
    rank_error: float = 0.0
    #: PROFILE: hourly profiles merged (both sides)
    profile_buckets: int = 0
    #: SAMPLE: records read (both sides) and records in the windows
    sample_size: int = 0
    population_size: int = 0

    @property
    def drifted_share(self) -> float:
        if not self.columns:
            return 0.0
        return sum(c.drift.drifted for c in self.columns) / len(self.columns)


@dataclass
class ProxyGroup:
    record_count: int
    estimated: MetricValues
    prediction_drift: list[ColumnDriftResult]
    window: TimeWindow | None = None


@dataclass
class ProxyReport:
    overall: ProxyGroup
    windows: list[ProxyGroup]
    reference_metrics: MetricValues
    calibrated: bool
    mode: AnalysisMode = AnalysisMode.EXACT
    sample_size: int = 0
    population_size: int = 0


@dataclass
class SliceContribution:
    slice: tuple[SlicePredicate, ...]
    contribution: float
    contribution_share: float
    reference_count: int
    current_count: int
    reference_value: float
    current_value: float
    #: share of the change / the slice's share of the records (the larger side)
    lift: float = 0.0
    #: what the slices are ranked by (see ``_contribution``)
    score: float = 0.0

    @property
    def display_name(self) -> str:
        return describe_slice(self.slice)


@dataclass
class RootCauseReport:
    reference_value: float
    current_value: float
    slices: list[SliceContribution]
    mode: AnalysisMode = AnalysisMode.EXACT
    sample_size: int = 0
    population_size: int = 0


@dataclass
class Importance:
    feature: str
    value: float
    std: float = 0.0


class Explainer(IntEnum):
    """What ExplainPredictions and ComputeFeatureImportance explain (numbers as
    in the contract)."""

    UNSPECIFIED = 0  # the model; the surrogate when it cannot be loaded
    MODEL = 1  # the model, or FAILED_PRECONDITION
    SURROGATE = 2


#: what a surrogate's fidelity was measured against
FIDELITY_R2_AGAINST_MODEL = "r2_against_model"
FIDELITY_ACCURACY_AGAINST_LOGGED = "accuracy_against_logged"
FIDELITY_R2_AGAINST_LOGGED = "r2_against_logged"
FIDELITY_ACCURACY_AGAINST_ACTUAL = "accuracy_against_actual"
FIDELITY_R2_AGAINST_ACTUAL = "r2_against_actual"
#: a surrogate's per-prediction methods, as reported
SURROGATE_TREE_SHAP = "surrogate_tree_shap"


@dataclass
class ImportanceReport:
    importances: list[Importance]
    #: the surrogate's, when one answered (else 0)
    fidelity: float
    record_count: int
    #: MODEL (the records' own versions) or SURROGATE
    explainer: Explainer = Explainer.SURROGATE
    #: FIDELITY_* when a surrogate answered
    fidelity_measure: str = ""
    #: why a surrogate answered although the model was asked for
    fallback_reason: str = ""
    #: the score whose drop is the importance, in words
    scoring: str = ""
    #: the versions whose models were explained
    versions: list[str] = field(default_factory=list)


@dataclass
class ExplanationReport:
    attributions: dict[str, dict[str, float]]
    fidelity: float
    #: model_explanation.TREE_SHAP / PERMUTATION_SHAP (the model), or
    #: SURROGATE_TREE_SHAP / attribution.OCCLUSION (a surrogate).
    method: str = "occlusion"
    #: FIDELITY_* when a surrogate answered
    fidelity_measure: str = ""
    explained_output: str = ""
    #: why a surrogate answered although the model was asked for
    fallback_reason: str = ""
    #: per prediction id: the version explained, the output and its expected value
    versions: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)


_Report = TypeVar("_Report", PerformanceReport, DriftReport, RootCauseReport, ProxyReport)


def stamp(report: _Report, plan: Sampling | None) -> _Report:
    """SAMPLE and the sizes when a read of the analysis was sampled, else EXACT."""
    if plan is not None and plan.sampled:
        report.mode = AnalysisMode.SAMPLE
        report.sample_size = plan.sample_size
        report.population_size = plan.population_size
    return report
