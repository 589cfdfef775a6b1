"""Each check of the catalog on real data and real models: one case that passes, one that fails."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier
from validator_testdata import FEATURES, Scenario, make_frame, make_model

from modelplane.kit.errors import InvalidArgument
from modelplane.validator.checks.base import PreviousValidation
from modelplane.validator.engine import validate
from modelplane.validator.policy import CheckConfig, Policy
from modelplane.validator.report import CheckResult, CheckStatus


def run_one(check: str, model: object, data: pd.DataFrame, *, thresholds: dict | None = None,
            params: dict | None = None, **kw: object) -> CheckResult:
    policy_kw = {k: kw.pop(k) for k in list(kw) if k in Policy.__dataclass_fields__}
    policy = Policy(label_column="label",
                    checks=[CheckConfig(check, thresholds=thresholds or {}, params=params or {})],
                    **policy_kw)
    [result] = validate(model, data, policy, **kw)  # type: ignore[arg-type]
    assert result.status != CheckStatus.ERROR, result.message
    return result


# 1. metrics ---------------------------------------------------------------------------------

def test_metrics_pass_overall_and_by_slice(scenario: Scenario) -> None:
    r = run_one("metrics", scenario.model, scenario.test, thresholds={"min_accuracy": 0.7},
                slice_columns=["region"])
    assert r.status == CheckStatus.PASS
    assert 0.7 < r.measurement("accuracy").value < 1.0
    assert {s.value for s in r.slices} == {"north", "south", "east"}
    assert all(s.status == CheckStatus.PASS for s in r.slices)


def test_metrics_fail_on_a_slice_with_wrong_labels(scenario: Scenario) -> None:
    data = scenario.test.copy()
    east = data["region"] == "east"
    data.loc[east, "label"] = 1 - data.loc[east, "label"]
    r = run_one("metrics", scenario.model, data, thresholds={"min_accuracy": 0.6},
                slice_columns=["region"])
    assert r.status == CheckStatus.FAIL
    failing = [s for s in r.slices if s.status == CheckStatus.FAIL]
    assert [s.value for s in failing] == ["east"]
    worst = next(t for t in r.thresholds if t.name == "min_accuracy")
    assert worst.subject == "region=east" and worst.measured < 0.6


def test_metrics_fail_when_worse_than_the_baseline(scenario: Scenario) -> None:
    weak = make_model(["x3", "x4"]).fit(scenario.train[["x3", "x4"]], scenario.train["label"])
    weak_wrapped = _Select(weak, ["x3", "x4"])
    r = run_one("metrics", weak_wrapped, scenario.test, baseline=scenario.model,
                feature_columns=FEATURES)
    assert r.status == CheckStatus.FAIL
    acc = r.measurement("accuracy")
    assert acc.baseline_value is not None and acc.value < acc.baseline_value
    rel = next(t for t in r.thresholds if t.name == "max_relative_degradation")
    assert rel.status == CheckStatus.FAIL and rel.measured > 0.05


def test_metrics_compare_only_the_named_metrics_with_the_baseline(scenario: Scenario) -> None:
    weak = make_model(["x3", "x4"]).fit(scenario.train[["x3", "x4"]], scenario.train["label"])
    weak_wrapped = _Select(weak, ["x3", "x4"])
    # the same weaker model: judged on log loss only, the accuracy drop is reported, not judged
    r = run_one("metrics", weak_wrapped, scenario.test, baseline=scenario.model,
                feature_columns=FEATURES, thresholds={"max_relative_degradation": 10.0},
                params={"degradation_metrics": "log_loss"})
    rel = next(t for t in r.thresholds if t.name == "max_relative_degradation")
    assert rel.subject == "log_loss" and r.status == CheckStatus.PASS
    acc = r.measurement("accuracy")
    assert acc.baseline_value is not None and acc.value < acc.baseline_value
    strict = run_one("metrics", weak_wrapped, scenario.test, baseline=scenario.model,
                     feature_columns=FEATURES, params={"degradation_metrics": "accuracy, f1"})
    rel = next(t for t in strict.thresholds if t.name == "max_relative_degradation")
    assert strict.status == CheckStatus.FAIL and rel.subject in ("accuracy", "f1")


def test_degradation_metrics_naming_no_metric_is_refused_before_the_run(
        scenario: Scenario) -> None:
    with pytest.raises(InvalidArgument) as err:
        run_one("metrics", scenario.model, scenario.test,
                params={"degradation_metrics": "accuracy,precison"})
    [violation] = err.value.field_violations
    assert violation.field.endswith("params.degradation_metrics")
    assert "precison" in violation.description


class _Select:
    """A model that reads only some columns of its input (like a pyfunc with a narrow signature)."""

    def __init__(self, model: object, columns: list[str]) -> None:
        self.model, self.columns = model, columns
        self.classes_ = model.classes_  # type: ignore[attr-defined]

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict(x[self.columns])  # type: ignore[attr-defined]

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x[self.columns])  # type: ignore[attr-defined]


# 2. prediction drift ------------------------------------------------------------------------

def test_prediction_drift_passes_against_a_retrained_twin(scenario: Scenario) -> None:
    twin_train = make_frame(3000, seed=7)
    twin = make_model().fit(twin_train[FEATURES], twin_train["label"])
    r = run_one("prediction_drift", scenario.model, scenario.test, baseline=twin)
    assert r.status == CheckStatus.PASS
    assert r.measurement("psi").value < 0.05


def test_prediction_drift_fails_against_a_different_model(scenario: Scenario) -> None:
    other = _Select(make_model(["x3", "x4"]).fit(scenario.train[["x3", "x4"]],
                                                 scenario.train["label"]),
                    ["x3", "x4"])
    r = run_one("prediction_drift", scenario.model, scenario.test, baseline=other)
    assert r.status == CheckStatus.FAIL
    assert r.measurement("psi").value > 0.2


# 3. feature drift ---------------------------------------------------------------------------

def test_feature_drift_passes_on_the_same_distribution(scenario: Scenario) -> None:
    r = run_one("feature_drift", scenario.model, scenario.test, training=scenario.train)
    assert r.status == CheckStatus.PASS
    assert {m.subject for m in r.measurements if m.name == "psi"} >= {"x0", "x1"}


def test_feature_drift_fails_when_an_important_feature_shifts(scenario: Scenario) -> None:
    shifted = make_frame(2000, seed=3, shift=1.5)
    r = run_one("feature_drift", scenario.model, shifted, training=scenario.train,
                params={"top_k": "2"})
    assert r.status == CheckStatus.FAIL
    assert r.measurement("psi", "x0").value > 0.2
    assert "x0" in r.message


def _previous(frame: pd.DataFrame, model: object) -> PreviousValidation:
    """A previous version's validation records as observability hands them back."""
    records = frame[FEATURES].copy()
    records["prediction"] = model.predict(frame[FEATURES])  # type: ignore[attr-defined]
    records["score_1"] = model.predict_proba(frame[FEATURES])[:, 1]  # type: ignore[attr-defined]
    return PreviousValidation(version="1", frame=records, record_count=len(records))


def test_feature_drift_defaults_to_the_previous_versions_data_and_falls_back_saying_so(
        scenario: Scenario) -> None:
    shifted = make_frame(2000, seed=3, shift=1.5)
    previous = _previous(make_frame(2000, seed=4, shift=1.5), scenario.model)
    vs_previous = run_one("feature_drift", scenario.model, shifted, training=scenario.train,
                          previous=previous)
    vs_training = run_one("feature_drift", scenario.model, shifted, training=scenario.train,
                          previous=previous, params={"reference": "training"})
    fallback = run_one("feature_drift", scenario.model, shifted, training=scenario.train)
    assert vs_previous.status == CheckStatus.PASS
    assert "version 1's validation data" in vs_previous.message
    assert vs_training.status == CheckStatus.FAIL
    assert vs_previous.measurement("psi", "x0").value < 0.1
    assert vs_training.measurement("psi", "x0").value > 0.2
    assert fallback.status == CheckStatus.FAIL
    assert any(f.startswith("fell back to the training dataset") for f in fallback.findings)
    # a version that took fewer inputs: its data for those, training for the new one
    narrower = PreviousValidation("1", previous.frame.drop(columns=["x0"]))
    mixed = run_one("feature_drift", scenario.model, shifted, training=scenario.train,
                    previous=narrower, params={"top_k": "0"})
    assert "version 1's validation data" in mixed.message
    assert "x0: compared with the training dataset (not an input of version 1)" in mixed.findings
    assert mixed.measurement("psi", "x0").value > 0.2 and mixed.status == CheckStatus.FAIL
    skipped = run_one("feature_drift", scenario.model, shifted, previous=None,
                      params={"reference": "training"}, baseline=scenario.model)
    assert skipped.status == CheckStatus.SKIPPED and "no training dataset" in skipped.message


def test_prediction_drift_against_the_previous_versions_scores(scenario: Scenario) -> None:
    shifted = make_frame(2000, seed=3, shift=1.5)
    same = run_one("prediction_drift", scenario.model, shifted,
                   previous=_previous(make_frame(2000, seed=4, shift=1.5), scenario.model))
    far = run_one("prediction_drift", scenario.model, shifted,
                  previous=_previous(make_frame(2000, seed=4, shift=-1.5), scenario.model))
    assert same.status == CheckStatus.PASS and far.status == CheckStatus.FAIL
    assert same.findings[0] == "reference: previous_version"


# 4. feature importance ----------------------------------------------------------------------

def test_importance_ranks_the_driving_features_and_agrees_with_a_twin(scenario: Scenario) -> None:
    twin_train = make_frame(3000, seed=8)
    twin = make_model().fit(twin_train[FEATURES], twin_train["label"])
    r = run_one("feature_importance", scenario.model, scenario.test, baseline=twin)
    assert r.status == CheckStatus.PASS
    ranked = [m.subject for m in r.measurements if m.name == "importance"]
    assert ranked[:2] == ["x0", "x1"]
    assert r.measurement("rank_correlation").value > 0.7


def test_importance_fails_when_the_baseline_relied_on_other_features(scenario: Scenario) -> None:
    data = scenario.train.copy()
    data["label"] = (data["x3"] - data["x4"] > 0).astype(int)
    other = make_model().fit(data[FEATURES], data["label"])
    # validation labels that both models' features explain, so each model's importances
    # measure its own reliance (on labels driven by x0/x1 alone the baseline's importances
    # are noise around 0 and its top 2 depend on the shuffles)
    test = scenario.test.copy()
    test["label"] = (2 * test["x0"] - 1.5 * test["x1"] + 2 * (test["x3"] - test["x4"]) > 0
                     ).astype(int)
    r = run_one("feature_importance", scenario.model, test, baseline=other,
                thresholds={"min_top_k_overlap": 0.8}, params={"top_k": "2"})
    assert r.status == CheckStatus.FAIL
    assert r.measurement("top_k_overlap").value == 0.0
    assert r.findings[0] == "top-2 changed: new ['x0', 'x1'], dropped ['x3', 'x4']"


def test_importance_is_sklearns_permutation_importance_with_the_policy_seed(
        scenario: Scenario) -> None:
    """The check's importances are scikit-learn's ``permutation_importance`` (ROC AUC
    drop, the policy's seed as ``random_state``), not a look-alike."""
    from sklearn.inspection import permutation_importance

    from modelplane.validator.checks.base import IMPORTANCE_REPEATS

    r = run_one("feature_importance", scenario.model, scenario.test, seed=7,
                feature_columns=FEATURES)
    got = {m.subject: m.value for m in r.measurements if m.name == "importance"}
    ref = permutation_importance(scenario.model, scenario.test[FEATURES],
                                 scenario.test["label"], scoring="roc_auc",
                                 n_repeats=IMPORTANCE_REPEATS, random_state=7)
    assert got == pytest.approx(dict(zip(FEATURES, ref.importances_mean, strict=True)),
                                rel=0, abs=1e-12)
    again = run_one("feature_importance", scenario.model, scenario.test, seed=8,
                    feature_columns=FEATURES)
    assert {m.subject: m.value for m in again.measurements if m.name == "importance"} != got


# 5. sensitivity -----------------------------------------------------------------------------

def test_sensitivity_passes_for_a_smooth_model(scenario: Scenario) -> None:
    r = run_one("sensitivity", scenario.model, scenario.test)
    assert r.status == CheckStatus.PASS
    assert r.measurement("flip_rate", "noise").value < 0.1
    assert r.measurement("extreme_failures", "extreme").value == 0


class _Fragile:
    """Takes the log of x0: NaN for the extreme negative values."""

    classes_ = np.array([0, 1])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            p = 1 / (1 + np.exp(-np.log(x["x0"].to_numpy() + 10)))
        return np.column_stack([1 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)


def test_sensitivity_fails_when_extreme_values_give_nan(scenario: Scenario) -> None:
    r = run_one("sensitivity", _Fragile(), scenario.test, feature_columns=FEATURES)
    assert r.status == CheckStatus.FAIL
    assert r.measurement("extreme_failures", "extreme").value >= 1
    assert any(f.startswith("x0=min") and "non-finite" in f for f in r.findings)


def test_sensitivity_fails_for_a_model_that_flips_on_tiny_noise(scenario: Scenario) -> None:
    tree = DecisionTreeClassifier(random_state=0).fit(scenario.train[FEATURES[:5]],
                                                      scenario.train["x4"] > 0)
    r = run_one("sensitivity", _Select(tree, FEATURES[:5]), scenario.test,
                thresholds={"max_flip_rate": 0.01}, params={"noise_scale": "0.2"},
                feature_columns=FEATURES[:5])
    assert r.status == CheckStatus.FAIL
    assert r.measurement("flip_rate", "noise").value > 0.01


# 6. stress ----------------------------------------------------------------------------------

def test_stress_measures_three_batch_sizes(scenario: Scenario) -> None:
    r = run_one("stress", scenario.model, scenario.test, params={"duration_s": "0.05"})
    assert r.status == CheckStatus.PASS
    assert {m.subject for m in r.measurements} == {"batch=1", "batch=32", "batch=1024"}
    assert r.measurement("rows_per_s", "batch=1024").value > r.measurement("rows_per_s",
                                                                           "batch=1").value


class _Slow:
    def __init__(self, model: object) -> None:
        self.model = model
        self.classes_ = model.classes_  # type: ignore[attr-defined]

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        time.sleep(0.02)
        return self.model.predict(x)  # type: ignore[attr-defined]


def test_stress_fails_on_a_slow_model(scenario: Scenario) -> None:
    r = run_one("stress", _Slow(scenario.model), scenario.test,
                thresholds={"max_p99_ms_batch_1": 10},
                params={"duration_s": "0.05", "min_calls": "3"},
                feature_columns=FEATURES)
    assert r.status == CheckStatus.FAIL
    assert r.measurement("p99_ms", "batch=1").value >= 20


# 7. bias ------------------------------------------------------------------------------------

def test_bias_passes_when_groups_are_treated_alike(scenario: Scenario) -> None:
    r = run_one("bias", scenario.model, scenario.test, protected_attributes=["gender"])
    assert r.status == CheckStatus.PASS
    assert r.measurement("demographic_parity_difference", "gender").value < 0.1
    assert {s.value for s in r.slices} == {"f", "m"}


def test_bias_fails_when_the_model_uses_the_protected_attribute(scenario: Scenario) -> None:
    train = scenario.train.copy()
    train["g"] = (train["gender"] == "m").astype(int)
    train["label"] = ((train["x0"] + 3 * train["g"]) > 1).astype(int)
    biased = make_model([*FEATURES[:5], "g"]).fit(train[[*FEATURES[:5], "g"]], train["label"])
    test = scenario.test.copy()
    test["g"] = (test["gender"] == "m").astype(int)
    r = run_one("bias", biased, test, protected_attributes=["gender"],
                feature_columns=[*FEATURES[:5], "g"])
    assert r.status == CheckStatus.FAIL
    assert r.measurement("demographic_parity_difference", "gender").value > 0.5
    assert "gender" in r.message


# 8. label errors and feature quality -------------------------------------------------------

def test_data_quality_passes_on_clean_data(scenario: Scenario) -> None:
    clean = scenario.test.copy()
    clean["label"] = (2.0 * clean["x0"] - 1.5 * clean["x1"] > 0).astype(int)  # no label noise
    r = run_one("data_quality", scenario.model, clean, training=scenario.train,
                thresholds={"max_mislabeled_rate": 0.05})
    assert r.status == CheckStatus.PASS, r.thresholds
    assert r.measurement("conflicting_label_rate").value == 0


def test_data_quality_fails_on_conflicts_mislabels_and_bad_features(scenario: Scenario) -> None:
    data = scenario.test.copy()
    data["label"] = (2.0 * data["x0"] - 1.5 * data["x1"] > 0).astype(int)
    flipped = data.sample(frac=0.1, random_state=0).index
    data.loc[flipped, "label"] = 1 - data.loc[flipped, "label"]
    dupes = data.iloc[:50].copy()
    dupes["label"] = 1 - dupes["label"]
    data = pd.concat([data, dupes], ignore_index=True)
    data["x4"] = 0.0  # constant
    data.loc[100:200, "x2"] = 1e6  # out of the training range
    r = run_one("data_quality", scenario.model, data, training=scenario.train,
                thresholds={"max_mislabeled_rate": 0.05})
    assert r.status == CheckStatus.FAIL
    assert r.measurement("conflicting_label_rate").value > 0.04
    assert r.measurement("mislabeled_rate").value > 0.05
    assert r.measurement("constant_features").value == 1
    assert r.measurement("out_of_range_rate", "x2").value > 0.04
    failed = {t.name for t in r.thresholds if t.status == CheckStatus.FAIL}
    assert {"max_conflicting_label_rate", "max_mislabeled_rate", "max_constant_features",
            "max_out_of_range_rate"} <= failed


def test_data_quality_flags_mixed_type_columns(scenario: Scenario) -> None:
    data = scenario.test.copy()
    data["region"] = data["region"].astype(object)
    data.loc[:20, "region"] = 7
    r = run_one("data_quality", _Select(scenario.model, FEATURES), data, feature_columns=FEATURES)
    assert r.measurement("mixed_type_features").value == 1
    assert r.status == CheckStatus.FAIL


# 9. leakage ---------------------------------------------------------------------------------

def test_leakage_passes_on_honest_features(scenario: Scenario) -> None:
    r = run_one("leakage", scenario.model, scenario.test, training=scenario.train,
                event_timestamp_column="event_time", entity_columns=["customer_id"])
    assert r.status == CheckStatus.PASS, r.findings
    assert r.measurement("train_test_overlap").value == 0


def test_leakage_fails_on_a_leaky_feature_overlap_and_time_travel(scenario: Scenario) -> None:
    test = scenario.test.copy()
    test["x4"] = test["label"] + np.random.default_rng(0).normal(0, 0.01, len(test))
    test = pd.concat([test, scenario.train.iloc[:300]], ignore_index=True)
    test["x4_time"] = test["event_time"]
    test.loc[:99, "x4_time"] = test.loc[:99, "event_time"] + pd.Timedelta(days=1)
    r = run_one("leakage", scenario.model, test, training=scenario.train,
                event_timestamp_column="event_time", entity_columns=["customer_id"],
                feature_timestamp_columns=["x4_time"], feature_columns=FEATURES)
    assert r.status == CheckStatus.FAIL
    assert r.measurement("single_feature_score", "x4").value > 0.97
    assert r.measurement("train_test_overlap").value == pytest.approx(300 / 2300)
    assert r.measurement("time_travel_rate").value == pytest.approx(100 / 2300)
    assert any("x4 alone predicts label" in f for f in r.findings)


# 10. over / under-fitting -------------------------------------------------------------------

def test_fitting_passes_for_a_well_regularized_model(scenario: Scenario) -> None:
    r = run_one("fitting", scenario.model, scenario.test, training=scenario.train)
    assert r.status == CheckStatus.PASS
    assert abs(r.measurement("train_test_gap").value) < 0.05
    assert r.measurement("gain_over_constant").value > 0.3


def test_fitting_fails_for_an_overfit_tree(scenario: Scenario) -> None:
    tree = _Select(DecisionTreeClassifier(random_state=0).fit(
        scenario.train[FEATURES[:5]], scenario.train["label"]), FEATURES[:5])
    r = run_one("fitting", tree, scenario.test, training=scenario.train, feature_columns=FEATURES)
    assert r.status == CheckStatus.FAIL
    assert r.measurement("train_score").value == pytest.approx(1.0)
    assert r.measurement("train_test_gap").value > 0.1
    assert "over-fitting" in r.message


# 11. backtesting ----------------------------------------------------------------------------

def test_backtest_passes_on_stationary_history(scenario: Scenario) -> None:
    r = run_one("backtest", scenario.model, scenario.test, event_timestamp_column="event_time")
    assert r.status == CheckStatus.PASS
    assert len(r.slices) == 4 and all(s.row_count > 300 for s in r.slices)


def test_backtest_fails_when_the_last_window_drifts(scenario: Scenario) -> None:
    data = scenario.test.copy()
    late = data["event_time"] >= data["event_time"].quantile(0.8)
    data.loc[late, "label"] = 1 - data.loc[late, "label"]
    r = run_one("backtest", scenario.model, data, event_timestamp_column="event_time")
    assert r.status == CheckStatus.FAIL
    assert [s.status for s in r.slices][-1] == CheckStatus.FAIL
    assert r.slices[0].status == CheckStatus.PASS


# 12. feature parity -------------------------------------------------------------------------

class _Stores:
    """Offline and online values from two frames keyed by customer_id (a stand-in store)."""

    def __init__(self, offline: pd.DataFrame, online: pd.DataFrame) -> None:
        self.offline, self.online = offline, online

    def online_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        return entities.merge(self.online[["customer_id", *features]], on="customer_id", how="left")

    def offline_features(self, entities: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
        return entities.merge(self.offline[["customer_id", *features]], on="customer_id",
                              how="left")


def test_parity_passes_when_both_stores_agree(scenario: Scenario) -> None:
    stores = _Stores(scenario.test, scenario.test.copy())
    r = run_one("feature_parity", scenario.model, scenario.test, parity_source=stores,
                entity_columns=["customer_id"])
    assert r.status == CheckStatus.PASS
    assert r.measurement("entities").value == 50


def test_parity_fails_when_the_online_pipeline_differs(scenario: Scenario) -> None:
    online = scenario.test.copy()
    online["x1"] = online["x1"] * 1.01  # a unit bug in the online pipeline
    r = run_one("feature_parity", scenario.model, scenario.test,
                parity_source=_Stores(scenario.test, online),
                entity_columns=["customer_id"])
    assert r.status == CheckStatus.FAIL
    assert r.measurement("mismatch_rate", "x1").value == 1.0
    assert r.measurement("mismatch_rate", "x0").value == 0.0
    assert "x1" in r.message
