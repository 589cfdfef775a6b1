"""Performance metrics, vectorised with numpy, defined exactly as scikit-learn's.

Classification works on string labels (the store's prediction/actual labels)
and per-class score columns; regression on float arrays. ``zero_division``
is 0.0 (scikit-learn's value after its warning). A metric that is undefined
for the data (ROC AUC or log loss without scores, ROC AUC with one class,
nothing labeled) is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy.stats import rankdata

_NONE = np.array(None, dtype=object)


def is_none(values: np.ndarray) -> np.ndarray:
    """Element-wise ``value is None`` of a column (``np.equal(values, None)``,
    in a form numpy's type stubs accept)."""
    return np.equal(values, _NONE)



class Metric(IntEnum):
    UNSPECIFIED = 0
    ACCURACY = 1
    PRECISION = 2
    RECALL = 3
    F1 = 4
    ROC_AUC = 5
    LOG_LOSS = 6
    MAE = 7
    RMSE = 8
    MAPE = 9


class TaskType(IntEnum):
    UNSPECIFIED = 0
    CLASSIFICATION = 1
    REGRESSION = 2


class ClassAverage(IntEnum):
    UNSPECIFIED = 0
    BINARY = 1
    MACRO = 2
    MICRO = 3
    WEIGHTED = 4


CLASSIFICATION_METRICS = (Metric.ACCURACY, Metric.PRECISION, Metric.RECALL, Metric.F1,
                          Metric.ROC_AUC, Metric.LOG_LOSS)
REGRESSION_METRICS = (Metric.MAE, Metric.RMSE, Metric.MAPE)
#: Metrics where a larger value is better (the others are errors).
HIGHER_IS_BETTER = {Metric.ACCURACY, Metric.PRECISION, Metric.RECALL, Metric.F1, Metric.ROC_AUC}
_EPS = float(np.finfo(np.float64).eps)


def metrics_for(task: TaskType) -> tuple[Metric, ...]:
    return CLASSIFICATION_METRICS if task is TaskType.CLASSIFICATION else REGRESSION_METRICS


def default_positive(labels: Sequence[str], scores: Mapping[str, np.ndarray]) -> str | None:
    """scikit-learn's convention: "1"/"true" when present, else the greater label."""
    present = sorted(set(labels))
    for candidate in ("1", "true"):
        if candidate in present:
            return candidate
    if len(present) == 2:
        return present[1]
    if len(present) < 2 and len(scores) == 1:
        return next(iter(scores))
    return present[-1] if present else None


@dataclass(frozen=True)
class ClassificationData:
    """Labeled rows of a classifier: true and predicted labels, and class scores."""

    y_true: np.ndarray          # object (str)
    y_pred: np.ndarray          # object (str)
    scores: Mapping[str, np.ndarray]  # class -> float64 (NaN = no score)

    def classes(self) -> list[str]:
        labels = set(self.y_true.tolist()) | set(self.y_pred.tolist())
        return sorted(str(v) for v in labels if v is not None)


def positive_scores(data: ClassificationData, positive: str, classes: Sequence[str]
                    ) -> np.ndarray | None:
    """The positive class's score; for two classes, 1 - the other's when only that is given."""
    if positive in data.scores and not np.isnan(data.scores[positive]).any():
        return data.scores[positive]
    others = [c for c in classes if c != positive]
    if len(classes) <= 2 and len(others) == 1 and others[0] in data.scores:
        other = data.scores[others[0]]
        if not np.isnan(other).any():
            return 1.0 - other
    return None


def binary_roc_auc(is_positive: np.ndarray, score: np.ndarray) -> float | None:
    """Mann-Whitney form of the ROC AUC (average ranks for ties) = sklearn's roc_auc_score."""
    n_pos = int(is_positive.sum())
    n_neg = len(is_positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _prf(data: ClassificationData, average: ClassAverage, positive: str | None,
         classes: Sequence[str]) -> tuple[float, float, float]:
    y_true, y_pred = data.y_true, data.y_pred
    if average is ClassAverage.BINARY:
        assert positive is not None
        t = y_true == positive
        p = y_pred == positive
        tp = float(np.sum(t & p))
        fp = float(np.sum(~t & p))
        fn = float(np.sum(t & ~p))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        return prec, rec, f1
    cls = np.asarray(classes, dtype=object)
    t_eq = y_true[:, None] == cls[None, :]
    p_eq = y_pred[:, None] == cls[None, :]
    tp = np.sum(t_eq & p_eq, axis=0).astype(float)
    fp = np.sum(~t_eq & p_eq, axis=0).astype(float)
    fn = np.sum(t_eq & ~p_eq, axis=0).astype(float)
    if average is ClassAverage.MICRO:
        tps, fps, fns = tp.sum(), fp.sum(), fn.sum()
        prec = tps / (tps + fps) if tps + fps else 0.0
        rec = tps / (tps + fns) if tps + fns else 0.0
        f1 = 2 * tps / (2 * tps + fps + fns) if tps + fps + fns else 0.0
        return float(prec), float(rec), float(f1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec_c = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        rec_c = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1_c = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    if average is ClassAverage.WEIGHTED:
        support = tp + fn
        if support.sum() == 0:
            return 0.0, 0.0, 0.0
        w = support / support.sum()
        return float(prec_c @ w), float(rec_c @ w), float(f1_c @ w)
    return float(prec_c.mean()), float(rec_c.mean()), float(f1_c.mean())


def classification_metrics(data: ClassificationData, metrics: Sequence[Metric],
                           positive: str | None = None,
                           average: ClassAverage = ClassAverage.UNSPECIFIED
                           ) -> dict[Metric, float | None]:
    n = len(data.y_true)
    out: dict[Metric, float | None] = {}
    if n == 0:
        return {m: None for m in metrics}
    label_classes = data.classes()
    classes = list(label_classes)
    for key in data.scores:
        if key not in classes:
            classes.append(key)
    classes.sort()
    if positive is None:
        positive = default_positive(list(data.y_true) + list(data.y_pred), data.scores)
    if average is ClassAverage.UNSPECIFIED:
        average = ClassAverage.BINARY if len(classes) <= 2 else ClassAverage.MACRO
    prf: tuple[float, float, float] | None = None
    for metric in metrics:
        if metric is Metric.ACCURACY:
            out[metric] = float(np.mean(data.y_true == data.y_pred))
        elif metric in (Metric.PRECISION, Metric.RECALL, Metric.F1):
            if prf is None:
                prf = _prf(data, average, positive, label_classes)
            out[metric] = prf[(Metric.PRECISION, Metric.RECALL, Metric.F1).index(metric)]
        elif metric is Metric.ROC_AUC:
            out[metric] = _roc_auc(data, positive, classes)
        elif metric is Metric.LOG_LOSS:
            out[metric] = _log_loss(data, positive, classes)
        else:
            out[metric] = None
    return out


def _roc_auc(data: ClassificationData, positive: str | None, classes: list[str]) -> float | None:
    if len(classes) <= 2:
        if positive is None:
            return None
        score = positive_scores(data, positive, classes)
        if score is None:
            return None
        return binary_roc_auc(data.y_true == positive, score)
    # One-vs-rest, macro average (sklearn multi_class="ovr", average="macro").
    if any(c not in data.scores for c in classes):
        return None
    aucs = []
    for c in classes:
        auc = binary_roc_auc(data.y_true == c, data.scores[c])
        if auc is None:
            return None
        aucs.append(auc)
    return float(np.mean(aucs))


def _log_loss(data: ClassificationData, positive: str | None, classes: list[str]) -> float | None:
    if len(classes) <= 2:
        if positive is None:
            return None
        p = positive_scores(data, positive, classes)
        if p is None:
            return None
        p_true = np.where(data.y_true == positive, p, 1.0 - p)
    else:
        if any(c not in data.scores for c in data.y_true.tolist()):
            return None
        matrix = np.column_stack([np.nan_to_num(data.scores.get(c, np.zeros(len(data.y_true))))
                                  for c in classes])
        index = np.searchsorted(np.asarray(classes, dtype=object), data.y_true)
        p_true = matrix[np.arange(len(index)), index]
    return float(np.mean(-np.log(np.clip(p_true, _EPS, 1 - _EPS))))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, metrics: Sequence[Metric]
                       ) -> dict[Metric, float | None]:
    out: dict[Metric, float | None] = {}
    if len(y_true) == 0:
        return {m: None for m in metrics}
    err = y_pred - y_true
    for metric in metrics:
        if metric is Metric.MAE:
            out[metric] = float(np.mean(np.abs(err)))
        elif metric is Metric.RMSE:
            out[metric] = float(np.sqrt(np.mean(err * err)))
        elif metric is Metric.MAPE:
            out[metric] = float(np.mean(np.abs(err) / np.maximum(np.abs(y_true), _EPS)))
        else:
            out[metric] = None
    return out


def error_terms(y_true: np.ndarray, y_pred: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: whether both numbers are there, and the absolute, squared and
    relative error (``|e| / max(|actual|, eps)``; 0 where a number is missing), the
    terms :func:`regression_sums_metrics` sums."""
    ok = ~np.isnan(y_true) & ~np.isnan(y_pred)
    err = np.where(ok, y_pred - y_true, 0.0)
    relative = np.abs(err) / np.maximum(np.abs(np.where(ok, y_true, 1.0)), _EPS)
    return ok, np.abs(err), err * err, relative


def regression_sums_metrics(labeled: int, abs_error: float, squared_error: float,
                            relative_error: float, metrics: Sequence[Metric]
                            ) -> dict[Metric, float | None]:
    """:func:`regression_metrics` from ``labeled`` records' sums of the absolute,
    squared and relative error (``|e| / max(|actual|, eps)``)."""
    if labeled == 0:
        return {m: None for m in metrics}
    out: dict[Metric, float | None] = {}
    for metric in metrics:
        if metric is Metric.MAE:
            out[metric] = abs_error / labeled
        elif metric is Metric.RMSE:
            out[metric] = float(np.sqrt(squared_error / labeled))
        elif metric is Metric.MAPE:
            out[metric] = relative_error / labeled
        else:
            out[metric] = None
    return out


class LabelPairs:
    """The (predicted, actual) label pairs of rows, each row coded once as one integer
    (labels hashed in C, by pandas), so the confusion cells of any rows are a bincount:
    one pass over a window, not a Python loop per group. ``sides`` are (predicted,
    actual) object columns of one or more frames; a row missing either label is in
    no cell."""

    def __init__(self, sides: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        import pandas as pd

        present: set[object] = set()
        for predicted, actual in sides:
            present.update(pd.unique(predicted))
            present.update(pd.unique(actual))
        present.discard(None)
        ordered = sorted(present, key=str)
        self.labels = [str(v) for v in ordered]
        index = pd.Index(ordered, dtype=object)
        k = self.k = len(ordered)
        self.codes: list[np.ndarray] = []
        for predicted, actual in sides:
            p = index.get_indexer(predicted)   # -1: missing
            a = index.get_indexer(actual)
            self.codes.append(np.where((p >= 0) & (a >= 0), p * k + a, k * k))

    def cells(self, side: int = 0, rows: np.ndarray | None = None) -> dict[tuple[str, str], int]:
        """Counts per (predicted, actual) pair of ``rows`` (a mask or indices; None:
        all) of one side."""
        codes = self.codes[side] if rows is None else self.codes[side][rows]
        k = self.k
        counts = np.bincount(codes, minlength=k * k + 1)[:k * k]
        return {(self.labels[i // k], self.labels[i % k]): int(counts[i])
                for i in np.flatnonzero(counts).tolist()}


def confusion_metrics(cells: Mapping[tuple[str, str], int], score_keys: Sequence[str],
                      metrics: Sequence[Metric], positive: str | None = None,
                      average: ClassAverage = ClassAverage.UNSPECIFIED
                      ) -> dict[Metric, float | None]:
    """:func:`classification_metrics` from counts of (predicted, actual) pairs: the
    same accuracy, precision, recall and F1 (same classes, positive class and
    average); ROC AUC and log loss need the scores, so they are None."""
    cells = {k: v for k, v in cells.items() if v > 0}
    n = sum(cells.values())
    if n == 0:
        return {m: None for m in metrics}
    label_classes = sorted({c for pair in cells for c in pair})
    classes = sorted(set(label_classes) | set(score_keys))
    if positive is None:
        positive = default_positive(label_classes, dict.fromkeys(score_keys, _NONE))
    if average is ClassAverage.UNSPECIFIED:
        average = ClassAverage.BINARY if len(classes) <= 2 else ClassAverage.MACRO
    tp = np.array([cells.get((c, c), 0) for c in label_classes], dtype=float)
    fp = np.array([sum(v for (p, a), v in cells.items() if p == c and a != c)
                   for c in label_classes], dtype=float)
    fn = np.array([sum(v for (p, a), v in cells.items() if a == c and p != c)
                   for c in label_classes], dtype=float)
    if average is ClassAverage.BINARY:
        i = label_classes.index(positive) if positive in label_classes else None
        t_p, f_p, f_n = (tp[i], fp[i], fn[i]) if i is not None else (0.0, 0.0, 0.0)
        prf = (t_p / (t_p + f_p) if t_p + f_p else 0.0, t_p / (t_p + f_n) if t_p + f_n else 0.0,
               2 * t_p / (2 * t_p + f_p + f_n) if t_p + f_p + f_n else 0.0)
    elif average is ClassAverage.MICRO:
        tps, fps, fns = tp.sum(), fp.sum(), fn.sum()
        prf = (tps / (tps + fps) if tps + fps else 0.0, tps / (tps + fns) if tps + fns else 0.0,
               2 * tps / (2 * tps + fps + fns) if tps + fps + fns else 0.0)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            prec_c = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
            rec_c = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
            f1_c = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        if average is ClassAverage.WEIGHTED:
            support = tp + fn
            w = support / support.sum() if support.sum() else np.zeros_like(support)
            prf = (float(prec_c @ w), float(rec_c @ w), float(f1_c @ w))
        else:
            prf = (float(prec_c.mean()), float(rec_c.mean()), float(f1_c.mean()))
    out: dict[Metric, float | None] = {}
    for metric in metrics:
        if metric is Metric.ACCURACY:
            out[metric] = float(tp.sum() / n)
        elif metric in (Metric.PRECISION, Metric.RECALL, Metric.F1):
            out[metric] = float(prf[(Metric.PRECISION, Metric.RECALL, Metric.F1).index(metric)])
        else:
            out[metric] = None
    return out
