"""Check 5: sensitivity to random noise and to extreme values on the inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def _change(ctx: CheckContext, before: np.ndarray, after: np.ndarray,
            p_before: np.ndarray | None, p_after: np.ndarray | None) -> tuple[float, float]:
    """(share of rows whose predicted label changed, mean absolute change of the score/value)."""
    if ctx.task == TaskType.CLASSIFICATION:
        flips = float(np.mean(before != after))
        if p_before is not None and p_after is not None:
            return flips, float(np.mean(np.abs(p_after - p_before).max(axis=1)))
        return flips, flips
    scale = float(np.std(before)) or 1.0
    diff = np.abs(after.astype(float) - before.astype(float)) / scale
    return float(np.mean(diff > 0.1)), float(np.nanmean(diff))


class SensitivityCheck(Check):
    name = "sensitivity"
    title = "Sensitivity to random noise and extreme input values"
    description = ("Random noise: Gaussian noise of `noise_scale` x each numeric feature's "
                   "standard deviation on a sample; measures the share of changed labels (or of "
                   "regression predictions moving > 0.1 std) and the mean absolute change of the "
                   "score. Extreme values: each numeric feature in turn set to its min and max "
                   "pushed `extreme_factor` ranges outward, and to NaN; predictions must come "
                   "back finite and without an exception.")
    thresholds = (
        ThresholdSpec("max_flip_rate", Bound.UPPER,
                      "Most share of predictions changed by the noise", default=0.1),
        ThresholdSpec("max_mean_change", Bound.UPPER,
                      "Most mean absolute change of the score (classification, probability) or "
                      "of the prediction in prediction standard deviations (regression)"),
        ThresholdSpec("max_extreme_failures", Bound.UPPER,
                      "Most extreme-value probes that raise or return NaN / infinity", default=0),
    )
    params = (ParamSpec("noise_scale", "0.05", "Noise std as a fraction of each feature's std"),
              ParamSpec("extreme_factor", "10", "How many value ranges beyond min / max"),
              ParamSpec("rows", "2000", "Rows sampled", int),
              ParamSpec("include_nan", "0",
                        "Also probe NaN inputs (1 = yes): the model must answer them", int))

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        judge = Judge(self.thresholds, cfg)
        rows = ctx.sample_index(rows=min(cfg.param("rows"), ctx.policy.sample_rows))
        x = ctx.x.iloc[rows].reset_index(drop=True)
        rng = np.random.default_rng(ctx.seed + 1)
        numeric = [f for f in ctx.features if is_numeric(x[f])]
        before = ctx.predictions[rows]
        p_before = None if ctx.probabilities is None else ctx.probabilities[rows]
        noisy = x.copy()
        for f in numeric:
            col = x[f].to_numpy(dtype=float)
            std = float(np.nanstd(col)) or 1.0
            noise = rng.normal(0.0, cfg.param("noise_scale") * std, size=len(col))
            if pd.api.types.is_integer_dtype(x[f]):
                noisy[f] = np.rint(col + noise).astype(x[f].dtype)
            else:
                noisy[f] = (col + noise).astype(x[f].dtype)
        after = ctx.model.predict(noisy)
        p_after = ctx.model.predict_proba(noisy) if p_before is not None else None
        flips, mean_change = _change(ctx, before, after, p_before, p_after)
        judge.apply("max_flip_rate", flips)
        judge.apply("max_mean_change", mean_change)
        measurements = [Measurement("flip_rate", flips, "noise"),
                        Measurement("mean_change", mean_change, "noise")]
        findings: list[str] = []
        failures = 0
        probe = x.iloc[: min(len(x), 200)]
        factor = cfg.param("extreme_factor")
        for f in numeric:
            col = ctx.x[f].to_numpy(dtype=float)
            lo, hi = float(np.nanmin(col)), float(np.nanmax(col))
            span = (hi - lo) or max(abs(hi), 1.0)
            probes = {"min": lo - factor * span, "max": hi + factor * span}
            if cfg.param("include_nan"):
                probes["nan"] = np.nan
            for kind, value in probes.items():
                changed = probe.copy()
                if kind != "nan" and pd.api.types.is_integer_dtype(changed[f]):
                    info = np.iinfo(changed[f].dtype)
                    value = float(np.clip(np.rint(value), info.min, info.max))
                    changed[f] = np.full(len(changed), value).astype(changed[f].dtype)
                else:
                    changed[f] = np.full(len(changed), value, dtype=float)
                problem = self._probe(ctx, changed)
                if problem:
                    failures += 1
                    findings.append(f"{f}={kind} ({value:.4g}): {problem}")
        measurements.append(Measurement("extreme_failures", float(failures), "extreme"))
        measurements.append(Measurement("extreme_probes",
                                        float(len(numeric) * (2 + bool(cfg.param("include_nan")))),
                                        "extreme"))
        judge.apply("max_extreme_failures", float(failures))
        result = judge.result(self.name, measurements=measurements, findings=findings[:50])
        if failures:
            result.message = (f"{failures} extreme-value probe(s) raised or returned "
                              "non-finite values")
        return result

    @staticmethod
    def _probe(ctx: CheckContext, x: pd.DataFrame) -> str:
        try:
            if ctx.model.has_proba and ctx.task == TaskType.CLASSIFICATION:
                out = ctx.model.predict_proba(x)
            else:
                out = ctx.model.predict(x)
        except Exception as exc:  # noqa: BLE001 - any exception is the finding
            return f"raised {type(exc).__name__}: {str(exc)[:120]}"
        arr = np.asarray(out)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            return f"{int((~np.isfinite(arr)).sum())} non-finite output(s)"
        return ""
