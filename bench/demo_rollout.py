"""Do the demo's rollout settings decide within the demo's traffic? (simulated, no servers)

    uv run python bench/demo_rollout.py [--rollouts 1000] [--seed 0]

The demo (``modelplane demo``) puts two challengers on the deployment with the
settings of ``modelplane.cli.demo.rollouts`` (steps, per-step minimums, margins,
alpha, mixture scale, the per-city check) and sends traffic in rounds of
``ROUND`` requests, each round's actuals after it, the controller looking once
per round. This runs that through ``modelplane.serving.rollout.decide`` - the
controller's own pure decision function - with the controller's step logic, on
the demo's accuracies per city (measured offline on its generated data: the
champion, a logistic model of the numbers, and the two challengers with
merchant, city and segment; the broken one trained with Lisbon's labels
flipped), and counts per case how it ends, at which step, and how many requests
it took. The demo's live stream has at most 4500 requests; the broken challenger's
rollout may use half of it, the better one's the rest (at least ~2250).
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import timedelta

import numpy as np
from rollout_sim import START, city_round, follow, new_rollout

from modelplane.cli.demo import rollouts as demo
from modelplane.serving.rollout import Analysis, RolloutStep, SliceCheck, decide

#: share of the live requests per city (the demo's generated traffic)
SHARES = {"Lisbon": 0.164, "Porto": 0.189, "Madrid": 0.218, "Paris": 0.203, "Berlin": 0.226}
#: accuracy per city on the demo's live traffic (Porto: between before and after its shift)
CHAMPION = {"Lisbon": 0.772, "Porto": 0.70, "Madrid": 0.765, "Paris": 0.809, "Berlin": 0.748}
BETTER = {"Lisbon": 0.856, "Porto": 0.70, "Madrid": 0.828, "Paris": 0.828, "Berlin": 0.848}
BROKEN = {"Lisbon": 0.228, "Porto": 0.70, "Madrid": 0.814, "Paris": 0.818, "Berlin": 0.789}
TICK = timedelta(seconds=demo.STEP_SECONDS)  # each step's minimum duration is one round


def analysis() -> Analysis:
    return Analysis(margin=demo.MARGIN, alpha=demo.ALPHA, mixture_scale=demo.MIXTURE_SCALE,
                    slices=(SliceCheck(demo.SLICE_FEATURE, demo.SLICE_MARGIN,
                                       min_labeled=demo.SLICE_MIN_LABELED),))


def simulate(rng: np.random.Generator, p1: dict[str, float], limit: int
             ) -> tuple[str, int, bool, int]:
    """One rollout: (outcome, step it ended at, rolled back by a slice, requests sent)."""
    steps = tuple(RolloutStep(w, demo.STEP_SECONDS, n)
                  for w, n in zip(demo.STEPS, demo.STEP_SAMPLES, strict=True))
    r, now = new_rollout("demo", steps, analysis()), START
    names = list(SHARES)
    shares = np.array([SHARES[c] for c in names])
    shares = shares / shares.sum()
    q0 = np.array([CHAMPION[c] for c in names])
    q1 = np.array([p1[c] for c in names])
    n = np.zeros((len(names), 4), dtype=np.int64)  # n0, x0, n1, x1 per city
    sent = 0
    while sent < limit:
        now += TICK
        sent += demo.ROUND
        champion, challenger, slices = city_round(rng, n, demo.ROUND, shares, r.step.weight,
                                                  q0, q1, names)
        # one look per round (a new step holds STEP_SECONDS, about a round)
        d = decide(r, champion, challenger, now, slices)
        ended, r = follow(r, d, now, step_start_labeled=challenger.labeled)
        if ended:
            return (ended, r.current_step,
                    ended == "rolled back" and d.reason.startswith("in the slice"), sent)
    return "undecided", r.current_step, False, sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"steps {demo.STEPS} with {demo.STEP_SAMPLES} labeled challenger predictions, "
          f"margin {demo.MARGIN}, city margin {demo.SLICE_MARGIN} (>= "
          f"{demo.SLICE_MIN_LABELED}), alpha {demo.ALPHA}, mixture scale "
          f"{demo.MIXTURE_SCALE}, rounds of {demo.ROUND}; {args.rollouts} rollouts per case\n")
    print("| case | promoted | rolled back | by a city | before the last step | undecided "
          "| requests median | p90 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p1, limit in (("broken in Lisbon", BROKEN, 2250), ("better", BETTER, 2250)):
        res = [simulate(rng, p1, limit) for _ in range(args.rollouts)]
        out = Counter(r[0] for r in res)
        k = args.rollouts
        by_city = sum(r[2] for r in res) / k
        early = sum(r[0] == "rolled back" and r[1] < len(demo.STEPS) - 1 for r in res) / k
        sent = [r[3] for r in res if r[0] != "undecided"]
        print(f"| {name} | {out['promoted'] / k:.3f} | {out['rolled back'] / k:.3f} | "
              f"{by_city:.3f} | {early:.3f} | {out['undecided'] / k:.3f} | "
              f"{np.median(sent):.0f} | {np.percentile(sent, 90):.0f} |")


if __name__ == "__main__":
    main()
