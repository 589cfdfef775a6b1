"""How far Wasserstein from merged profiles strays from the exact (scipy) value on
heavy-tailed columns, by KLL k: the measurement behind observability's
``KLL_K`` and the README's bound table.

    uv run python bench/profile_accuracy.py                 # ~1 min
    uv run python bench/profile_accuracy.py --sigmas 1 2 --n 100000 --repeats 3

For each lognormal sigma: ``--pairs`` A/A pairs (two samples of ``--n`` values from
the same distribution, so any distance is noise) and as many drifted pairs (15 %
of the current values times 4, as the scale bench's Porto). Each sample is cut
into ``--hours`` hourly profiles (as ingest keeps them) and merged (as a window
query does); the normalized Wasserstein of the merged sketches is compared with
``scipy.stats.wasserstein_distance / std``. KLL is randomized, so each setting
runs ``--repeats`` times. Prints the mean and largest absolute error and the
largest A/A value (the default drift threshold is 0.1).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

import modelplane.observability.profiles as P
from modelplane.observability.drift import DriftMethod, DriftThresholds


def _profile(values: np.ndarray, hours: int) -> P.ColumnProfile:
    merged = P.ColumnProfile()
    for part in np.array_split(values, hours):
        hour = P.ColumnProfile()
        hour.add_numbers(part)
        merged.merge(hour)
    return merged


def _distance(ref: np.ndarray, cur: np.ndarray, hours: int) -> float:
    d = P.profile_numeric_drift(_profile(ref, hours), _profile(cur, hours),
                                [DriftMethod.WASSERSTEIN], DriftThresholds(), 10, False)
    stat = d.statistic(DriftMethod.WASSERSTEIN)
    assert stat is not None
    return stat.value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[400, P.KLL_K])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 1.5])
    ap.add_argument("--n", type=int, default=40_000, help="values a side")
    ap.add_argument("--hours", type=int, default=200)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    built = P.KLL_K
    print(f"KLL_K in the service: {built}; {args.n} values a side in {args.hours} hourly "
          f"profiles; {args.pairs} pairs; {args.repeats} repeats")
    for sigma in args.sigmas:
        samples = []
        for seed in range(args.pairs):
            rng = np.random.default_rng(seed)
            ref = rng.lognormal(3.5, sigma, args.n)
            same = rng.lognormal(3.5, sigma, args.n)
            moved = rng.lognormal(3.5, sigma, args.n) * np.where(rng.random(args.n) < 0.15,
                                                                  4.0, 1.0)
            samples.append((ref, same, moved,
                            stats.wasserstein_distance(ref, same) / ref.std(),
                            stats.wasserstein_distance(ref, moved) / ref.std()))
        for k in args.ks:
            P.KLL_K = k
            for rep in range(args.repeats):
                err_aa, err_moved, top_aa = [], [], 0.0
                for ref, same, moved, exact_aa, exact_moved in samples:
                    w = _distance(ref, same, args.hours)
                    err_aa.append(abs(w - exact_aa))
                    top_aa = max(top_aa, w)
                    err_moved.append(abs(_distance(ref, moved, args.hours) - exact_moved))
                print(f"sigma {sigma:g}  k {k:5d}  run {rep + 1}:  A/A error mean "
                      f"{np.mean(err_aa):.4f} max {np.max(err_aa):.4f}, largest A/A value "
                      f"{top_aa:.4f};  drifted error mean {np.mean(err_moved):.4f} max "
                      f"{np.max(err_moved):.4f} (exact ~{np.mean([s[4] for s in samples]):.3f})")
    P.KLL_K = built


if __name__ == "__main__":
    main()
