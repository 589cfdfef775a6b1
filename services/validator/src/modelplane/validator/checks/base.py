"""What every check shares: its catalog entry, its inputs and how limits are judged.

A check is a class with a catalog entry (name, thresholds, parameters, inputs it
needs) and ``run(ctx, cfg) -> CheckResult``. It reads the model and the data
through ``CheckContext``, which computes shared work (predictions, permutation
importance) once per run.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import Bound, CheckResult, CheckStatus, TaskType, ThresholdOutcome
from modelplane.validator.statistics import positive_class, regression_metrics


class Requirement(enum.Enum):
    """An input a check needs beyond the candidate model and the dataset."""

    BASELINE = "baseline_version"
    TRAINING = "training_dataset"
    EVENT_TIME = "event_timestamp_column"
    PROTECTED = "protected_attributes"
    ENTITIES = "entity_columns"
    FEATURESTORE = "featurestore"
    #: something to compare distributions with: the previous version's baseline, a baseline
    #: version or a training dataset (absent: SKIPPED, never a failed precondition)
    DRIFT_REFERENCE = "drift_reference"


@dataclass(frozen=True)
class ThresholdSpec:
    name: str
    bound: Bound
    description: str
    default: float | None = None
    warn_default: float | None = None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: str
    description: str
    kind: type = float  # float, int or str; values are checked before the run starts
    choices: tuple[str, ...] = ()  # the values a str parameter may take (empty = any)


class FeatureParitySource(Protocol):
    """Where the feature-parity check reads both sides for the same entities."""

    def online_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        """Online values: one row per entity row, columns = entity columns + features."""

    def offline_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        """Offline (historical) values as of now for the same entities, same shape."""


@dataclass
class PreviousValidation:
    """A previous version's validation records (its baseline in observability): the
    model inputs by feature name, ``prediction`` and ``score_<class>`` columns."""

    version: str
    frame: pd.DataFrame
    record_count: int = 0


@dataclass
class LoadResult:
    """What a load test against a served deployment saw, request by request."""

    deployment: str
    latencies_s: list[float]
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    rows_per_request: int = 1

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + self.errors


class DeploymentLoad(Protocol):
    """Where the stress check sends requests: a named deployment behind serving."""

    def load_test(self, deployment: str, requests: Sequence[pd.DataFrame], *, concurrency: int,
                  duration_s: float, max_requests: int) -> LoadResult:
        """Send ``requests`` (cycled) with ``concurrency`` in flight, until ``duration_s``
        passed or ``max_requests`` were sent (0 = no count limit). Blocking."""


class HistoricalFeatures(Protocol):
    """Point-in-time feature values from the featurestore, for the backtest's windows."""

    def historical_features(self, entity_rows: pd.DataFrame, timestamp_column: str, *,
                            feature_service: str, feature_refs: Sequence[str],
                            name: str) -> tuple[pd.DataFrame, str]:
        """``entity_rows`` with the features joined as of each row's timestamp (no later
        value), and the id of the featurestore dataset that holds them. Blocking."""


class Predictor:
    """A model object seen through ``predict`` / ``predict_proba`` on a DataFrame.

    Works with scikit-learn estimators and pipelines, MLflow pyfunc models
    (``predict`` only) and anything duck-typed alike.
    """

    def __init__(self, model: Any, name: str = "model") -> None:
        self.model = model
        self.name = name

    @property
    def has_proba(self) -> bool:
        return callable(getattr(self.model, "predict_proba", None))

    @property
    def sklearn_classifier(self) -> bool:
        from sklearn.base import BaseEstimator, is_classifier

        return (isinstance(self.model, BaseEstimator) and bool(is_classifier(self.model))
                and self.classes is not None)

    @property
    def classes(self) -> np.ndarray | None:
        classes = getattr(self.model, "classes_", None)
        return None if classes is None else np.asarray(classes)

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        out = self.model.predict(x)
        if isinstance(out, pd.DataFrame):
            out = out.iloc[:, 0]
        arr = np.asarray(out)
        return arr.ravel() if arr.ndim > 1 and arr.shape[1] == 1 else arr

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray | None:
        if not self.has_proba:
            return None
        return np.asarray(self.model.predict_proba(x), dtype=float)


@dataclass
class ResolvedConfig:
    """A check's config with catalog defaults filled in and parameters typed."""

    check: str
    thresholds: dict[str, float]
    warn_thresholds: dict[str, float]
    params: dict[str, Any]

    def param(self, name: str) -> Any:
        return self.params[name]


class Judge:
    """Applies a check's limits; keeps the worst outcome per threshold."""

    def __init__(self, specs: Sequence[ThresholdSpec], cfg: ResolvedConfig) -> None:
        self._specs = {s.name: s for s in specs}
        self._cfg = cfg
        self.outcomes: dict[str, ThresholdOutcome] = {}

    def status_of(self, name: str, measured: float) -> CheckStatus:
        """PASS / WARN / FAIL of ``measured`` against threshold ``name`` (PASS when unset)."""
        spec = self._specs[name]
        limit = self._cfg.thresholds.get(name)
        warn = self._cfg.warn_thresholds.get(name)
        if math.isnan(measured):
            return CheckStatus.PASS

        def crosses(lim: float) -> bool:
            return measured < lim if spec.bound == Bound.LOWER else measured > lim

        if limit is not None and crosses(limit):
            return CheckStatus.FAIL
        if warn is not None and crosses(warn):
            return CheckStatus.WARN
        return CheckStatus.PASS

    def apply(self, name: str, measured: float, subject: str = "") -> CheckStatus:
        """Judge and record; the recorded outcome is the worst seen for ``name``."""
        spec = self._specs[name]
        limit = self._cfg.thresholds.get(name)
        warn = self._cfg.warn_thresholds.get(name)
        if limit is None and warn is None:
            return CheckStatus.PASS
        status = self.status_of(name, measured)
        prev = self.outcomes.get(name)
        more_extreme = prev is None or math.isnan(prev.measured) or (
            measured < prev.measured if spec.bound == Bound.LOWER else measured > prev.measured)
        if prev is None or status > prev.status or (status == prev.status and more_extreme):
            self.outcomes[name] = ThresholdOutcome(
                name=name, bound=spec.bound, limit=limit if limit is not None else math.nan,
                warn_limit=warn, measured=measured, status=status, subject=subject)
        return status

    @property
    def status(self) -> CheckStatus:
        return max((o.status for o in self.outcomes.values()), default=CheckStatus.PASS)

    def result(self, check: str, **kw: Any) -> CheckResult:
        """A CheckResult with the recorded outcomes and the worst status (unless given)."""
        status = kw.pop("status", None) or self.status
        return CheckResult(check=check, status=status, thresholds=list(self.outcomes.values()),
                           **kw)


class Skip(Exception):
    """Raised by a check whose inputs turn out absent; reported as SKIPPED with the message."""


@dataclass
class CheckContext:
    """Everything a check may read, with shared work computed once."""

    model: Predictor
    data: pd.DataFrame
    policy: Policy
    features: list[str]
    task: TaskType
    baseline: Predictor | None = None
    training: pd.DataFrame | None = None
    parity_source: FeatureParitySource | None = None
    feature_refs: list[str] = field(default_factory=list)
    #: the previous version's validation records, or why there are none
    previous: PreviousValidation | None = None
    previous_missing: str = "no previous version's baseline was looked up"
    deployments: DeploymentLoad | None = None
    history: HistoricalFeatures | None = None
    #: a name for what this run creates elsewhere (featurestore datasets)
    run_name: str = "validation"
    _importance: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.policy.label_column

    @cached_property
    def x(self) -> pd.DataFrame:
        return self.data[self.features]

    @cached_property
    def y(self) -> np.ndarray:
        return self.data[self.label].to_numpy()

    @property
    def seed(self) -> int:
        return self.policy.seed

    @cached_property
    def classes(self) -> np.ndarray:
        """Class labels: the model's ``classes_``, else the labels seen in the data."""
        if self.task != TaskType.CLASSIFICATION:
            return np.array([])
        known = self.model.classes
        if known is not None:
            return known
        seen = pd.unique(np.concatenate([self.y, self.predictions]))
        return np.sort(seen) if seen.dtype != object else np.array(sorted(seen, key=str))

    @cached_property
    def positive(self) -> object | None:
        if self.task != TaskType.CLASSIFICATION or len(self.classes) != 2:
            return None
        return positive_class(self.classes, self.policy.positive_class)

    @cached_property
    def predictions(self) -> np.ndarray:
        return self._labels(self.model, self.probabilities)

    @cached_property
    def probabilities(self) -> np.ndarray | None:
        if self.task != TaskType.CLASSIFICATION:
            return None
        return self.model.predict_proba(self.x)

    @cached_property
    def baseline_predictions(self) -> np.ndarray | None:
        if self.baseline is None:
            return None
        return self._labels(self.baseline, self.baseline_probabilities)

    def _labels(self, model: Predictor, proba: np.ndarray | None) -> np.ndarray:
        """Predicted labels. For scikit-learn classifiers they are ``classes_[argmax(proba)]``
        (what their ``predict`` does), so one pass over the rows serves both; anything
        else is asked for ``predict``."""
        if proba is not None and model.sklearn_classifier:
            classes = model.classes
            assert classes is not None
            return classes[np.argmax(proba, axis=1)]
        return model.predict(self.x)

    @cached_property
    def baseline_probabilities(self) -> np.ndarray | None:
        if self.baseline is None or self.task != TaskType.CLASSIFICATION:
            return None
        return self.baseline.predict_proba(self.x)

    def sample_index(self, frame: pd.DataFrame | None = None,
                     rows: int | None = None) -> np.ndarray:
        """Row positions of a seeded sample of at most ``policy.sample_rows`` rows."""
        n = len(self.data if frame is None else frame)
        limit = rows or self.policy.sample_rows
        if n <= limit:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, size=limit, replace=False))

    def importance(self, which: str = "candidate") -> dict[str, float]:
        """Permutation importance per feature (drop of the primary score), computed once."""
        if which not in self._importance:
            model = self.model if which == "candidate" else self.baseline
            if model is None:
                raise ValueError("no baseline model")
            self._importance[which] = permutation_importance(self, model)
        return self._importance[which]


IMPORTANCE_REPEATS = 3
IMPORTANCE_ROWS = 2500


def primary_score(ctx: CheckContext, model: Predictor, x: pd.DataFrame, y: np.ndarray) -> float:
    """Higher-is-better score: ROC AUC (binary with scores), accuracy, or R² (regression)."""
    if ctx.task == TaskType.REGRESSION:
        return regression_metrics(y, model.predict(x)).get("r2", float("nan"))
    proba = model.predict_proba(x) if len(ctx.classes) == 2 else None
    if proba is not None and len(np.unique(y)) > 1:
        from sklearn.metrics import roc_auc_score

        positive = proba[:, list(ctx.classes).index(ctx.positive)]
        return float(roc_auc_score(y == ctx.positive, positive))
    return float(np.mean(model.predict(x) == y))


class _Fitted:
    """A ``Predictor`` as the fitted estimator ``permutation_importance`` checks for; the
    scorer below calls the model, sklearn only shuffles columns."""

    def __init__(self, model: Predictor) -> None:
        self.model = model

    def fit(self, x: Any, y: Any = None) -> _Fitted:  # pragma: no cover - never called
        raise NotImplementedError("a model under validation is not refitted")


def permutation_importance(ctx: CheckContext, model: Predictor) -> dict[str, float]:
    """Mean drop of the primary score when one feature's values are shuffled:
    ``sklearn.inspection.permutation_importance`` with :func:`primary_score` as the
    scorer, ``IMPORTANCE_REPEATS`` shuffles per feature, on a seeded sample of at most
    ``IMPORTANCE_ROWS`` rows; the policy's seed is sklearn's ``random_state``, so one
    seed gives one result."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    rows = ctx.sample_index(rows=min(ctx.policy.sample_rows, IMPORTANCE_ROWS))
    x = ctx.x.iloc[rows].reset_index(drop=True)
    y = ctx.y[rows]

    def score(estimator: _Fitted, xs: pd.DataFrame, ys: np.ndarray) -> float:
        return primary_score(ctx, estimator.model, xs, ys)

    res = sk_permutation_importance(_Fitted(model), x, y, scoring=score,
                                    n_repeats=IMPORTANCE_REPEATS, random_state=ctx.seed)
    return {f: float(v) for f, v in zip(ctx.features, res.importances_mean, strict=True)}


class Check:
    """Base of the catalog's checks."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    thresholds: ClassVar[tuple[ThresholdSpec, ...]] = ()
    params: ClassVar[tuple[ParamSpec, ...]] = ()
    requires: ClassVar[tuple[Requirement, ...]] = ()
    tasks: ClassVar[tuple[TaskType, ...]] = ()

    def resolve(self, cfg: CheckConfig | None) -> ResolvedConfig:
        """Defaults filled in; assumes ``cfg`` was validated by the plan."""
        cfg = cfg or CheckConfig(check=self.name)
        limits = {s.name: s.default for s in self.thresholds if s.default is not None}
        limits.update(cfg.thresholds)
        warns = {s.name: s.warn_default for s in self.thresholds
                 if s.warn_default is not None and s.name not in cfg.thresholds}
        warns.update(cfg.warn_thresholds)
        params: dict[str, Any] = {}
        for p in self.params:
            raw = cfg.params.get(p.name, p.default)
            params[p.name] = p.kind(raw) if raw != "" or p.kind is str else None
        return ResolvedConfig(self.name, limits, warns, params)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        raise NotImplementedError


ProgressCallback = Callable[[str, int, int], None]
