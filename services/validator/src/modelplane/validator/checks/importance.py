"""Check 4: permutation feature importance and how it changed vs the baseline."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    ResolvedConfig,
    ThresholdSpec,
)
from modelplane.validator.report import Bound, CheckResult, Measurement


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
