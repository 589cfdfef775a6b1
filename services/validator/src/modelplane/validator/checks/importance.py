"""Check 4: permutation feature importance and how it changed vs the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ..report import Bound, CheckResult, Measurement, TaskType
from ..statistics import regression_metrics
from .base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    Predictor,
    ResolvedConfig,
    ThresholdSpec,
)

IMPORTANCE_REPEATS = 3
IMPORTANCE_ROWS = 2500


def primary_score(ctx: CheckContext, model: Predictor, x: pd.DataFrame, y: np.ndarray) -> float:
    """Higher-is-better score: ROC AUC (binary with scores), accuracy, or R² (regression)."""
    if ctx.task == TaskType.REGRESSION:
        return regression_metrics(y, model.predict(x)).get("r2", float("nan"))
    proba = model.predict_proba(x) if len(ctx.classes) == 2 else None
    if proba is not None and len(np.unique(y)) > 1:
        return _auc(ctx, y, proba)
    return float(np.mean(model.predict(x) == y))


def _auc(ctx: CheckContext, y: np.ndarray, proba: np.ndarray) -> float:
    return float(roc_auc_score(y == ctx.positive, proba[:, list(ctx.classes).index(ctx.positive)]))


def permutation_importance(ctx: CheckContext, model: Predictor) -> dict[str, float]:
    """Mean drop of the primary score when one feature's values are shuffled.

    On a seeded sample (at most ``IMPORTANCE_ROWS`` rows), ``IMPORTANCE_REPEATS``
    shuffles per feature, all features' shuffled copies scored in one batch per
    repeat so a model with per-call overhead is called few times.
    """
    rows = ctx.sample_index(rows=min(ctx.policy.sample_rows, IMPORTANCE_ROWS))
    x = ctx.x.iloc[rows].reset_index(drop=True)
    y = ctx.y[rows]
    base = primary_score(ctx, model, x, y)
    rng = np.random.default_rng(ctx.seed)
    drops: dict[str, list[float]] = {f: [] for f in ctx.features}
    n = len(x)
    for _ in range(IMPORTANCE_REPEATS):
        blocks = []
        for feature in ctx.features:
            shuffled = x.copy()
            shuffled[feature] = x[feature].to_numpy()[rng.permutation(n)]
            blocks.append(shuffled)
        stacked = pd.concat(blocks, ignore_index=True)
        ys = np.tile(y, len(ctx.features))
        if ctx.task == TaskType.REGRESSION:
            values = model.predict(stacked)
            for i, feature in enumerate(ctx.features):
                part = slice(i * n, (i + 1) * n)
                drops[feature].append(base - regression_metrics(ys[part], values[part]).get("r2",
                                                                                            np.nan))
            continue
        proba = model.predict_proba(stacked) if len(ctx.classes) == 2 else None
        pred: np.ndarray | None = (None if proba is not None and len(np.unique(y)) > 1
                                   else model.predict(stacked))
        for i, feature in enumerate(ctx.features):
            part = slice(i * n, (i + 1) * n)
            if pred is None:
                assert proba is not None
                score = _auc(ctx, y, proba[part])
            else:
                score = float(np.mean(pred[part] == ys[part]))
            drops[feature].append(base - score)
    return {f: float(np.mean(v)) for f, v in drops.items()}


class FeatureImportanceCheck(Check):
    name = "feature_importance"
    title = "Permutation feature importance and its change vs the baseline"
    description = ("Drop of the primary score (ROC AUC for binary classifiers with scores, else "
                   "accuracy; R² for regression) when each feature is shuffled, mean of 3 "
                   "shuffles on a seeded sample of at most 2500 rows. Compared with the baseline "
                   "version: Spearman rank correlation of the importances and overlap of the "
                   "top-k features.")
    thresholds = (
        ThresholdSpec("min_rank_correlation", Bound.LOWER,
                      "Least Spearman correlation with the baseline's importances", default=0.5),
        ThresholdSpec("min_top_k_overlap", Bound.LOWER,
                      "Least share of the baseline's top-k features among the candidate's top-k"),
        ThresholdSpec("max_importance_share", Bound.UPPER,
                      "Most share of the total importance one feature may carry"),
    )
    params = (ParamSpec("top_k", "5", "Size of the top-k sets compared", int),)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        cand = ctx.importance()
        base = ctx.importance("baseline") if ctx.baseline is not None else {}
        measurements = [Measurement("importance", v, f, base.get(f))
                        for f, v in sorted(cand.items(), key=lambda kv: -kv[1])]
        positive_total = sum(max(v, 0.0) for v in cand.values())
        if positive_total > 0:
            top_feature = max(cand, key=lambda f: cand[f])
            share = max(cand[top_feature], 0.0) / positive_total
            measurements.append(Measurement("importance_share", share, top_feature))
            judge.apply("max_importance_share", share, top_feature)
        result_findings = []
        if base:
            features = list(cand)
            a = np.array([cand[f] for f in features])
            b = np.array([base[f] for f in features])
            rho = (float(spearmanr(a, b).statistic) if len(features) > 1 and a.std() and b.std()
                   else 1.0)
            k = min(cfg.param("top_k"), len(features))
            top_c = set(sorted(features, key=lambda f: -cand[f])[:k])
            top_b = set(sorted(features, key=lambda f: -base[f])[:k])
            overlap = len(top_c & top_b) / k if k else 1.0
            measurements += [Measurement("rank_correlation", rho),
                             Measurement("top_k_overlap", overlap)]
            judge.apply("min_rank_correlation", rho)
            judge.apply("min_top_k_overlap", overlap)
            if top_c != top_b:
                result_findings.append(f"top-{k} changed: new {sorted(top_c - top_b)}, "
                                       f"dropped {sorted(top_b - top_c)}")
        else:
            result_findings.append("no baseline version: importance change not measured")
        return judge.result(self.name, measurements=measurements, findings=result_findings)
