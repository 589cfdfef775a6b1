"""Drift statistics: KS and Wasserstein match scipy to 1e-9; PSI and
Jensen-Shannon match hand-computed cases; chi-square matches scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelplane.observability.drift import (
    DriftMethod,
    DriftThresholds,
    categorical_drift,
    jensen_shannon,
    numeric_drift,
    psi,
    quantile_bin_shares,
)

TOL = 1e-9


@pytest.mark.parametrize("n1,n2,decimals", [
    (40, 70, None),        # exact p-value
    (3000, 2000, 1),       # heavy ties
    (12000, 15000, None),  # asymptotic p-value
    (25000, 25000, 2),     # asymptotic with ties
])
def test_ks_and_wasserstein_match_scipy(n1: int, n2: int, decimals: int | None) -> None:
    rng = np.random.default_rng(n1)
    ref = rng.normal(0, 1, n1)
    cur = rng.normal(0.1, 1.2, n2)
    if decimals is not None:
        ref, cur = np.round(ref, decimals), np.round(cur, decimals)
    d = numeric_drift(ref, cur)
    ks = d.statistic(DriftMethod.KS)
    w = d.statistic(DriftMethod.WASSERSTEIN)
    assert ks is not None and w is not None
    expected = stats.ks_2samp(ref, cur)
    assert ks.value == pytest.approx(expected.statistic, abs=TOL)
    assert ks.p_value == pytest.approx(expected.pvalue, abs=TOL)
    expected_w = stats.wasserstein_distance(ref, cur)
    assert w.raw == pytest.approx(expected_w, abs=TOL)
    assert w.value == pytest.approx(expected_w / np.std(ref), abs=TOL)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
def test_ks_and_wasserstein_match_scipy_on_many_small_awkward_samples() -> None:
    """Ties inside and across samples, coprime and equal sizes, single values,
    constant samples: the sorted-array KS and quantile-function Wasserstein
    must agree with scipy everywhere, not only on smooth data."""
    rng = np.random.default_rng(42)
    for case in range(400):
        n1, n2 = int(rng.integers(1, 60)), int(rng.integers(1, 60))
        if case % 5 == 0:
            n2 = n1
        grid = int(rng.integers(1, 8))  # few distinct values: many ties
        ref = rng.integers(0, grid, n1).astype(float) if case % 2 else rng.normal(size=n1)
        cur = (rng.integers(0, grid, n2).astype(float) + (case % 3 == 0)
               if case % 2 else rng.normal(0.3, 1, n2))
        d = numeric_drift(ref, cur, [DriftMethod.KS, DriftMethod.WASSERSTEIN])
        ks, w = d.statistic(DriftMethod.KS), d.statistic(DriftMethod.WASSERSTEIN)
        assert ks is not None and w is not None
        assert ks.value == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TOL), case
        assert w.raw == pytest.approx(stats.wasserstein_distance(ref, cur), abs=TOL), case


def test_ks_and_wasserstein_of_large_unequal_samples_with_cross_ties() -> None:
    rng = np.random.default_rng(11)
    ref = np.round(rng.normal(0, 1, 200_003), 2)
    cur = np.round(rng.normal(0.05, 1, 150_001), 2)
    d = numeric_drift(ref, cur)
    ks, w = d.statistic(DriftMethod.KS), d.statistic(DriftMethod.WASSERSTEIN)
    assert ks is not None and w is not None
    expected = stats.ks_2samp(ref, cur)
    assert ks.value == pytest.approx(expected.statistic, abs=TOL)
    assert ks.p_value == pytest.approx(expected.pvalue, abs=TOL)
    assert w.raw == pytest.approx(stats.wasserstein_distance(ref, cur), abs=TOL)


def test_nan_values_are_left_out_of_both_samples() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=500), rng.normal(size=400)
    ref_nan = np.concatenate([ref, [np.nan] * 10])
    cur_nan = np.insert(cur, [0, 100, 399], np.nan)
    d = numeric_drift(ref_nan, cur_nan)
    assert (d.reference_count, d.current_count) == (500, 400)
    assert d.statistic(DriftMethod.KS).value == pytest.approx(  # type: ignore[union-attr]
        stats.ks_2samp(ref, cur).statistic, abs=TOL)
    assert d.statistic(DriftMethod.WASSERSTEIN).raw == pytest.approx(  # type: ignore[union-attr]
        stats.wasserstein_distance(ref, cur), abs=TOL)
    empty = numeric_drift(np.full(5, np.nan), cur)
    assert empty.reference_count == 0 and empty.statistics == []


def test_psi_hand_computed() -> None:
    # Reference 25/25/25/25 %, current 10/20/30/40 %:
    # (0.10-0.25)ln(0.10/0.25) + (0.20-0.25)ln(0.20/0.25) + (0.30-0.25)ln(0.30/0.25)
    # + (0.40-0.25)ln(0.40/0.25)
    expected = (-0.15 * math.log(0.4) - 0.05 * math.log(0.8) + 0.05 * math.log(1.2)
                + 0.15 * math.log(1.6))
    assert psi(np.array([.25, .25, .25, .25]), np.array([.1, .2, .3, .4])) == pytest.approx(
        expected, abs=1e-12)
    assert expected == pytest.approx(0.2283, abs=1e-4)


def test_psi_smooths_empty_bins_with_0_0001() -> None:
    # A bin empty in the reference counts as 0.0001 there.
    got = psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2]))
    expected = (2 * (-0.1) * math.log(0.8)) + (0.2 - 0.0001) * math.log(0.2 / 0.0001)
    assert got == pytest.approx(expected, abs=1e-12)


def test_psi_on_quantile_bins_of_the_reference() -> None:
    ref = np.arange(1, 101, dtype=float)  # deciles at 10.9, 20.8, ...
    cur = np.concatenate([np.full(50, 5.0), np.full(50, 95.0)])
    r, c = quantile_bin_shares(np.sort(ref), np.sort(cur), 10)
    assert r.tolist() == pytest.approx([0.1] * 10)
    assert c.tolist() == pytest.approx([0.5] + [0.0] * 8 + [0.5])
    d = numeric_drift(ref, cur, [DriftMethod.PSI])
    expected = 2 * (0.4 * math.log(5)) + 8 * ((0.0001 - 0.1) * math.log(0.0001 / 0.1))
    assert d.statistic(DriftMethod.PSI).value == pytest.approx(expected, abs=1e-12)  # type: ignore[union-attr]


def test_jensen_shannon_hand_computed_and_scipy() -> None:
    # Disjoint distributions: distance 1 (base 2). Identical: 0.
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert jensen_shannon(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == pytest.approx(0.0)
    # p = (1/2, 1/2), q = (1, 0): M = (3/4, 1/4);
    # JSD = 1/2[1/2 log2(2/3) + 1/2 log2(2)] + 1/2[log2(4/3)] = 0.311278...
    expected = 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * 1.0) + 0.5 * math.log2(4 / 3)
    got = jensen_shannon(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert got == pytest.approx(math.sqrt(expected), abs=1e-12)
    p, q = np.array([0.1, 0.2, 0.7]), np.array([0.3, 0.3, 0.4])
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)


def test_categorical_drift_chi_square_matches_scipy_and_decides_by_sample_size() -> None:
    rng = np.random.default_rng(3)
    cats = np.array(["a", "b", "c", "d"], dtype=object)
    ref = rng.choice(cats, 800, p=[.4, .3, .2, .1])
    cur = rng.choice(cats, 600, p=[.25, .25, .25, .25])
    d = categorical_drift(ref, cur)
    table = np.array([[np.sum(ref == c) for c in cats], [np.sum(cur == c) for c in cats]])
    chi = stats.chi2_contingency(table, correction=False)
    stat = d.statistic(DriftMethod.CHI_SQUARE)
    assert stat is not None
    assert stat.value == pytest.approx(chi.statistic, abs=TOL)
    assert stat.p_value == pytest.approx(chi.pvalue, abs=TOL)
    assert d.decision_method is DriftMethod.CHI_SQUARE and d.drifted
    big = categorical_drift(np.repeat(ref, 2), np.repeat(cur, 2))
    assert big.decision_method is DriftMethod.JENSEN_SHANNON


def test_default_decision_ks_for_small_wasserstein_for_large_reference() -> None:
    rng = np.random.default_rng(9)
    small = numeric_drift(rng.normal(size=500), rng.normal(size=500))
    assert small.decision_method is DriftMethod.KS and not small.drifted
    large = numeric_drift(rng.normal(size=5000), rng.normal(0.5, 1, size=5000))
    assert large.decision_method is DriftMethod.WASSERSTEIN and large.drifted
    lenient = numeric_drift(rng.normal(size=5000), rng.normal(0.5, 1, size=5000),
                            thresholds=DriftThresholds(wasserstein=0.9))
    assert not lenient.drifted
