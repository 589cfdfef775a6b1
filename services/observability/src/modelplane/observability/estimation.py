"""Classifier performance estimated without ground truth (confidence-based
performance estimation, CBPE).

If the scores are calibrated probabilities, the expected confusion matrix of
a set of predictions follows from the scores alone: a prediction of the
positive class with score p is a true positive with probability p and a false
positive with 1 - p. Scores are first calibrated on the reference's labeled
records (isotonic regression, one-vs-rest for multiclass) when it has at
least ``MIN_CALIBRATION`` of them; otherwise they are taken as they are.

Estimated metrics: accuracy, precision, recall, F1 (binary: positive class;
multiclass: macro) and ROC AUC (the area under the expected ROC curve over
thresholds on the model's own score, the records' labels expected from the
calibrated probabilities; multiclass: the macro mean one-vs-rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modelplane.observability import metrics as M
from modelplane.observability.store.frames import Frame

MIN_CALIBRATION = 100


@dataclass
class ScoreEstimator:
    classes: list[str]
    positive: str | None
    calibrators: dict[str, object] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return bool(self.calibrators)

    @classmethod
    def fit(cls, reference: Frame, positive: str | None) -> ScoreEstimator:
        from sklearn.isotonic import IsotonicRegression

        labels = [str(x) for x in reference.prediction_label.tolist() if x is not None]
        labels += [str(x) for x in reference.actual_label.tolist() if x is not None]
        classes = sorted(set(labels) | set(reference.scores))
        if positive is None and len(classes) <= 2:
            positive = M.default_positive(labels, reference.scores)
        est = cls(classes, positive)
        labeled = ~M.is_none(reference.actual_label)
        if labeled.sum() < MIN_CALIBRATION:
            return est
        y = reference.actual_label[labeled]
        targets = [positive] if len(classes) <= 2 and positive is not None else classes
        for c in targets:
            s = _class_score(reference, c, classes, positive)
            if s is None:
                continue
            s = s[labeled]
            ok = ~np.isnan(s)
            if ok.sum() < MIN_CALIBRATION:
                continue
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            iso.fit(s[ok], (y[ok] == c).astype(float))
            est.calibrators[c] = iso
        return est

    def _probability(self, frame: Frame, c: str) -> np.ndarray | None:
        s = _class_score(frame, c, self.classes, self.positive)
        if s is None:
            return None
        iso = self.calibrators.get(c)
        if iso is not None:
            s = np.where(np.isnan(s), s, iso.predict(np.nan_to_num(s)))  # type: ignore[attr-defined]
        return s

    def estimate(self, frame: Frame) -> dict[M.Metric, float | None]:
        out: dict[M.Metric, float | None] = {m: None for m in
                                             (M.Metric.ACCURACY, M.Metric.PRECISION,
                                              M.Metric.RECALL, M.Metric.F1, M.Metric.ROC_AUC)}
        if len(frame) == 0:
            return out
        if len(self.classes) <= 2 and self.positive is not None:
            p = self._probability(frame, self.positive)
            score = _class_score(frame, self.positive, self.classes, self.positive)
            if p is None or score is None:
                return out
            ok = ~np.isnan(p)
            p, score = p[ok], score[ok]
            pred = frame.prediction_label[ok]
            is_pos = np.where(M.is_none(pred), p >= 0.5, pred == self.positive)
            tp = float(p[is_pos].sum())
            fp = float((1 - p[is_pos]).sum())
            fn = float(p[~is_pos].sum())
            tn = float((1 - p[~is_pos]).sum())
            n = tp + fp + fn + tn
            out[M.Metric.ACCURACY] = (tp + tn) / n if n else None
            out[M.Metric.PRECISION] = tp / (tp + fp) if tp + fp else 0.0
            out[M.Metric.RECALL] = tp / (tp + fn) if tp + fn else 0.0
            out[M.Metric.F1] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
            out[M.Metric.ROC_AUC] = expected_roc_auc(p, score)
            return out
        probs = {c: self._probability(frame, c) for c in self.classes}
        if any(v is None for v in probs.values()):
            return out
        matrix = np.column_stack([np.nan_to_num(probs[c]) for c in self.classes])  # type: ignore[arg-type]
        total = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)
        cls = np.asarray(self.classes, dtype=object)
        pred = frame.prediction_label
        pred_idx = np.where(M.is_none(pred), matrix.argmax(axis=1),
                            np.searchsorted(cls, np.where(M.is_none(pred), cls[0], pred)))
        rows = np.arange(len(frame))
        out[M.Metric.ACCURACY] = float(matrix[rows, pred_idx].mean())
        precs, recs, f1s = [], [], []
        for k in range(len(self.classes)):
            is_k = pred_idx == k
            tp = matrix[is_k, k].sum()
            fp = (1 - matrix[is_k, k]).sum()
            fn = matrix[~is_k, k].sum()
            precs.append(tp / (tp + fp) if tp + fp else 0.0)
            recs.append(tp / (tp + fn) if tp + fn else 0.0)
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        out[M.Metric.PRECISION] = float(np.mean(precs))
        out[M.Metric.RECALL] = float(np.mean(recs))
        out[M.Metric.F1] = float(np.mean(f1s))
        # thresholds on the model's own score of each class, expected labels from the
        # calibrated, normalized probabilities (which rank records differently)
        aucs = [expected_roc_auc(matrix[:, k],
                                 np.nan_to_num(_class_score(frame, c, self.classes,
                                                            self.positive)))  # type: ignore[arg-type]
                for k, c in enumerate(self.classes)]
        known = [a for a in aucs if a is not None]
        out[M.Metric.ROC_AUC] = float(np.mean(known)) if len(known) == len(aucs) else None
        return out


def _class_score(frame: Frame, c: str, classes: list[str], positive: str | None
                 ) -> np.ndarray | None:
    if c in frame.scores:
        return frame.scores[c]
    others = [k for k in classes if k != c]
    if len(classes) <= 2 and len(others) == 1 and others[0] in frame.scores:
        return 1.0 - frame.scores[others[0]]
    return None


def expected_roc_auc(p: np.ndarray, score: np.ndarray | None = None) -> float | None:
    """Area under the ROC curve expected when each record is positive with probability p,
    over thresholds on the model's ``score`` (default: p itself)."""
    if len(p) == 0:
        return None
    pos, neg = p.sum(), (1 - p).sum()
    if pos <= 0 or neg <= 0:
        return None
    s = p if score is None else score
    order = np.argsort(-s, kind="stable")
    ps, ss = p[order], s[order]
    # One threshold per distinct score: cumulative expected TP / FP at its last record.
    last = np.append(ss[1:] != ss[:-1], True)
    tpr = np.concatenate([[0.0], np.cumsum(ps)[last] / pos])
    fpr = np.concatenate([[0.0], np.cumsum(1 - ps)[last] / neg])
    return float(np.trapezoid(tpr, fpr))
