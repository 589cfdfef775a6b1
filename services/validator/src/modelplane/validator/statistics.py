"""The numbers the checks are made of: metrics, distribution distances, slicing.

Definitions follow scikit-learn (metrics) and the usual drift conventions:
PSI over reference quantile bins (categories for non-numeric data), and the
Jensen-Shannon distance (base 2, in [0, 1]) over the same bins.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as skm

PSI_EPSILON = 1e-4
HIGHER_IS_BETTER = {"accuracy": True, "precision": True, "recall": True, "f1": True,
                    "roc_auc": True, "log_loss": False, "mae": False, "rmse": False,
                    "mape": False, "r2": True}
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "mape", "r2")


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _bins_and_counts(reference: pd.Series, current: pd.Series,
                     bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples over bins from the reference (quantiles or categories)."""
    if is_numeric(reference) and is_numeric(current) and reference.nunique() > bins:
        ref = reference.to_numpy(dtype=float)
        cur = current.to_numpy(dtype=float)
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"),
                                 minlength=len(edges) + 1)
        cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"),
                                 minlength=len(edges) + 1)
        return ref_counts.astype(float), cur_counts.astype(float)
    ref_s = reference.astype("string").fillna("<null>")
    cur_s = current.astype("string").fillna("<null>")
    cats = pd.Index(ref_s.unique()).union(pd.Index(cur_s.unique()))
    ref_counts = ref_s.value_counts().reindex(cats, fill_value=0).to_numpy(dtype=float)
    cur_counts = cur_s.value_counts().reindex(cats, fill_value=0).to_numpy(dtype=float)
    return ref_counts, cur_counts


def distribution_distance(reference: pd.Series, current: pd.Series,
                          bins: int = 10) -> tuple[float, float]:
    """(PSI, Jensen-Shannon distance) of ``current`` against ``reference``."""
    ref_counts, cur_counts = _bins_and_counts(reference, current, bins)
    if ref_counts.sum() == 0 or cur_counts.sum() == 0:
        return float("nan"), float("nan")
    p = np.maximum(ref_counts / ref_counts.sum(), PSI_EPSILON)
    q = np.maximum(cur_counts / cur_counts.sum(), PSI_EPSILON)
    psi = float(np.sum((q - p) * np.log(q / p)))
    js = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2))
    return psi, (0.0 if math.isnan(js) else js)


def positive_class(classes: np.ndarray, wanted: str = "") -> object:
    """The positive label: ``wanted`` when given, else 1 / true, else the greater label."""
    by_text = {str(c).lower(): c for c in classes}
    if wanted:
        if wanted.lower() in by_text:
            return by_text[wanted.lower()]
        raise KeyError(wanted)
    for candidate in ("1", "true", "1.0"):
        if candidate in by_text:
            return by_text[candidate]
    return max(classes, key=str) if classes.dtype == object else np.sort(classes)[-1]


def classification_metrics(y: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                           classes: np.ndarray, positive: object) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (binary: of ``positive``; else macro), ROC AUC, log loss."""
    out: dict[str, float] = {"accuracy": float(np.mean(y == y_pred))} if len(y) else {}
    if not len(y):
        return out
    binary = len(classes) == 2
    kw = {"pos_label": positive, "average": "binary"} if binary else {"average": "macro"}
    out["precision"] = float(skm.precision_score(y, y_pred, zero_division=0, **kw))
    out["recall"] = float(skm.recall_score(y, y_pred, zero_division=0, **kw))
    out["f1"] = float(skm.f1_score(y, y_pred, zero_division=0, **kw))
    if proba is not None and len(np.unique(y)) > 1:
        if binary:
            pos_index = list(classes).index(positive)
            out["roc_auc"] = float(skm.roc_auc_score(y == positive, proba[:, pos_index]))
        elif set(np.unique(y)) <= set(classes):
            try:
                out["roc_auc"] = float(skm.roc_auc_score(y, proba, multi_class="ovr",
                                                         labels=classes))
            except ValueError:
                pass
        try:
            out["log_loss"] = float(skm.log_loss(y, np.clip(proba, 1e-15, 1), labels=classes))
        except ValueError:
            pass
    return out


def regression_metrics(y: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE (rows with a zero target left out), R²."""
    if not len(y):
        return {}
    y = y.astype(float)
    err = y_pred.astype(float) - y
    out = {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2)))}
    nonzero = y != 0
    if nonzero.any():
        out["mape"] = float(np.mean(np.abs(err[nonzero] / y[nonzero])))
    var = float(np.var(y))
    if var > 0 and len(y) > 1:
        out["r2"] = float(1 - np.mean(err ** 2) / var)
    return out


def degradation(metric: str, candidate: float, baseline: float) -> tuple[float, float]:
    """How much worse the candidate is: (absolute, relative to |baseline|); negative = better."""
    worse = (baseline - candidate) if HIGHER_IS_BETTER.get(metric, True) else (candidate - baseline)
    rel = worse / abs(baseline) if baseline != 0 else (0.0 if worse == 0 else math.inf)
    return worse, rel


def slice_masks(values: pd.Series, bins: int = 4,
                max_categories: int = 50) -> Iterator[tuple[str, np.ndarray]]:
    """(label, row mask) per category, or per quantile bin ``[lo, hi)`` of a numeric column."""
    if is_numeric(values) and values.nunique() > max(bins, 10):
        v = values.to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(v, np.linspace(0, 1, bins + 1)))
        for i in range(len(edges) - 1):
            lo, hi = edges[i], edges[i + 1]
            last = i == len(edges) - 2
            mask = (v >= lo) & ((v <= hi) if last else (v < hi))
            yield f"[{lo:.4g}, {hi:.4g}{']' if last else ')'}", mask
        if np.isnan(v).any():
            yield "<null>", np.isnan(v)
        return
    text = values.astype("string").fillna("<null>")
    counts = text.value_counts()
    for value in counts.index[:max_categories]:
        yield str(value), (text == value).to_numpy()
