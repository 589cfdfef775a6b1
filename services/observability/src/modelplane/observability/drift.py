"""Distribution drift between a reference and a current sample, vectorised.

Definitions (also in the service README):

* **KS** — two-sample Kolmogorov-Smirnov statistic D = sup |F_ref - F_cur|,
  and its p-value as ``scipy.stats.ks_2samp(method="auto")``: exact for
  samples of at most 10,000 values, else ``kstwo.sf(D, round(n·m/(n+m)))``
  (its Smirnov-series branch summed here in log space, see :func:`ks_p_value`).
* **Wasserstein** — ``scipy.stats.wasserstein_distance`` (W1, the area
  between the two empirical CDFs), reported *normalized*: divided by the
  reference's standard deviation (Evidently's "normed" variant); the raw
  distance is kept in the result too.
* **PSI** — population stability index Σ (c - r)·ln(c / r) over bins: for
  numbers, ``bins`` (default 10) quantile bins of the reference
  (``numpy.quantile``, linear), outer bins open; for categories, one bin per
  category seen in either sample. Empty-bin proportions are replaced by
  0.0001 (smoothing) before the sum.
* **Jensen-Shannon** — the JS *distance* (square root of the divergence), base
  2, so it lies in [0, 1], over the same bins as PSI, unsmoothed
  (= ``scipy.spatial.distance.jensenshannon(r, c, base=2)``).
* **Chi-square** — Pearson's test of homogeneity of the 2 × k table of
  category counts (``scipy.stats.chi2_contingency``, no continuity correction).

Defaults (the common ones, Evidently's): a numeric column is judged by KS
(p < 0.05) when the reference has at most 1,000 values, else by normalized
Wasserstein (> 0.1); a categorical column by chi-square (p < 0.05) up to
1,000 values, else by Jensen-Shannon (> 0.1). PSI's threshold is 0.2.

Each sample is sorted once (float64, NaN cut off the sorted end); the sorted
arrays serve KS (one binary search of one sample in the other, plus a
cumulative count), Wasserstein (exactly, from the quantile functions: no
merge) and the bins (searchsorted of the edges). Columns run in a thread pool
(numpy's sort and searchsorted release the GIL).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import stats
from scipy.special import gammaln, logsumexp

SMALL_SAMPLE = 1000
PSI_SMOOTHING = 1e-4
DEFAULT_BINS = 10
EXACT_KS_MAX_N = 10_000


class DriftMethod(IntEnum):
    UNSPECIFIED = 0
    PSI = 1
    KS = 2
    JENSEN_SHANNON = 3
    WASSERSTEIN = 4
    CHI_SQUARE = 5


NUMERIC_METHODS = (DriftMethod.PSI, DriftMethod.KS, DriftMethod.JENSEN_SHANNON,
                   DriftMethod.WASSERSTEIN)
CATEGORICAL_METHODS = (DriftMethod.PSI, DriftMethod.JENSEN_SHANNON, DriftMethod.CHI_SQUARE)
TESTS = {DriftMethod.KS, DriftMethod.CHI_SQUARE}


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2
    p_value: float = 0.05
    jensen_shannon: float = 0.1
    wasserstein: float = 0.1

    def for_method(self, method: DriftMethod) -> float:
        return {DriftMethod.PSI: self.psi, DriftMethod.KS: self.p_value,
                DriftMethod.CHI_SQUARE: self.p_value,
                DriftMethod.JENSEN_SHANNON: self.jensen_shannon,
                DriftMethod.WASSERSTEIN: self.wasserstein}[method]

    @classmethod
    def with_defaults(cls, psi: float = 0, p_value: float = 0, jensen_shannon: float = 0,
                      wasserstein: float = 0) -> DriftThresholds:
        d = cls()
        return cls(psi or d.psi, p_value or d.p_value, jensen_shannon or d.jensen_shannon,
                   wasserstein or d.wasserstein)


@dataclass(frozen=True)
class DriftStatistic:
    method: DriftMethod
    value: float
    p_value: float | None
    threshold: float
    #: Raw Wasserstein distance (before normalization), for that method only.
    raw: float | None = None

    @property
    def drifted(self) -> bool:
        if self.method in TESTS:
            return self.p_value is not None and self.p_value < self.threshold
        return self.value > self.threshold


@dataclass
class SampleDrift:
    reference_count: int
    current_count: int
    statistics: list[DriftStatistic] = field(default_factory=list)
    decision_method: DriftMethod = DriftMethod.UNSPECIFIED

    @property
    def drifted(self) -> bool:
        for s in self.statistics:
            if s.method is self.decision_method:
                return s.drifted
        return False

    def statistic(self, method: DriftMethod) -> DriftStatistic | None:
        return next((s for s in self.statistics if s.method is method), None)


# ---------------------------------------------------------------------------
# Numbers


def sorted_finite(values: np.ndarray) -> np.ndarray:
    """The values sorted (float64, one copy), NaN left out: NaN sorts last, so
    it is cut off the end instead of masking the unsorted column."""
    s = np.sort(np.asarray(values, dtype=np.float64))
    if len(s) and np.isnan(s[-1]):
        s = s[:int(np.searchsorted(s, np.nan, side="left"))]
    return s


def _run_ends(s: np.ndarray) -> np.ndarray | None:
    """Index of the last element of every run of equal values of sorted ``s``,
    or None when all values differ (continuous data: the common, fast case)."""
    if len(s) < 2:
        return None
    same = s[1:] == s[:-1]
    if not same.any():
        return None
    return np.flatnonzero(np.append(~same, True))


def ks_sorted(ref_s: np.ndarray, cur_s: np.ndarray) -> float:
    """KS statistic sup |F_ref - F_cur| of two sorted samples.

    Both ECDFs are right-continuous steps that change only at data values, so
    the supremum is reached at a value of one sample: at the last element of
    each run of equal values. One binary search of the current values in the
    reference gives F_ref at the current values; F_cur at the reference values
    is a cumulative count of those positions (no second search). The
    differences are the same float operations as scipy's ``ks_2samp``.
    """
    n1, n2 = len(ref_s), len(cur_s)
    # F_ref at each current value, times n1: #ref <= c_j.
    le = np.searchsorted(ref_s, cur_s, side="right")
    # #ref < c_j: equal to `le` unless some current value occurs in the reference.
    prev = ref_s[np.maximum(le - 1, 0)]
    tied = (le > 0) & (prev == cur_s)
    lt = np.searchsorted(ref_s, cur_s, side="left") if tied.any() else le
    # c_j <= r_i  <=>  #ref < c_j <= i, for i the index of the last element of
    # r_i's run (no #ref < c_j falls inside a run), so #cur <= r_i = cum[i].
    cum = np.cumsum(np.bincount(lt, minlength=n1 + 1))

    cur_ends = _run_ends(cur_s)
    if cur_ends is None:
        gap_cur = le / n1 - np.arange(1, n2 + 1) / n2
    else:
        gap_cur = le[cur_ends] / n1 - (cur_ends + 1) / n2
    ref_ends = _run_ends(ref_s)
    if ref_ends is None:
        gap_ref = np.arange(1, n1 + 1) / n1 - cum[:n1] / n2
    else:
        gap_ref = (ref_ends + 1) / n1 - cum[ref_ends] / n2
    hi = max(float(gap_cur.max()), float(gap_ref.max()))
    lo = max(float(-gap_cur.min()), float(-gap_ref.min()))
    return min(max(hi, lo, 0.0), 1.0)


def wasserstein_sorted(ref_s: np.ndarray, cur_s: np.ndarray) -> float:
    """W1 between two sorted samples, exactly, as the area between their
    quantile functions: ∫₀¹ |Q_ref(u) - Q_cur(u)| du (equal to the area
    between the CDFs that scipy integrates). Q is a step function with steps
    at i/n1 and j/n2; on the common denominator lcm(n1, n2) those are integers,
    so the merged steps come from arithmetic, not from a search."""
    n1, n2 = len(ref_s), len(cur_s)
    if n1 == n2:
        return float(np.mean(np.abs(ref_s - cur_s)))
    lcm = n1 // math.gcd(n1, n2) * n2
    q1, q2 = lcm // n1, lcm // n2
    t1 = np.arange(n1, dtype=np.int64) * q1
    t2 = np.arange(n2, dtype=np.int64) * q2
    # Merged order, equal steps cur first: before cur step j come the ref steps
    # strictly below it (ceil(t2 / q1)), before ref step i the cur steps at or
    # below it (floor(t1 / q2) + 1).
    steps = np.empty(n1 + n2 + 1, dtype=np.int64)
    steps[np.arange(n2) + (t2 + q1 - 1) // q1] = t2
    steps[np.arange(n1) + t1 // q2 + 1] = t1
    steps[-1] = lcm
    start = steps[:-1]
    widths = np.diff(steps) / lcm
    return float(np.sum(widths * np.abs(ref_s[start // q1] - cur_s[start // q2])))


def smirnov_sf(n: int, x: float) -> float:
    """One-sided Smirnov P(D+ >= x) (Birnbaum-Tingey sum), = ``scipy.special.smirnov``.

    The sum's terms are log-concave in j, so only the band within e^-60 of its
    largest term is summed (in log space); the rest is below 1e-20 relative.
    """
    top = math.floor(n * (1 - x))
    if top < 0:
        return 0.0
    log_n = float(gammaln(n + 1))

    def log_terms(j: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (log_n - gammaln(j + 1) - gammaln(n - j + 1)
                   + (n - j) * np.log1p(-x - j / n) + (j - 1) * np.log(x + j / n))
        return np.where(np.isnan(out), -np.inf, out)

    step = max(1, top // 4000)
    coarse = np.arange(0, top + 1, step, dtype=np.float64)
    if coarse[-1] != top:
        coarse = np.append(coarse, float(top))
    lc = log_terms(coarse)
    peak = float(lc.max())
    if not np.isfinite(peak):
        return 0.0
    keep = np.flatnonzero(lc >= peak - 60.0)
    lo = max(0.0, coarse[keep[0]] - step)
    hi = min(float(top), coarse[keep[-1]] + step)
    fine = log_terms(np.arange(lo, hi + 1, dtype=np.float64))
    return float(x * math.exp(logsumexp(fine)))


def ks_p_value(d: float, n1: int, n2: int, ref: np.ndarray, cur: np.ndarray) -> float:
    """scipy's p-value: exact for small samples (delegated to scipy), else
    ``kstwo.sf(D, round(n·m/(n+m)))`` - where scipy would sum Smirnov's series
    in extended precision (seconds a column at a million rows), the same series
    is summed here in log space (within 1e-9 of scipy)."""
    if max(n1, n2) <= EXACT_KS_MAX_N:
        return float(stats.ks_2samp(ref, cur, method="auto").pvalue)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = int(np.round(m * n / (m + n)))
    t = en * d
    # scipy's _kolmogn(n, x, cdf=False) takes this branch for these values.
    if en > 140 and 0 < d < 0.5 and 1 < t < en - 1 and 2.2 <= t * d < 370.0:
        return float(np.clip(2 * smirnov_sf(en, d), 0, 1))
    return float(np.clip(stats.kstwo.sf(d, en), 0, 1))


def psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    r = np.where(ref_share == 0, PSI_SMOOTHING, ref_share)
    c = np.where(cur_share == 0, PSI_SMOOTHING, cur_share)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    p = ref_share / ref_share.sum()
    q = cur_share / cur_share.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    div = max(0.5 * float(kl_p.sum()) + 0.5 * float(kl_q.sum()), 0.0)
    return math.sqrt(div)


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``numpy.quantile(..., method="linear")`` of already sorted values, in O(len(q))."""
    n = len(sorted_values)
    virtual = (n - 1) * q
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    t = virtual - below
    a, b = sorted_values[below], sorted_values[above]
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def quantile_bin_shares(ref_sorted: np.ndarray, cur_sorted: np.ndarray, bins: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Shares of both samples in the reference's quantile bins (-inf, e1], (e1, e2], …"""
    edges = np.unique(sorted_quantiles(ref_sorted, np.linspace(0, 1, bins + 1)[1:-1]))
    def shares(s: np.ndarray) -> np.ndarray:
        le = np.searchsorted(s, edges, side="right")
        counts = np.diff(np.concatenate([[0], le, [len(s)]]))
        return counts / len(s)
    return shares(ref_sorted), shares(cur_sorted)


def numeric_drift(reference: np.ndarray, current: np.ndarray,
                  methods: Sequence[DriftMethod] = NUMERIC_METHODS,
                  thresholds: DriftThresholds = DriftThresholds(),
                  bins: int = DEFAULT_BINS) -> SampleDrift:
    """Drift of a numeric column; NaN values are left out of both samples.

    Each sample is sorted once; KS, Wasserstein and the bins all read the
    sorted arrays."""
    ref_s = sorted_finite(reference)
    cur_s = sorted_finite(current)
    n1, n2 = len(ref_s), len(cur_s)
    result = SampleDrift(n1, n2, decision_method=(
        DriftMethod.KS if n1 <= SMALL_SAMPLE else DriftMethod.WASSERSTEIN))
    if n1 == 0 or n2 == 0:
        return result
    if DriftMethod.KS in methods:
        d = ks_sorted(ref_s, cur_s)
        result.statistics.append(DriftStatistic(
            DriftMethod.KS, d, ks_p_value(d, n1, n2, ref_s, cur_s), thresholds.p_value))
    if DriftMethod.WASSERSTEIN in methods:
        w = wasserstein_sorted(ref_s, cur_s)
        std = float(np.std(ref_s))
        normed = w / std if std > 0 else (0.0 if w == 0 else math.inf)
        result.statistics.append(DriftStatistic(DriftMethod.WASSERSTEIN, normed, None,
                                                thresholds.wasserstein, raw=w))
    if DriftMethod.PSI in methods or DriftMethod.JENSEN_SHANNON in methods:
        add_binned(result, methods, thresholds, *quantile_bin_shares(ref_s, cur_s, bins))
    return decided(result)


def add_binned(result: SampleDrift, methods: Iterable[DriftMethod],
               thresholds: DriftThresholds, r_share: np.ndarray, c_share: np.ndarray) -> None:
    """PSI and Jensen-Shannon of two bin shares, those of ``methods`` (from rows, or
    from profiles' sketches)."""
    methods = set(methods)
    if DriftMethod.PSI in methods:
        result.statistics.append(DriftStatistic(DriftMethod.PSI, psi(r_share, c_share),
                                                None, thresholds.psi))
    if DriftMethod.JENSEN_SHANNON in methods:
        result.statistics.append(DriftStatistic(
            DriftMethod.JENSEN_SHANNON, jensen_shannon(r_share, c_share), None,
            thresholds.jensen_shannon))


def decided(result: SampleDrift) -> SampleDrift:
    """The result, deciding by its first statistic when its decision method was not
    computed."""
    if result.decision_method not in {s.method for s in result.statistics} and result.statistics:
        result.decision_method = result.statistics[0].method
    return result


# ---------------------------------------------------------------------------
# Categories


def category_counts(reference: np.ndarray, current: np.ndarray
                    ) -> tuple[list[object], np.ndarray, np.ndarray]:
    # `!= None` is elementwise on object arrays (`is not None` would test the array)
    ref = reference[reference != None]  # noqa: E711
    cur = current[current != None]  # noqa: E711
    cats = sorted({*ref.tolist(), *cur.tolist()}, key=str)
    index = {c: i for i, c in enumerate(cats)}
    ref_counts = np.bincount([index[v] for v in ref.tolist()], minlength=len(cats))
    cur_counts = np.bincount([index[v] for v in cur.tolist()], minlength=len(cats))
    return cats, ref_counts.astype(float), cur_counts.astype(float)


def categorical_drift(reference: np.ndarray, current: np.ndarray,
                      methods: Sequence[DriftMethod] = CATEGORICAL_METHODS,
                      thresholds: DriftThresholds = DriftThresholds()) -> SampleDrift:
    """Drift of a categorical column (None values are left out)."""
    _, ref_counts, cur_counts = category_counts(reference, current)
    return count_drift(ref_counts, cur_counts, methods, thresholds,
                       decide_by_chi_square=int(ref_counts.sum()) <= SMALL_SAMPLE)


def count_drift(ref_counts: np.ndarray, cur_counts: np.ndarray,
                methods: Iterable[DriftMethod], thresholds: DriftThresholds,
                decide_by_chi_square: bool) -> SampleDrift:
    """Drift between two count vectors over the same categories (from rows, or from
    profiles' category counts)."""
    ref_counts = np.asarray(ref_counts, dtype=float)
    cur_counts = np.asarray(cur_counts, dtype=float)
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    result = SampleDrift(n1, n2, decision_method=(
        DriftMethod.CHI_SQUARE if decide_by_chi_square else DriftMethod.JENSEN_SHANNON))
    if n1 == 0 or n2 == 0:
        return result
    r_share, c_share = ref_counts / n1, cur_counts / n2
    for method in methods:
        if method is DriftMethod.PSI:
            result.statistics.append(DriftStatistic(method, psi(r_share, c_share), None,
                                                    thresholds.psi))
        elif method is DriftMethod.JENSEN_SHANNON:
            result.statistics.append(DriftStatistic(method, jensen_shannon(r_share, c_share),
                                                    None, thresholds.jensen_shannon))
        elif method is DriftMethod.CHI_SQUARE:
            if len(ref_counts) < 2:
                result.statistics.append(DriftStatistic(method, 0.0, 1.0, thresholds.p_value))
            else:
                chi = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]),
                                             correction=False)
                result.statistics.append(DriftStatistic(method, float(chi.statistic),
                                                        float(chi.pvalue), thresholds.p_value))
    return decided(result)


def drift_many(pairs: Sequence[tuple[np.ndarray, np.ndarray, bool]],
               methods: Sequence[DriftMethod] | None, thresholds: DriftThresholds, bins: int,
               executor: Executor | None = None) -> list[SampleDrift]:
    """Drift of many columns: (reference, current, is_numeric) each, in parallel."""
    def one(pair: tuple[np.ndarray, np.ndarray, bool]) -> SampleDrift:
        ref, cur, numeric = pair
        if numeric:
            ms = [m for m in (methods or NUMERIC_METHODS) if m in NUMERIC_METHODS]
            return numeric_drift(ref, cur, ms, thresholds, bins)
        ms = [m for m in (methods or CATEGORICAL_METHODS) if m in CATEGORICAL_METHODS]
        return categorical_drift(ref, cur, ms, thresholds)

    if executor is None or len(pairs) < 2:
        return [one(p) for p in pairs]
    return list(executor.map(one, pairs))
