"""Check 9: data leakage — single-feature predictiveness, train/test overlap, time travel."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    ResolvedConfig,
    ThresholdSpec,
)
from modelplane.validator.checks.data_quality import encode
from modelplane.validator.report import Bound, CheckResult, Measurement, TaskType


class LeakageCheck(Check):
    name = "leakage"
    title = "Data leakage"
    description = ("Single-feature predictiveness: a depth-limited decision tree on each feature "
                   "alone, 3-fold cross-validated on a sample; ROC AUC (binary: of the positive "
                   "class; multiclass: accuracy) or R² (regression) suspiciously close to perfect "
                   "means the feature leaks the label. Train/test overlap: share of dataset rows "
                   "whose inputs (or entity keys + event time when given) also appear in the "
                   "training dataset. Time travel: share of rows with a feature timestamp after "
                   "the row's event time.")
    thresholds = (
        ThresholdSpec("max_single_feature_score", Bound.UPPER,
                      "Most cross-validated ROC AUC / accuracy / R² of one feature alone",
                      default=0.97),
        ThresholdSpec("max_train_test_overlap", Bound.UPPER,
                      "Most share of rows also present in the training dataset", default=0.05),
        ThresholdSpec("max_time_travel_rate", Bound.UPPER,
                      "Most share of rows with a feature timestamp after the event time",
                      default=0.0),
    )
    params = (ParamSpec("max_depth", "4", "Depth of the single-feature trees", int),
              ParamSpec("rows", "10000", "Rows sampled for the single-feature models", int))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        measurements: list[Measurement] = []
        findings: list[str] = []
        rows = ctx.sample_index(rows=min(cfg.param("rows"), ctx.policy.sample_rows))
        x = encode(ctx.x.iloc[rows])
        y = ctx.y[rows]
        scorer = self._scorer(ctx, cfg, y)
        if scorer is not None:
            for feature in ctx.features:
                score = scorer(x[[feature]].fillna(-1e12).to_numpy())
                measurements.append(Measurement("single_feature_score", score, feature))
                if judge.apply("max_single_feature_score", score, feature).failed:
                    findings.append(f"{feature} alone predicts {ctx.label} with score {score:.3f}")
        if ctx.training is not None:
            overlap = self._overlap(ctx)
            measurements.append(Measurement("train_test_overlap", overlap))
            if judge.apply("max_train_test_overlap", overlap).failed:
                findings.append(f"{overlap:.1%} of the rows also appear in the training dataset")
        policy = ctx.policy
        if policy.event_timestamp_column and policy.feature_timestamp_columns:
            event = pd.to_datetime(ctx.data[policy.event_timestamp_column], utc=True)
            late = np.zeros(len(ctx.data), dtype=bool)
            for col in policy.feature_timestamp_columns:
                ts = pd.to_datetime(ctx.data[col], utc=True)
                col_late = (ts > event).to_numpy()
                if col_late.any():
                    findings.append(f"{col}: {int(col_late.sum())} rows after "
                                    f"{policy.event_timestamp_column}")
                late |= col_late
            rate = float(late.mean()) if len(late) else 0.0
            measurements.append(Measurement("time_travel_rate", rate))
            judge.apply("max_time_travel_rate", rate)
        result = judge.result(self.name, measurements=measurements, findings=findings)
        if findings:
            more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
            result.message = findings[0] + more
        return result

    @staticmethod
    def _scorer(  # type: ignore[no-untyped-def]
            ctx: CheckContext, cfg: ResolvedConfig, y: np.ndarray):
        depth = cfg.param("max_depth")
        if ctx.task == TaskType.REGRESSION:
            yf = y.astype(float)
            folds = KFold(3, shuffle=True, random_state=ctx.seed)

            def score_reg(col: np.ndarray) -> float:
                pred = cross_val_predict(DecisionTreeRegressor(max_depth=depth,
                                                               random_state=ctx.seed),
                                         col, yf, cv=folds)
                return float(r2_score(yf, pred))
            return score_reg
        labels, counts = np.unique(y, return_counts=True)
        if len(labels) < 2 or counts.min() < 3:
            return None
        folds = StratifiedKFold(3, shuffle=True, random_state=ctx.seed)
        binary = len(labels) == 2
        positive = ctx.positive if ctx.positive is not None else labels[-1]

        def score_cls(col: np.ndarray) -> float:
            tree = DecisionTreeClassifier(max_depth=depth, random_state=ctx.seed)
            if binary:
                proba = cross_val_predict(tree, col, y, cv=folds, method="predict_proba")
                auc = float(roc_auc_score(y == positive, proba[:, list(labels).index(positive)]))
                return max(auc, 1 - auc)
            return float(np.mean(cross_val_predict(tree, col, y, cv=folds) == y))
        return score_cls

    @staticmethod
    def _overlap(ctx: CheckContext) -> float:
        assert ctx.training is not None
        policy = ctx.policy
        keys = list(policy.entity_columns)
        if keys and policy.event_timestamp_column:
            keys.append(policy.event_timestamp_column)
        if not keys or not all(k in ctx.training.columns for k in keys):
            keys = [f for f in ctx.features if f in ctx.training.columns]
        train_hash = set(pd.util.hash_pandas_object(ctx.training[keys], index=False).to_numpy())
        test_hash = pd.util.hash_pandas_object(ctx.data[keys], index=False).to_numpy()
        return float(np.isin(test_hash, np.fromiter(train_hash, dtype=np.uint64)).mean())
