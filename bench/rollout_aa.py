"""How often the rollout decision rule promotes or rolls back by mistake (simulated, no servers).

    uv run python bench/rollout_aa.py [--rollouts 2000] [--alpha 0.05] [--seed 0]

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
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from modelplane.serving.deployment import ModelTarget
from modelplane.serving.rollout import Action, Analysis, Counts, Rollout, RolloutStep, decide

PER_TICK = 200
MAX_TICKS = 300
TICK = timedelta(seconds=60)
P_CHAMPION = 0.85


def simulate(rng: np.random.Generator, p0: float, p1: float, analysis: Analysis
             ) -> tuple[str, bool]:
    """One rollout: (outcome, whether a peeking z-test would have promoted)."""
    steps = tuple(RolloutStep(w, 3 * TICK.total_seconds(), 50) for w in (5, 25, 50))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    r = Rollout("aa", "d", ModelTarget(version="2"), steps, analysis, step_start_time=now,
                start_time=now)
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
        if d.action is Action.PROMOTE:
            return "promoted", peeked
        if d.action is Action.ROLL_BACK:
            return "rolled back", peeked
        if d.action is Action.ADVANCE:
            r = replace(r, current_step=r.current_step + 1, step_start_time=now,
                        step_start_labeled=n1)
    return "undecided", peeked


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
    args = ap.parse_args()
    scenarios = [
        ("A/A, margin 0", P_CHAMPION, P_CHAMPION, 0.0, "any decision"),
        ("at the margin 0.02", P_CHAMPION, P_CHAMPION - 0.02, 0.02, "promoted"),
        ("A/A, margin 0.02", P_CHAMPION, P_CHAMPION, 0.02, "rolled back"),
        ("worse by 0.05, margin 0.02", P_CHAMPION, P_CHAMPION - 0.05, 0.02, "promoted"),
    ]
    print(f"{args.rollouts} simulated rollouts per scenario, alpha={args.alpha}, champion "
          f"accuracy {P_CHAMPION}, {PER_TICK} labeled predictions per tick, at most "
          f"{MAX_TICKS} ticks")
    print(f"{'scenario':30s} {'promoted':>9s} {'rolled back':>12s} {'undecided':>10s} "
          f"{'error rate':>11s} {'peeking z promoted':>19s} {'s':>5s}")
    for i, (name, p0, p1, margin, error) in enumerate(scenarios):
        rng = np.random.default_rng(args.seed + i)
        analysis = Analysis(margin=margin, alpha=args.alpha)
        started = time.perf_counter()
        counts = {"promoted": 0, "rolled back": 0, "undecided": 0}
        peeking = 0
        for _ in range(args.rollouts):
            outcome, peeked = simulate(rng, p0, p1, analysis)
            counts[outcome] += 1
            peeking += peeked
        n = args.rollouts
        wrong = (counts["promoted"] + counts["rolled back"]) if error == "any decision" \
            else counts[error]
        print(f"{name:30s} {counts['promoted'] / n:9.3f} {counts['rolled back'] / n:12.3f} "
              f"{counts['undecided'] / n:10.3f} {wrong / n:11.3f} {peeking / n:19.3f} "
              f"{time.perf_counter() - started:5.1f}")
    print("error rate: promotions and roll backs (A/A, margin 0), promotions (at the margin), "
          "roll backs (A/A, margin 0.02), promotions (worse); each should be <= alpha")


if __name__ == "__main__":
    main()
