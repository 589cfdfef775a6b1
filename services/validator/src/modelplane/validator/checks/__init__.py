"""The check catalog: one class per check, in the order a report lists them."""

from __future__ import annotations

from modelplane.validator.checks.backtest import BacktestCheck
from modelplane.validator.checks.base import (
    Check,
    CheckContext,
    FeatureParitySource,
    Predictor,
    Requirement,
    Skip,
)
from modelplane.validator.checks.bias import BiasCheck
from modelplane.validator.checks.data_quality import DataQualityCheck
from modelplane.validator.checks.drift import FeatureDriftCheck, PredictionDriftCheck
from modelplane.validator.checks.fitting import FittingCheck
from modelplane.validator.checks.importance import FeatureImportanceCheck
from modelplane.validator.checks.leakage import LeakageCheck
from modelplane.validator.checks.metrics import MetricsCheck
from modelplane.validator.checks.parity import FeatureParityCheck
from modelplane.validator.checks.sensitivity import SensitivityCheck
from modelplane.validator.checks.stress import StressCheck

CATALOG: dict[str, Check] = {
    c.name: c
    for c in (
        MetricsCheck(), PredictionDriftCheck(), FeatureDriftCheck(), FeatureImportanceCheck(),
        SensitivityCheck(), StressCheck(), BiasCheck(), DataQualityCheck(), LeakageCheck(),
        FittingCheck(), BacktestCheck(), FeatureParityCheck(),
    )
}

__all__ = ["CATALOG", "Check", "CheckContext", "FeatureParitySource", "Predictor", "Requirement",
           "Skip"]
