"""The check catalog: one class per check, in the order a report lists them."""

from __future__ import annotations

from .backtest import BacktestCheck
from .base import Check, CheckContext, FeatureParitySource, Predictor, Requirement, Skip
from .bias import BiasCheck
from .data_quality import DataQualityCheck
from .drift import FeatureDriftCheck, PredictionDriftCheck
from .fitting import FittingCheck
from .importance import FeatureImportanceCheck
from .leakage import LeakageCheck
from .metrics import MetricsCheck
from .parity import FeatureParityCheck
from .sensitivity import SensitivityCheck
from .stress import StressCheck

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
