"""How often the rollout decision rule promotes or rolls back by mistake (simulated, no servers).

    uv run python bench/rollout_aa.py [--rollouts 2000] [--alpha 0.05] [--seed 0]
        [--parts quality,mae,slices,proxy,operations,together]

Runs N simulated rollouts through ``modelplane.serving.rollout.decide`` - the
controller's pure decision function - with the controller's own step logic
(advance when a step's minimums are met, stop at the first promote or roll
back). Each tick, ``PER_TICK`` requests are split by the step's weight and
every prediction gets its actual at once, right with the side's accuracy. Steps
5 % -> 25 % -> 50 %, each held for 3 ticks and 50 labeled challenger
predictions; a rollout that has not decided after ``MAX_TICKS`` counts as
undecided. Scenarios:

* A/A, margin 0 - the challenger is the champion: any decision is an error;
  both rates should be at most alpha together (the test's H0 holds exactly);
* at the margin - the challenger is worse by exactly the margin: a promotion is
  an error, at most alpha;
* A/A, margin 0.02 - a promotion is right (the test's power);
* worse by 0.05, margin 0.02 - a roll back is right.

For contrast, the same A/A streams are judged by a fixed-sample one-sided
z-test looked at after every tick ("peeking"), which is what a script that
re-checks a dashboard does: its false promotion rate is far above alpha.

Then the same rule on a regressor's MAE (``Analysis(metric="MAE")``, lower is
better): every labeled prediction has an error drawn from the side's
distribution, and the rule reads what observability would give it - the
labeled count, the MAE and the RMSE so far - so the variance of ``|e|`` is
``RMSE^2 - MAE^2``. Champion errors ~ N(0, 10^2) (MAE 7.98); mixture scale 0.4
(the target's units), steps as above:

* A/A, margin 0 - any decision is an error;
* at the margin 0.4 - the challenger's MAE is 0.4 higher: a promotion is an error;
* A/A, margin 0, Laplace errors (heavier tails, ``|e|`` exponential) - the
  normal approximation under a skewed ``|e|``: any decision is an error;
* A/A, margin 0.4 - a promotion is right; MAE higher by 1.0, margin 0.4 - a
  roll back is right.

Then the per-slice check (``SliceCheck("city", margin, min_labeled=30)``): the
same requests spread over five cities with shares 35/25/20/12/8 %, steps held
15 ticks (and 50 samples) each, each city value tested at alpha / k:

* A/A with slices, margins 0 - every roll back is an error (overall or by a
  city); the slice roll backs alone should be at most alpha;
* worse in one city only - the challenger is 0.30 worse in the 20 % city
  (paris) and as good elsewhere (0.06 worse overall), overall margin 0.05, city
  margin 0.05: it should be rolled back, and before the 50 % step; the same
  streams without the slice check for contrast.

Then the proxy check without any actual (``ProxyCheck`` defaults: drift 0.1,
500 records, CBPE with margin 0, advancing on proxies): each prediction draws a
class from its side's shares and a confidence (the probability CBPE reads) from
a beta distribution; steps 5/25/50 % held 3 ticks and 50 predictions. Every
roll back in an A/A scenario is an error, and no scenario may ever promote:

* A/A, binary (70/30) and A/A, 10 classes (shares ~ 1/rank);
* drifted: the challenger predicts 55/45 instead of 70/30;
* estimated worse: same classes, mean confidence 0.80 instead of 0.85.

Then the operations check (``OperationsCheck`` defaults: margins 0, p99 bound
x1.5 + 5 ms, 200 requests): per request an error with the side's rate and a
lognormal latency (median 10 ms, sigma 0.4) in the controller's 4.4 % buckets;
steps advance on time alone (no actuals), so the check looks every tick for
``MAX_TICKS`` ticks:

* A/A (errors 0.5 %), and A/A with a bound of x1 + 0 ms (the caveat: the bound
  must sit above the champion's p99, which is itself estimated);
* errors 3 % against 0.5 %; slower (median 20 ms against 10 ms).

Last, "together": A/A with the quality check (margin 0), the proxy check (CBPE,
margin 0) and the operations check on the same rollouts, with actuals: every
decision is an error; the roll backs add up over the families (union bound).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from datetime import timedelta

import numpy as np
from rollout_sim import START, city_round, follow, new_rollout

from modelplane.serving.rollout import (
    BUCKETS_PER_DOUBLING,
    Analysis,
    Counts,
    OperationsCheck,
    ProxyCheck,
    ProxyStats,
    RolloutStep,
    RouteStats,
    SliceCheck,
    decide,
)

PER_TICK = 200
MAX_TICKS = 300
TICK = timedelta(seconds=60)
P_CHAMPION = 0.85


def simulate(rng: np.random.Generator, p0: float, p1: float, analysis: Analysis
             ) -> tuple[str, bool]:
    """One rollout: (outcome, whether a peeking z-test would have promoted)."""
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 50) for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    n0 = x0 = n1 = x1 = 0
    z_crit = _z_quantile(1 - analysis.alpha)
    peeked = False
    for _ in range(MAX_TICKS):
        now += TICK
        m1 = int(rng.binomial(PER_TICK, r.step.weight / 100))
        m0 = PER_TICK - m1
        n0, x0 = n0 + m0, x0 + int(rng.binomial(m0, p0))
        n1, x1 = n1 + m1, x1 + int(rng.binomial(m1, p1))
        if n0 >= analysis.min_labeled and n1 >= analysis.min_labeled and not peeked:
            a0, a1 = x0 / n0, x1 / n1
            se = math.sqrt(max(a0 * (1 - a0) / n0 + a1 * (1 - a1) / n1, 1e-12))
            peeked = (a1 - a0 + analysis.margin) / se > z_crit
        d = decide(r, Counts(n0, x0), Counts(n1, x1), now)
        ended, r = follow(r, d, now, step_start_labeled=n1)
        if ended:
            return ended, peeked
    return "undecided", peeked


MAE_SIGMA = 10.0
#: E|e| of N(0, s^2) is s sqrt(2/pi); of Laplace(0, b) it is b
HALF_NORMAL = math.sqrt(2 / math.pi)
MAE_TAU = 0.4


def _errors(rng: np.random.Generator, kind: str, mae: float, n: int) -> np.ndarray:
    if kind == "laplace":
        return rng.laplace(0.0, mae, n)
    return rng.normal(0.0, mae / HALF_NORMAL, n)


def simulate_mae(rng: np.random.Generator, kind: str, mae0: float, mae1: float,
                 analysis: Analysis) -> str:
    """One regression rollout judged on MAE: the rule sees (n, MAE, RMSE) per side."""
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 50) for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    sums = np.zeros((2, 3))  # per side: n, sum |e|, sum e^2

    def counts(side: int) -> Counts:
        n, a, q = sums[side]
        return Counts(int(n), mae=a / n, rmse=math.sqrt(q / n)) if n else Counts()

    for _ in range(MAX_TICKS):
        now += TICK
        m1 = int(rng.binomial(PER_TICK, r.step.weight / 100))
        for side, m, mae in ((0, PER_TICK - m1, mae0), (1, m1, mae1)):
            e = _errors(rng, kind, mae, m)
            sums[side] += (m, np.abs(e).sum(), (e * e).sum())
        d = decide(r, counts(0), counts(1), now)
        ended, r = follow(r, d, now, step_start_labeled=int(sums[1][0]))
        if ended:
            return ended
    return "undecided"


def _error_row(name: str, counts: dict[str, int], n: int, error: str, started: float,
               extra: str = "") -> None:
    """Print one scenario's share of each outcome and its error rate (``error``: the
    outcome that is wrong there, or "any decision"), ``extra`` columns, its seconds."""
    wrong = (counts["promoted"] + counts["rolled back"]) if error == "any decision" \
        else counts[error]
    print(f"{name:30s} {counts['promoted'] / n:9.3f} {counts['rolled back'] / n:12.3f} "
          f"{counts['undecided'] / n:10.3f} {wrong / n:11.3f} {extra}"
          f"{time.perf_counter() - started:5.1f}")


def mae_scenarios(rollouts: int, alpha: float, seed: int) -> None:
    m0 = MAE_SIGMA * HALF_NORMAL
    scenarios = [
        ("MAE A/A, margin 0", "normal", m0, 0.0, "any decision"),
        ("MAE at the margin 0.4", "normal", m0 + 0.4, 0.4, "promoted"),
        ("MAE A/A, margin 0, Laplace", "laplace", m0, 0.0, "any decision"),
        ("MAE A/A, margin 0.4", "normal", m0, 0.4, "rolled back"),
        ("MAE worse by 1.0, margin 0.4", "normal", m0 + 1.0, 0.4, "promoted"),
    ]
    print(f"\nMAE (lower is better): champion MAE {m0:.2f}, mixture scale {MAE_TAU}, "
          f"{PER_TICK} labeled predictions per tick, at most {MAX_TICKS} ticks")
    print(f"{'scenario':30s} {'promoted':>9s} {'rolled back':>12s} {'undecided':>10s} "
          f"{'error rate':>11s} {'s':>5s}")
    for i, (name, kind, m1, margin, error) in enumerate(scenarios):
        rng = np.random.default_rng(seed + 50 + i)
        analysis = Analysis(metric="MAE", margin=margin, alpha=alpha, mixture_scale=MAE_TAU)
        started = time.perf_counter()
        counts = {"promoted": 0, "rolled back": 0, "undecided": 0}
        for _ in range(rollouts):
            counts[simulate_mae(rng, kind, m0, m1, analysis)] += 1
        _error_row(name, counts, rollouts, error, started)
    print("error rate: as for accuracy; each should be <= alpha")


CITIES = {"berlin": 0.35, "lyon": 0.25, "paris": 0.20, "oslo": 0.12, "rome": 0.08}
SLICE_STEP_TICKS = 15


def simulate_slices(rng: np.random.Generator, p0: float, p1: dict[str, float],
                    analysis: Analysis) -> tuple[str, int, bool]:
    """One rollout over cities: (outcome, step it ended at, rolled back by a slice)."""
    steps = tuple(RolloutStep(w, SLICE_STEP_TICKS * TICK.total_seconds(), 50)
                  for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    names = list(CITIES)
    shares = np.array([CITIES[c] for c in names])
    n = np.zeros((len(names), 4), dtype=np.int64)  # n0, x0, n1, x1 per city
    q1 = np.array([p1.get(c, p0) for c in names])
    for _ in range(MAX_TICKS):
        now += TICK
        champion, challenger, slices = city_round(rng, n, PER_TICK, shares, r.step.weight,
                                                  p0, q1, names)
        d = decide(r, champion, challenger, now, slices)
        ended, r = follow(r, d, now, step_start_labeled=challenger.labeled)
        if ended:
            return (ended, r.current_step,
                    ended == "rolled back" and d.reason.startswith("in the slice"))
    return "undecided", r.current_step, False


def slice_scenarios(rollouts: int, alpha: float, seed: int) -> None:
    city = (SliceCheck("city", 0.0, min_labeled=30),)
    city_05 = (SliceCheck("city", 0.05, min_labeled=30),)
    scenarios = [
        ("A/A with slices, margins 0", {}, Analysis(margin=0.0, alpha=alpha, slices=city)),
        ("worse in paris only", {"paris": P_CHAMPION - 0.30},
         Analysis(margin=0.05, alpha=alpha, slices=city_05)),
        ("  same, no slice check", {"paris": P_CHAMPION - 0.30},
         Analysis(margin=0.05, alpha=alpha)),
    ]
    shares = ", ".join(f"{c} {s:.0%}" for c, s in CITIES.items())
    print(f"\nper-slice check, 5 cities (shares {shares}), steps held {SLICE_STEP_TICKS} "
          "ticks, each city at alpha/k")
    print(f"{'scenario':30s} {'promoted':>9s} {'rolled back':>12s} {'by a slice':>11s} "
          f"{'before 50%':>11s} {'undecided':>10s} {'s':>5s}")
    for i, (name, p1, analysis) in enumerate(scenarios):
        rng = np.random.default_rng(seed + 100 + i)
        started = time.perf_counter()
        counts = {"promoted": 0, "rolled back": 0, "undecided": 0}
        by_slice = early = 0
        for _ in range(rollouts):
            outcome, step, sliced = simulate_slices(rng, P_CHAMPION, p1, analysis)
            counts[outcome] += 1
            by_slice += sliced
            early += outcome == "rolled back" and step < 2
        n = rollouts
        print(f"{name:30s} {counts['promoted'] / n:9.3f} {counts['rolled back'] / n:12.3f} "
              f"{by_slice / n:11.3f} {early / n:11.3f} {counts['undecided'] / n:10.3f} "
              f"{time.perf_counter() - started:5.1f}")
    print("A/A: every roll back is an error (by a slice: <= alpha); worse in paris: rolled "
          "back before the 50 % step is right")


def _js(a: np.ndarray, b: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2) of two count vectors, as observability's drift."""
    if not a.sum() or not b.sum():
        return 0.0
    p, q = a / a.sum(), b / b.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log2(p / m), 0.0).sum() + np.where(
            q > 0, q * np.log2(q / m), 0.0).sum()
    return math.sqrt(max(kl / 2, 0.0))


def simulate_proxy(rng: np.random.Generator, shares0: np.ndarray, shares1: np.ndarray,
                   conf0: float, conf1: float, analysis: Analysis) -> tuple[str, int]:
    """One rollout with no actual ever: (outcome, ticks)."""
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 50) for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    c0, c1 = np.zeros(len(shares0)), np.zeros(len(shares1))
    s0 = s1 = 0.0
    k = 20.0  # beta concentration of the confidences
    for tick in range(1, MAX_TICKS + 1):
        now += TICK
        m1 = int(rng.binomial(PER_TICK, r.step.weight / 100))
        m0 = PER_TICK - m1
        c0 += rng.multinomial(m0, shares0)
        c1 += rng.multinomial(m1, shares1)
        s0 += rng.beta(conf0 * k, (1 - conf0) * k, size=m0).sum()
        s1 += rng.beta(conf1 * k, (1 - conf1) * k, size=m1).sum()
        n0, n1 = int(c0.sum()), int(c1.sum())
        proxy = ProxyStats(n0, n1, _js(c0, c1), s0 / n0 if n0 else None,
                           s1 / n1 if n1 else None)
        d = decide(r, Counts(), Counts(), now, proxy=proxy)
        ended, r = follow(r, d, now, step_start_records=n1)
        if ended:
            return ended, tick
    return "undecided", MAX_TICKS


def proxy_scenarios(rollouts: int, alpha: float, seed: int) -> None:
    check = ProxyCheck(estimated_accuracy=True, estimated_margin=0.0,
                       advance_without_actuals=True)
    analysis = Analysis(alpha=alpha, proxy=check)
    binary = np.array([0.7, 0.3])
    ten = 1 / np.arange(1, 11)
    ten = ten / ten.sum()
    scenarios = [
        ("A/A, binary 70/30", binary, binary, 0.85, 0.85, True),
        ("A/A, 10 classes", ten, ten, 0.85, 0.85, True),
        ("drifted 55/45 vs 70/30", binary, np.array([0.55, 0.45]), 0.85, 0.85, False),
        ("estimated worse 0.80 vs 0.85", binary, binary, 0.85, 0.80, False),
    ]
    print(f"\nproxy check, no actuals (drift > {check.max_prediction_drift} after "
          f"{check.min_records} records a side; CBPE mSPRT, margin 0), advancing on proxies")
    print(_OUTCOME_HEADER)
    for i, (name, sh0, sh1, q0, q1, _aa) in enumerate(scenarios):
        _outcome_row(name, rollouts, np.random.default_rng(seed + 200 + i),
                     lambda rng, a=sh0, b=sh1, c=q0, d=q1: simulate_proxy(rng, a, b, c, d,
                                                                         analysis))
    print("A/A: every roll back is an error (<= alpha); promoted must be 0 everywhere "
          "(proxies never promote)")


#: the columns _outcome_row prints
_OUTCOME_HEADER = (f"{'scenario':30s} {'promoted':>9s} {'rolled back':>12s} {'undecided':>10s} "
                   f"{'median ticks to roll back':>26s} {'s':>5s}")


def _outcome_row(name: str, rollouts: int, rng: np.random.Generator,
                 simulate: Callable[[np.random.Generator], tuple[str, int]]) -> None:
    """Run ``rollouts`` simulations of one scenario; print the share of each outcome and
    the median tick of the roll backs."""
    started = time.perf_counter()
    counts = {"promoted": 0, "rolled back": 0, "undecided": 0}
    ticks = []
    for _ in range(rollouts):
        outcome, t = simulate(rng)
        counts[outcome] += 1
        if outcome == "rolled back":
            ticks.append(t)
    med = f"{np.median(ticks):.0f}" if ticks else "-"
    print(f"{name:30s} {counts['promoted'] / rollouts:9.3f} "
          f"{counts['rolled back'] / rollouts:12.3f} {counts['undecided'] / rollouts:10.3f} "
          f"{med:>26s} {time.perf_counter() - started:5.1f}")


def _hist(counts: np.ndarray) -> tuple[tuple[int, int], ...]:
    nz = np.nonzero(counts)[0]
    return tuple((int(b), int(counts[b])) for b in nz)


def _serve(rng: np.random.Generator, m: int, error_rate: float, median_ms: float, side: int,
           req: list[int], err: list[int], lat: list[np.ndarray]) -> None:
    """``m`` requests to one side: each an error with ``error_rate``, the others taking a
    lognormal time (median ``median_ms``, sigma 0.4) counted in the controller's buckets."""
    bad = int(rng.binomial(m, error_rate))
    req[side] += m
    err[side] += bad
    us = rng.lognormal(math.log(median_ms * 1000), 0.4, size=m - bad)
    b = np.floor(BUCKETS_PER_DOUBLING * np.log2(np.maximum(us, 1.0))).astype(int)
    lat[side] += np.bincount(b, minlength=512)[:512]


def simulate_operations(rng: np.random.Generator, err0: float, err1: float, med0: float,
                        med1: float, analysis: Analysis) -> tuple[str, int]:
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 0) for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    req = [0, 0]
    err = [0, 0]
    lat = [np.zeros(512, dtype=np.int64), np.zeros(512, dtype=np.int64)]
    for tick in range(1, MAX_TICKS + 1):
        now += TICK
        m1 = int(rng.binomial(PER_TICK, r.step.weight / 100))
        for side, (m, e, med) in enumerate(((PER_TICK - m1, err0, med0), (m1, err1, med1))):
            _serve(rng, m, e, med, side, req, err, lat)
        ops = (RouteStats(req[0], err[0], 0, _hist(lat[0])),
               RouteStats(req[1], err[1], 0, _hist(lat[1])))
        d = decide(r, Counts(), Counts(), now, operations=ops)
        ended, r = follow(r, d, now)
        if ended:
            return ended, tick
    return "undecided", MAX_TICKS


def operations_scenarios(rollouts: int, alpha: float, seed: int) -> None:
    default = Analysis(alpha=alpha, operations=OperationsCheck())
    tight = Analysis(alpha=alpha, operations=OperationsCheck(latency_p99_factor=1.0,
                                                             latency_p99_slack_ms=0.0))
    scenarios = [
        ("A/A, errors 0.5 %", 0.005, 0.005, 10.0, 10.0, default),
        ("A/A, bound x1 + 0 ms", 0.005, 0.005, 10.0, 10.0, tight),
        ("errors 3 % vs 0.5 %", 0.005, 0.03, 10.0, 10.0, default),
        ("slower, median 20 vs 10 ms", 0.005, 0.005, 10.0, 20.0, default),
    ]
    print(f"\noperations check (margins 0, p99 bound x1.5 + 5 ms, 200 requests a side; "
          f"three tests at alpha/3), {MAX_TICKS} looks")
    print(_OUTCOME_HEADER)
    for i, (name, e0, e1, m0, m1, analysis) in enumerate(scenarios):
        _outcome_row(name, rollouts, np.random.default_rng(seed + 300 + i),
                     lambda rng, a=e0, b=e1, c=m0, d=m1, an=analysis:
                     simulate_operations(rng, a, b, c, d, an))
    print("A/A: every roll back is an error (<= alpha with the default bound); operations "
          "never promote")


def simulate_everything(rng: np.random.Generator, analysis: Analysis) -> str:
    """One A/A rollout with every check but slices: actuals (both 0.85 right),
    predictions (binary 70/30, confidences ~ beta, mean 0.85) and request outcomes
    (errors 0.5 %, lognormal latency, median 10 ms), all from the same sides."""
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 50) for w in (5, 25, 50))
    r, now = new_rollout("aa", steps, analysis), START
    shares = np.array([0.7, 0.3])
    n = np.zeros((2, 2), dtype=np.int64)      # labeled, correct per side
    cls = np.zeros((2, 2))                    # class counts per side
    conf = [0.0, 0.0]
    req = [0, 0]
    err = [0, 0]
    lat = [np.zeros(512, dtype=np.int64), np.zeros(512, dtype=np.int64)]
    for _ in range(MAX_TICKS):
        now += TICK
        m1 = int(rng.binomial(PER_TICK, r.step.weight / 100))
        for side, m in enumerate((PER_TICK - m1, m1)):
            n[side, 0] += m
            n[side, 1] += int(rng.binomial(m, P_CHAMPION))
            cls[side] += rng.multinomial(m, shares)
            conf[side] += float(rng.beta(17.0, 3.0, size=m).sum())
            _serve(rng, m, 0.005, 10.0, side, req, err, lat)
        r0, r1 = int(cls[0].sum()), int(cls[1].sum())
        proxy = ProxyStats(r0, r1, _js(cls[0], cls[1]), conf[0] / r0 if r0 else None,
                           conf[1] / r1 if r1 else None)
        ops = (RouteStats(req[0], err[0], 0, _hist(lat[0])),
               RouteStats(req[1], err[1], 0, _hist(lat[1])))
        d = decide(r, Counts(int(n[0, 0]), int(n[0, 1])), Counts(int(n[1, 0]), int(n[1, 1])),
                   now, proxy=proxy, operations=ops)
        ended, r = follow(r, d, now, step_start_labeled=int(n[1, 0]), step_start_records=r1)
        if ended == "rolled back":
            return "rolled back by " + d.reason.split(":")[0] if d.reason.startswith(
                ("proxy", "operations")) else "rolled back by quality"
        if ended:
            return ended
    return "undecided"


def everything_scenario(rollouts: int, alpha: float, seed: int) -> None:
    analysis = Analysis(margin=0.0, alpha=alpha, proxy=ProxyCheck(estimated_accuracy=True),
                        operations=OperationsCheck())
    rng = np.random.default_rng(seed + 400)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    for _ in range(rollouts):
        outcome = simulate_everything(rng, analysis)
        counts[outcome] = counts.get(outcome, 0) + 1
    rolled = sum(v for k, v in counts.items() if k.startswith("rolled back"))
    print(f"\nA/A with quality (margin 0), proxy (CBPE margin 0) and operations checks "
          f"together, {rollouts} runs ({time.perf_counter() - started:.1f} s)")
    print(f"promoted {counts.get('promoted', 0) / rollouts:.3f}, rolled back "
          f"{rolled / rollouts:.3f} (" + ", ".join(
              f"{k.removeprefix('rolled back by ')} {v / rollouts:.3f}"
              for k, v in sorted(counts.items()) if k.startswith("rolled back"))
          + f"), undecided {counts.get('undecided', 0) / rollouts:.3f}; every decision is "
          "an error here")


def _z_quantile(q: float) -> float:
    # inverse of the standard normal CDF by bisection (no scipy needed)
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=2000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", default="quality,mae,slices,proxy,operations,together",
                    help="comma-separated: quality, mae, slices, proxy, operations, together")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    for part, scenarios in (("quality", quality_scenarios), ("mae", mae_scenarios),
                            ("slices", slice_scenarios), ("proxy", proxy_scenarios),
                            ("operations", operations_scenarios),
                            ("together", everything_scenario)):
        if part in parts:
            scenarios(args.rollouts, args.alpha, args.seed)


def quality_scenarios(rollouts: int, alpha: float, seed: int) -> None:
    scenarios = [
        ("A/A, margin 0", P_CHAMPION, P_CHAMPION, 0.0, "any decision"),
        ("at the margin 0.02", P_CHAMPION, P_CHAMPION - 0.02, 0.02, "promoted"),
        ("A/A, margin 0.02", P_CHAMPION, P_CHAMPION, 0.02, "rolled back"),
        ("worse by 0.05, margin 0.02", P_CHAMPION, P_CHAMPION - 0.05, 0.02, "promoted"),
    ]
    print(f"{rollouts} simulated rollouts per scenario, alpha={alpha}, champion "
          f"accuracy {P_CHAMPION}, {PER_TICK} labeled predictions per tick, at most "
          f"{MAX_TICKS} ticks")
    print(f"{'scenario':30s} {'promoted':>9s} {'rolled back':>12s} {'undecided':>10s} "
          f"{'error rate':>11s} {'peeking z promoted':>19s} {'s':>5s}")
    for i, (name, p0, p1, margin, error) in enumerate(scenarios):
        rng = np.random.default_rng(seed + i)
        analysis = Analysis(margin=margin, alpha=alpha)
        started = time.perf_counter()
        counts = {"promoted": 0, "rolled back": 0, "undecided": 0}
        peeking = 0
        for _ in range(rollouts):
            outcome, peeked = simulate(rng, p0, p1, analysis)
            counts[outcome] += 1
            peeking += peeked
        _error_row(name, counts, rollouts, error, started, f"{peeking / rollouts:19.3f} ")
    print("error rate: promotions and roll backs (A/A, margin 0), promotions (at the margin), "
          "roll backs (A/A, margin 0.02), promotions (worse); each should be <= alpha")


if __name__ == "__main__":
    main()
