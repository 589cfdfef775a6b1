"""Check 8: label errors and feature quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    ResolvedConfig,
    ThresholdSpec,
)
from modelplane.validator.report import Bound, CheckResult, Measurement, TaskType
from modelplane.validator.statistics import is_numeric


def encode(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as they are, everything else as category codes (for auxiliary models)."""
    out = {}
    for col in frame.columns:
        values = frame[col]
        if is_numeric(values):
            out[col] = values.astype(float)
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[col] = values.astype("int64").astype(float)
        else:
            out[col] = values.astype("string").astype("category").cat.codes.astype(float)
    return pd.DataFrame(out, index=frame.index)


def mixed_type(values: pd.Series) -> bool:
    """An object column holding more than one Python type (e.g. numbers and strings)."""
    if values.dtype != object:
        return False
    kinds = {type(v).__name__ for v in values.dropna().head(10_000)}
    kinds = {"number" if k in ("int", "float", "int64", "float64") else k for k in kinds}
    return len(kinds) > 1


def confident_mislabels(proba: np.ndarray, given_idx: np.ndarray, margin: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Rows likely mislabeled, by confident learning (Northcutt et al.), and the class
    each row's confident argmax picks (every row's; -1 where no class is confident).

    A class's threshold is the mean out-of-fold probability of that class among the
    rows labeled with it; a row is flagged when another class clears its threshold, is
    the likeliest of the classes that do, and leads the given label's probability by at
    least ``margin``. With no margin (any lead) this flags the rows cleanlab's
    ``find_label_issues(filter_by="confident_learning")`` flags: see the validator
    README's design notes for why it is kept here."""
    rows = np.arange(len(given_idx))
    per_class = np.array([proba[given_idx == j, j].mean() for j in range(proba.shape[1])])
    confident = np.where(proba >= per_class, proba, -1.0)
    best = np.where(confident.max(axis=1) >= 0, confident.argmax(axis=1), -1)
    given = proba[rows, given_idx]
    lead = proba[rows, np.maximum(best, 0)] - given
    flagged = np.flatnonzero((best >= 0) & (best != given_idx) & (lead >= margin))
    return flagged, best


class DataQualityCheck(Check):
    name = "data_quality"
    title = "Label errors and feature quality"
    description = ("Conflicting labels: rows with identical model inputs but different labels. "
                   "Likely mislabels: out-of-fold predictions of a gradient-boosting model "
                   "(3-fold cross-validation on a sample) judged by confident learning: another "
                   "class clears its per-class threshold and leads the recorded label by "
                   "`mislabel_margin` (regression: residual beyond "
                   "`residual_z` robust standard deviations). Feature quality: constant features, "
                   "mixed-type columns, missing values, and values outside the training dataset's "
                   "range (or the policy's `ranges`).")
    thresholds = (
        ThresholdSpec("max_conflicting_label_rate", Bound.UPPER,
                      "Most share of rows in groups of identical inputs with conflicting labels",
                      default=0.01),
        ThresholdSpec("max_mislabeled_rate", Bound.UPPER,
                      "Most share of likely mislabeled rows (noisy targets have some: the "
                      "default only warns from 5%, fails from 20%)", default=0.2,
                      warn_default=0.05),
        ThresholdSpec("max_constant_features", Bound.UPPER, "Most constant features", default=0),
        ThresholdSpec("max_mixed_type_features", Bound.UPPER, "Most mixed-type features",
                      default=0),
        ThresholdSpec("max_missing_rate", Bound.UPPER, "Most share of missing values in a feature"),
        ThresholdSpec("max_out_of_range_rate", Bound.UPPER,
                      "Most share of a feature's values outside the expected range", default=0.01),
    )
    params = (
        ParamSpec("mislabel_margin", "0.5",
                  "Least lead of the confident other class's probability over the given label's"),
        ParamSpec("rows", "10000", "Rows sampled for the cross-validated label check", int),
        ParamSpec("residual_z", "5", "Regression: robust z-score of the residual that marks a row"),
        ParamSpec("ranges", "", "JSON {feature: [min, max]} of expected ranges; default: the "
                  "training dataset's min / max", str),
    )

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        import json

        judge = Judge(self.thresholds, cfg)
        measurements: list[Measurement] = []
        findings: list[str] = []
        data, features, label = ctx.data, ctx.features, ctx.label

        # Conflicting labels among identical inputs.
        keys = pd.util.hash_pandas_object(data[features], index=False)
        labels_per_key = pd.DataFrame({"k": keys.to_numpy(), "y": data[label].to_numpy()}) \
            .groupby("k")["y"].transform("nunique")
        conflicting = float((labels_per_key > 1).mean())
        measurements.append(Measurement("conflicting_label_rate", conflicting))
        judge.apply("max_conflicting_label_rate", conflicting)
        if conflicting:
            findings.append(f"{int((labels_per_key > 1).sum())} rows share inputs with a row of "
                            "another label")

        # Likely mislabels by cross-validated disagreement.
        rows = ctx.sample_index(rows=min(cfg.param("rows"), ctx.policy.sample_rows))
        x = encode(data[features].iloc[rows])
        y = ctx.y[rows]
        with threadpool_limits(1):  # OpenMP spin-waits badly on a busy, small machine
            mislabeled = self._mislabels(ctx, cfg, x, y)  # (also when called outside run_checks)
        rate = float(len(mislabeled) / max(len(rows), 1))
        measurements.append(Measurement("mislabeled_rate", rate))
        judge.apply("max_mislabeled_rate", rate)
        for pos, detail in mislabeled[:10]:
            findings.append(f"row {data.index[rows[pos]]}: {detail}")

        # Feature quality.
        ranges: dict[str, tuple[float, float]] = {}
        if cfg.param("ranges"):
            ranges = {k: (float(v[0]), float(v[1]))
                      for k, v in json.loads(cfg.param("ranges")).items()}
        elif ctx.training is not None:
            for f in features:
                if f in ctx.training and is_numeric(ctx.training[f]):
                    ranges[f] = (float(ctx.training[f].min()), float(ctx.training[f].max()))
        constant = [f for f in features if data[f].nunique(dropna=False) <= 1]
        mixed = [f for f in features if mixed_type(data[f])]
        measurements += [Measurement("constant_features", float(len(constant))),
                         Measurement("mixed_type_features", float(len(mixed)))]
        judge.apply("max_constant_features", float(len(constant)))
        judge.apply("max_mixed_type_features", float(len(mixed)))
        if constant:
            findings.append("constant: " + ", ".join(constant))
        if mixed:
            findings.append("mixed types: " + ", ".join(mixed))
        for f in features:
            missing = float(data[f].isna().mean())
            measurements.append(Measurement("missing_rate", missing, f))
            judge.apply("max_missing_rate", missing, f)
            if f in ranges and is_numeric(data[f]):
                lo, hi = ranges[f]
                v = data[f].to_numpy(dtype=float)
                outside = float(np.mean((v < lo) | (v > hi)))
                measurements.append(Measurement("out_of_range_rate", outside, f))
                if judge.apply("max_out_of_range_rate", outside, f).failed:
                    findings.append(f"{f}: {outside:.1%} outside [{lo:.4g}, {hi:.4g}]")
        return judge.result(self.name, measurements=measurements, findings=findings)

    @staticmethod
    def _mislabels(ctx: CheckContext, cfg: ResolvedConfig, x: pd.DataFrame,
                   y: np.ndarray) -> list[tuple[int, str]]:
        if len(y) < 30:
            return []
        if ctx.task == TaskType.CLASSIFICATION:
            labels, counts = np.unique(y, return_counts=True)
            if len(labels) < 2 or counts.min() < 3:
                return []
            model = HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15,
                                                   random_state=ctx.seed)
            folds = StratifiedKFold(3, shuffle=True, random_state=ctx.seed)
            proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
            flagged, best = confident_mislabels(proba, np.searchsorted(labels, y),
                                                cfg.param("mislabel_margin"))
            return [(int(i), (f"label {y[i]!r}, cross-validated {proba[i, best[i]]:.2f} for "
                              f"{labels[best[i]]!r}")) for i in flagged]
        model = HistGradientBoostingRegressor(max_iter=50, max_leaf_nodes=15, random_state=ctx.seed)
        pred = cross_val_predict(model, x, y.astype(float),
                                 cv=KFold(3, shuffle=True, random_state=ctx.seed))
        resid = y.astype(float) - pred
        mad = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826 or 1e-12
        z = np.abs(resid - np.median(resid)) / mad
        flagged = np.flatnonzero(z > cfg.param("residual_z"))
        return [(int(i), f"target {y[i]:.4g}, cross-validated {pred[i]:.4g}") for i in flagged]
