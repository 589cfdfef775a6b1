"""Check 12: feature-pipeline parity — offline and online values agree for sampled entities."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    Judge,
    ParamSpec,
    Requirement,
    ResolvedConfig,
    Skip,
    ThresholdSpec,
)
from modelplane.validator.report import Bound, CheckResult, Measurement
from modelplane.validator.statistics import is_numeric


def values_agree(a: pd.Series, b: pd.Series, rtol: float, atol: float) -> np.ndarray:
    """Row-wise agreement: numbers within tolerance, everything else equal; both missing agree."""
    a_missing, b_missing = a.isna().to_numpy(), b.isna().to_numpy()
    if is_numeric(a) and is_numeric(b):
        av, bv = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            same = np.abs(av - bv) <= atol + rtol * np.abs(bv)
    else:
        same = (a.astype("string") == b.astype("string")).fillna(False).to_numpy(dtype=bool)
    return np.where(a_missing | b_missing, a_missing & b_missing, same)


class FeatureParityCheck(Check):
    name = "feature_parity"
    title = "Feature-pipeline parity (offline vs online)"
    description = ("Samples `entities` distinct entities of the dataset, reads their features "
                   "from the featurestore's online store and from its offline store as of now "
                   "(point-in-time join at the current time), and compares each feature: numbers "
                   "within `rtol` / `atol`, other values equal, missing on both sides equal.")
    thresholds = (
        ThresholdSpec("max_mismatch_rate", Bound.UPPER,
                      "Most share of sampled entities whose offline and online values differ, "
                      "for any feature", default=0.0),
    )
    params = (ParamSpec("entities", "50", "Entities sampled", int),
              ParamSpec("rtol", "1e-6", "Relative tolerance for numbers"),
              ParamSpec("atol", "1e-9", "Absolute tolerance for numbers"))
    requires = (Requirement.ENTITIES, Requirement.FEATURESTORE)

    def run(self, ctx: CheckContext, cfg: ResolvedConfig) -> CheckResult:
        keys = ctx.policy.entity_columns
        if not keys:
            raise Skip("no entity_columns in the policy")
        if ctx.parity_source is None:
            raise Skip("no featurestore to read online features from")
        features = ctx.feature_refs or [f for f in ctx.features if f not in keys]
        entities = ctx.data[keys].drop_duplicates()
        n = min(cfg.param("entities"), len(entities))
        entities = entities.sample(n=n, random_state=ctx.seed).reset_index(drop=True)
        online = ctx.parity_source.online_features(entities, features)
        offline = ctx.parity_source.offline_features(entities, features)
        merged = entities.merge(online, on=keys, how="left").merge(
            offline, on=keys, how="left", suffixes=("__online", "__offline"))
        judge = Judge(self.thresholds, cfg)
        measurements = [Measurement("entities", float(n))]
        findings = []
        for feature in features:
            column = feature.split(":")[-1]
            on, off = merged.get(f"{column}__online"), merged.get(f"{column}__offline")
            if on is None or off is None:
                side = "online" if on is None else "offline"
                findings.append(f"{feature}: missing from the {side} side")
                mismatch = 1.0
            else:
                agree = values_agree(on, off, cfg.param("rtol"), cfg.param("atol"))
                mismatch = float(1 - agree.mean()) if len(agree) else 0.0
                for i in np.flatnonzero(~agree)[:3]:
                    entity = ", ".join(f"{k}={merged.loc[i, k]}" for k in keys)
                    findings.append(f"{feature} @ {entity}: online {on.iloc[i]!r}, "
                                    f"offline {off.iloc[i]!r}")
            measurements.append(Measurement("mismatch_rate", mismatch, feature))
            judge.apply("max_mismatch_rate", mismatch, feature)
        result = judge.result(self.name, measurements=measurements, findings=findings)
        bad = [m.subject for m in measurements if m.name == "mismatch_rate" and m.value > 0]
        if bad:
            result.message = "offline and online values differ for: " + ", ".join(bad)
        return result
