"""Attribution of the registered model itself (not of a surrogate).

The evaluation store holds a prediction's inputs and its model name and
version; a :class:`ModelLoader` (an adapter over the registry) turns the
version into the model object, and this module explains it with SHAP:

* **Tree models** — scikit-learn decision trees, random forests, extra trees,
  gradient boosting and histogram gradient boosting (without native
  categorical splits, which shap misreads), alone or as the last step of a
  ``Pipeline`` — get exact path-dependent TreeSHAP (``shap.TreeExplainer``)
  on the tree itself. The pipeline's pre-processing is applied to the raw
  features first, and the SHAP values of the columns it makes from one raw
  feature (the one-hot columns of ``city``) are summed into that feature, so
  additivity holds. The output explained is the model's raw output: the
  predicted value (regression); the log-odds of the predicted class (binary
  gradient boosting; the class's raw score with more classes); the
  probability of the predicted class (trees and forests). The expected value
  is the model's mean output over its own training data (TreeSHAP's node
  covers), so no background sample is needed.
* **Any other model** (linear models, SVMs, pipelines whose pre-processing
  mixes features, MLflow pyfunc models returning numbers) gets shap's
  ``PermutationExplainer``, calling the model's own ``predict_proba`` (or
  ``predict``) on raw feature rows: categories reach the model as the
  strings it was trained on and go through its own encoder. Categorical
  columns are masked as integer codes (shap's masker compares values
  numerically) and decoded back before every call. The background is a
  bounded sample of the version's baseline records. The output explained is
  the probability of the predicted class, or the predicted value. The
  attributions add up to the output minus the mean background output
  exactly, by construction (every permutation telescopes from all-masked to
  the record).

Cost (see :class:`ExplainBudget`): TreeSHAP is O(rows × trees × leaves ×
depth²); the permutation explainer calls the model on
``rows × permutations × (2·features + 1) × background`` rows.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from modelplane.kit.errors import FailedPrecondition

TREE_SHAP = "tree_shap"
PERMUTATION_SHAP = "permutation_shap"

#: estimators ``shap.TreeExplainer`` reads exactly (scikit-learn's own classes)
_TREE_MODELS = frozenset({
    "DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier",
    "ExtraTreeRegressor", "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor", "GradientBoostingClassifier",
    "GradientBoostingRegressor", "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor"})
#: boosted models: their raw output is a margin (log-odds), not a probability
_BOOSTED = frozenset({"GradientBoostingClassifier", "HistGradientBoostingClassifier"})

log = logging.getLogger(__name__)


class ModelUnavailable(FailedPrecondition):
    """The version that made the predictions cannot be loaded or explained."""

    def __init__(self, message: str, *, model: str = "", version: str = "") -> None:
        super().__init__(message, reason="MODEL_UNAVAILABLE",
                         metadata={k: v for k, v in (("model", model), ("version", version))
                                   if v})


class ModelLoader(Protocol):
    """Where model objects come from (the registry adapter). Blocking."""

    def load(self, model: str, version: str) -> Any:
        """The model object of ``model`` version ``version``, or :class:`ModelUnavailable`."""
        ...


@dataclass(frozen=True)
class ExplainBudget:
    """What one ExplainPredictions call may cost on the model (settings)."""

    #: baseline records sampled as the permutation explainer's background
    background_rows: int = 100
    #: records one call explains with the permutation explainer (the first ones given)
    max_rows: int = 100
    #: permutations per record (each costs 2·features + 1 model evaluations
    #: of ``background_rows`` rows)
    permutations: int = 2


@dataclass
class ModelAttribution:
    """Attributions of records of one version (in record order)."""

    values: np.ndarray  # records × features
    output: np.ndarray  # the explained output per record
    expected: np.ndarray  # its expected value per record (values sum to output - expected)
    names: list[str]
    method: str
    explained_output: str


def model_features(model: Any, available: list[str]) -> list[str]:
    """The raw feature names the model takes, in its order."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        schema = getattr(getattr(model, "metadata", None), "get_input_schema", None)
        if callable(schema) and schema() is not None:
            names = schema().input_names()
    names = [str(n) for n in names] if names is not None else sorted(available)
    missing = [n for n in names if n not in available]
    if missing:
        raise ModelUnavailable(f"the records lack the model's input feature(s) "
                               f"{', '.join(missing[:5])}")
    return names


def model_input(columns: dict[str, np.ndarray], names: list[str], model: Any) -> Any:
    """Raw feature columns as the DataFrame the model was fitted on (categoricals
    as strings, missing as None / NaN; integer columns of a pyfunc signature as
    int64 when complete)."""
    import pandas as pd

    frame = pd.DataFrame({n: columns[n] for n in names})
    schema = getattr(getattr(model, "metadata", None), "get_input_schema", None)
    if callable(schema) and schema() is not None:
        for spec in schema().inputs:
            name, kind = getattr(spec, "name", None), str(getattr(spec, "type", ""))
            if name in frame and kind.endswith(("long", "integer")) and \
                    frame[name].notna().all():
                frame[name] = frame[name].astype(np.int64)
    return frame


def model_outputs(model: Any, frame: Any) -> tuple[np.ndarray, bool]:
    """The model's output on raw rows: class probabilities (records × classes,
    True) or predicted values (records, False)."""
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(frame), dtype=np.float64), True
    pred = model.predict(frame)
    arr = np.asarray(getattr(pred, "to_numpy", lambda: pred)())
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.dtype.kind not in "fiub" or arr.ndim != 1:
        raise ModelUnavailable("the model's predict returns labels and it has no "
                               "predict_proba: nothing numeric to attribute")
    return arr.astype(np.float64), False


def explain_model(model: Any, columns: dict[str, np.ndarray], names: list[str],
                  background: dict[str, np.ndarray], categorical: set[str],
                  budget: ExplainBudget, seed: int) -> ModelAttribution:
    """SHAP values of ``model`` on the records in ``columns`` (raw features)."""
    with warnings.catch_warnings():  # shap's plotting colormaps, at import
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap  # noqa: F401 - fail early (ImportError) when it is absent

    parts = _tree_parts(model)
    if parts is not None:
        pre, tree = parts
        rows = model_input(columns, names, model)
        groups = None
        if pre is not None:
            sample = model_input({n: np.concatenate([columns[n], background[n]])
                                  for n in names}, names, model)
            groups = _column_groups(pre, sample, names, seed)
        if pre is None or groups is not None:
            return _tree_shap(model, pre, tree, rows, names, groups)
        log.info("the pipeline's pre-processing mixes features: permutation SHAP instead")
    return _permutation_shap(model, columns, names, background, categorical, budget, seed)


def is_tree_model(model: Any) -> bool:
    """Does the model (or its pipeline's last step) get exact TreeSHAP?"""
    return _tree_parts(model) is not None


def _tree_parts(model: Any) -> tuple[Any | None, Any] | None:
    """(pre-processing or None, tree estimator) when TreeSHAP reads the model exactly."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - a dependency
        return None
    est, pre = model, None
    if isinstance(model, Pipeline):
        est = model.steps[-1][1]
        pre = model[:-1] if len(model.steps) > 1 else None
    cls = type(est)
    if cls.__name__ not in _TREE_MODELS or not cls.__module__.startswith("sklearn."):
        return None
    if np.any(getattr(est, "is_categorical_", None) or False):
        return None  # shap misreads scikit-learn's categorical splits
    return pre, est


def _dense(x: Any) -> np.ndarray:
    x = x.toarray() if hasattr(x, "toarray") else x
    return np.asarray(getattr(x, "to_numpy", lambda: x)(), dtype=np.float64)


def _column_groups(pre: Any, sample: Any, names: list[str], seed: int) -> list[int] | None:
    """For each column the pre-processing makes, the raw feature it comes from;
    None when a column depends on several features (or on none we can find).

    Found by changing one raw feature at a time (its values shuffled among the
    sample's rows) and seeing which output columns move; a column that never
    moves (a category absent from the sample) is placed by its output name."""
    base = _dense(pre.transform(sample))
    owner = np.full(base.shape[1], -1)
    rng = np.random.default_rng(seed)
    for j, name in enumerate(names):
        changed = sample.copy()
        values = changed[name].to_numpy()
        changed[name] = values[np.roll(np.arange(len(values)), 1 + int(rng.integers(0, 7)))]
        moved = np.any(~np.isclose(_dense(pre.transform(changed)), base, equal_nan=True),
                       axis=0)
        if np.any(moved & (owner >= 0)):
            return None  # a column made of two raw features
        owner[moved] = j
    if np.any(owner < 0):
        try:
            out_names = [str(n) for n in pre.get_feature_names_out()]
        except Exception:  # noqa: BLE001 - not every transformer names its columns
            return None
        for c in np.flatnonzero(owner < 0):
            bare = out_names[c].split("__", 1)[-1]
            hits = [j for j, n in enumerate(names) if bare == n or bare.startswith(n + "_")]
            if len(hits) != 1:
                return None
            owner[c] = hits[0]
    return owner.tolist()  # type: ignore[no-any-return]


def _tree_shap(model: Any, pre: Any | None, tree: Any, rows: Any, names: list[str],
               groups: list[int] | None) -> ModelAttribution:
    import shap

    X = _dense(pre.transform(rows)) if pre is not None else _dense(rows)
    Xm = X if pre is not None else rows  # the tree's own calls see the names it was fitted on
    explainer = shap.TreeExplainer(tree)
    values = np.asarray(explainer.shap_values(X, check_additivity=True), dtype=np.float64)
    expected = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    n = len(X)
    kind = type(tree).__name__
    if not hasattr(tree, "predict_proba"):
        phi, exp = values, np.full(n, expected[0])
        output, space = np.asarray(tree.predict(Xm), dtype=np.float64), "predicted value"
    else:
        chosen = np.argmax(tree.predict_proba(Xm), axis=1)
        boosted = kind in _BOOSTED
        if values.ndim == 2:  # binary boosting: log-odds of classes_[1]
            sign = np.where(chosen == 1, 1.0, -1.0)
            phi, exp = values * sign[:, None], expected[0] * sign
            output = np.asarray(tree.decision_function(Xm), dtype=np.float64) * sign
            space = "log-odds of the predicted class"
        else:  # records × features × classes
            phi, exp = values[np.arange(n), :, chosen], expected[chosen]
            if boosted:
                output = np.asarray(tree.decision_function(Xm),
                                    dtype=np.float64)[np.arange(n), chosen]
                space = "raw score (multiclass log-odds) of the predicted class"
            else:
                output = tree.predict_proba(Xm)[np.arange(n), chosen].astype(np.float64)
                space = "probability of the predicted class"
    if groups is not None:
        phi = np.column_stack([phi[:, [c for c, g in enumerate(groups) if g == j]].sum(axis=1)
                               for j in range(len(names))])
    return ModelAttribution(phi, output, exp, names, TREE_SHAP, space)


def _codes(column: np.ndarray, categories: list[str]) -> np.ndarray:
    lookup = {c: float(i) for i, c in enumerate(categories)}
    return np.array([lookup[str(v)] if v is not None else np.nan for v in column.tolist()],
                    dtype=np.float64)


def _permutation_shap(model: Any, columns: dict[str, np.ndarray], names: list[str],
                      background: dict[str, np.ndarray], categorical: set[str],
                      budget: ExplainBudget, seed: int) -> ModelAttribution:
    import shap

    cats = {n: sorted({str(v) for v in np.concatenate([columns[n], background[n]]).tolist()
                       if v is not None}) for n in names if n in categorical}

    def encode(cols: dict[str, np.ndarray]) -> np.ndarray:
        return np.column_stack([_codes(cols[n], cats[n]) if n in cats
                                else np.asarray(cols[n], dtype=np.float64) for n in names])

    decoders = {n: np.array(cats[n] + [None], dtype=object) for n in cats}

    def decode(X: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for j, n in enumerate(names):
            if n in decoders:
                codes = X[:, j]
                idx = np.where(np.isnan(codes), len(decoders[n]) - 1, codes).astype(np.int64)
                out[n] = decoders[n][idx]
            else:
                out[n] = X[:, j]
        return out

    def f(X: np.ndarray) -> np.ndarray:
        return model_outputs(model, model_input(decode(X), names, model))[0]

    columns = {n: columns[n][: budget.max_rows] for n in names}
    rows = encode(columns)
    bg = encode(background)
    if len(bg) > budget.background_rows:
        rng = np.random.default_rng(seed)
        bg = bg[np.sort(rng.choice(len(bg), budget.background_rows, replace=False))]
    probs, is_proba = model_outputs(model, model_input(columns, names, model))
    masker = shap.maskers.Independent(bg, max_samples=max(len(bg), 1))
    explainer = shap.PermutationExplainer(f, masker, seed=seed)
    max_evals = max(budget.permutations, 1) * (2 * len(names) + 1)
    res = explainer(rows, max_evals=max_evals, silent=True)
    values = np.asarray(res.values, dtype=np.float64)
    base = np.asarray(res.base_values, dtype=np.float64)
    n = len(rows)
    if is_proba:
        chosen = np.argmax(probs, axis=1)
        return ModelAttribution(values[np.arange(n), :, chosen], probs[np.arange(n), chosen],
                                base[np.arange(n), chosen], names, PERMUTATION_SHAP,
                                "probability of the predicted class")
    return ModelAttribution(values, probs, base.reshape(n), names, PERMUTATION_SHAP,
                            "predicted value")


@dataclass
class ModelImportance:
    """Permutation importance of one version's model on its records."""

    #: features × repeats: the score's drop for each shuffle
    importances: np.ndarray
    names: list[str]
    scoring: str


class _Predictor:
    """A model without ``fit`` (an MLflow pyfunc model) as the fitted estimator
    ``permutation_importance`` checks for; it only ever calls ``predict``."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, X: Any, y: Any = None) -> _Predictor:  # pragma: no cover - never called
        raise NotImplementedError("a registered model is not refitted")

    def predict(self, X: Any) -> Any:
        return self.model.predict(X)


def label_strings(values: Any) -> np.ndarray:
    """Class labels as strings, the same whichever way they were logged
    (``1``, ``1.0`` and ``"1"`` are one label)."""
    arr = np.asarray(getattr(values, "to_numpy", lambda: values)())
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    # vectorised for what models return (the loop below is per record)
    if arr.dtype.kind in "iu":
        return arr.astype(str).astype(object)
    if arr.dtype.kind == "b":
        return np.where(arr, "true", "false").astype(object)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) \
            and np.all(np.abs(arr) < 2.0 ** 53):
        return arr.astype(np.int64).astype(str).astype(object)
    if arr.dtype.kind == "U":
        return arr.astype(object)

    def one(v: Any) -> str:
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v)).lower()
        return str(v)

    return np.array([one(v) for v in arr.tolist()], dtype=object)


def _accuracy(estimator: Any, X: Any, y: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, label_strings(estimator.predict(X))))


def _r2(estimator: Any, X: Any, y: np.ndarray) -> float:
    from sklearn.metrics import r2_score

    pred = estimator.predict(X)
    pred = np.asarray(getattr(pred, "to_numpy", lambda: pred)(), dtype=np.float64)
    return float(r2_score(y, pred.reshape(len(y))))


def is_classifier(model: Any) -> bool:
    """Does the model predict classes (a scikit-learn classifier, or anything
    with ``predict_proba``)?"""
    from sklearn.base import is_classifier as sk_is_classifier

    if hasattr(model, "__sklearn_tags__") and sk_is_classifier(model):
        return True
    return hasattr(model, "predict_proba")


def model_importance(model: Any, columns: dict[str, np.ndarray], names: list[str],
                     actual: np.ndarray | None, classifier: bool, repeats: int,
                     seed: int) -> ModelImportance:
    """Permutation importance of ``model`` on the records in ``columns`` (raw
    features, passed to the model's own predict: its pipeline encodes the
    categories), by ``sklearn.inspection.permutation_importance``.

    The score is accuracy (classifier) or R² (otherwise) against ``actual``
    when given, else against the model's own predictions on the unshuffled
    records — the importance of a feature to what the model outputs, with no
    surrogate and so no fidelity to report. Costs ``1 + features × repeats``
    predict calls on ``len(rows)`` records."""
    from sklearn.inspection import permutation_importance

    X = model_input(columns, names, model)
    estimator = model if hasattr(model, "fit") else _Predictor(model)
    if actual is not None:
        y, against = actual, "the actuals"
    else:
        y, against = model.predict(X), "the model's own predictions"
    if classifier:
        y, scorer, score_name = label_strings(y), _accuracy, "accuracy"
    else:
        y = np.asarray(getattr(y, "to_numpy", lambda: y)(), dtype=np.float64).reshape(len(X))
        scorer, score_name = _r2, "R^2"
    res = permutation_importance(estimator, X, y, scoring=scorer, n_repeats=max(repeats, 1),
                                 random_state=seed)
    return ModelImportance(np.asarray(res.importances, dtype=np.float64), list(names),
                           f"{score_name} against {against}")
