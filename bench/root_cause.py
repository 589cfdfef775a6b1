"""How often root cause names the slice that actually broke, over many generated runs.

    uv run python bench/root_cause.py                          # 40 seeds, 500 and 800 a side
    uv run python bench/root_cause.py --seeds 60 --sides 500 --depth 2

Each run generates the lifecycle demo's data (``modelplane.kit.demo_data``:
transactions in five cities; from the midpoint on, Porto's amounts grow 4-8x,
most go to electronics and half are fraud), fits a logistic regression on the
history's numeric features (the demo's champion), logs the predictions and the
true labels into an embedded evaluation store through the service's ingestor,
and asks ``Evaluations.root_cause`` for the accuracy drop and for the drift of
``amount``, second half against first, sliced by city, merchant category,
customer segment and hour. It counts how often the first slice names Porto
under the service's ranking (``score``) and under the plain leave-one-out
ranking (highest ``contribution``, what the service ranked by before), and
prints what came first when it was not Porto.

Not a timing benchmark: a quality check of the ranking, too slow and too
statistical (a few runs in a hundred may miss) for the test suite.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression

from modelplane.kit import demo_data as D
from modelplane.observability import metrics as M
from modelplane.observability.evaluations import Evaluations, Reference
from modelplane.observability.ingest import RecordIngestor
from modelplane.observability.records import (
    Actual,
    ColumnRef,
    ColumnSource,
    Environment,
    EvaluationFilter,
    TimeWindow,
)
from modelplane.observability.store.embedded import EmbeddedStore
from modelplane.observability.store.encoding import Catalog

SLICE_BY = ("city", "merchant_category", "segment", "hour")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def one_run(seed: int, per_side: int, depth: int, workdir: Path) -> dict[str, tuple[str, str]]:
    """(first by score, first by contribution) for the accuracy and the drift objective."""
    h = D.history(seed=1000 + seed)
    c = h.customers
    age = dict(zip(c.ids.tolist(), c.age.tolist(), strict=True))
    segment = dict(zip(c.ids.tolist(), c.segment.tolist(), strict=True))
    tx = h.transactions.dropna(subset=[D.LABEL])  # the latest rows are not labeled yet

    def numeric(amount: np.ndarray, hour: np.ndarray, ages: np.ndarray) -> np.ndarray:
        return np.c_[np.log1p(amount), hour, ages]

    model = LogisticRegression().fit(
        numeric(tx.amount.to_numpy(), tx.hour.to_numpy(),
                tx.customer_id.map(age).to_numpy()), tx[D.LABEL].to_numpy())
    live = D.live_traffic(h, 2 * per_side, seed=seed)
    rows = live.rows
    ages = rows.customer_id.map(age).to_numpy()
    pred = model.predict(numeric(rows.amount.to_numpy(), rows.hour.to_numpy(), ages))
    n = len(rows)
    ids = [f"r{seed}-{i}" for i in range(n)]
    # the second half comes after the midpoint: that is the shift
    times = [T0 + timedelta(seconds=i) for i in range(n)]
    table = pa.table({
        "prediction_id": ids,
        "model": ["fraud"] * n,
        "version": ["1"] * n,
        "environment": pa.array([int(Environment.PRODUCTION)] * n, pa.int32()),
        "prediction_time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "feature.amount": rows.amount.to_numpy(np.float64),
        "feature.hour": rows.hour.to_numpy(np.float64),
        "feature.age": ages.astype(np.float64),
        "feature.city": rows.city.astype(str).tolist(),
        "feature.merchant_category": rows.merchant_category.astype(str).tolist(),
        "feature.segment": rows.customer_id.map(segment).astype(str).tolist(),
        "prediction": pa.array(pred.astype(np.int64)),
    })
    store = EmbeddedStore(workdir / f"run{seed}-{per_side}-{depth}.duckdb")
    store.open()
    try:
        catalogs: dict[str, Catalog] = {}
        lock = threading.Lock()
        ingest = RecordIngestor(store, catalogs, lock)
        res = ingest.write_columnar(table)
        if res.accepted != n:
            raise RuntimeError(f"ingest stored {res.accepted} of {n} records: {res.rejected[:3]}")
        ingest.write_actuals([Actual(i, int(y)) for i, y in zip(ids, live.labels, strict=True)])
        ev = Evaluations(store, catalogs, lock)
        mid = T0 + timedelta(seconds=live.shift_at)

        def window(a: datetime | None, b: datetime | None) -> EvaluationFilter:
            return EvaluationFilter("fraud", environment=Environment.PRODUCTION,
                                    window=TimeWindow(a, b))

        cols = [ColumnRef(ColumnSource.FEATURE, name) for name in SLICE_BY]
        out = {}
        for name, objective in (
                ("accuracy", {"metric": M.Metric.ACCURACY, "positive": "1"}),
                ("drift of amount", {"drift_column": ColumnRef(ColumnSource.FEATURE,
                                                               "amount")})):
            rep = ev.root_cause(window(mid, None), Reference(filter=window(None, mid)),
                                columns=cols, max_depth=depth, max_slices=100,
                                **objective)  # type: ignore[arg-type]
            by_contribution = max(rep.slices, key=lambda s: s.contribution)
            out[name] = (rep.slices[0].display_name, by_contribution.display_name)
        return out
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--sides", type=int, nargs="+", default=[500, 800],
                    help="records on each side of the shift")
    ap.add_argument("--depth", type=int, default=1, help="1 = single slices, 2 = and pairs")
    args = ap.parse_args()
    target = f'city = "{D.SHIFTED_CITY}"'
    with tempfile.TemporaryDirectory() as tmp:
        for per_side in args.sides:
            tallies: dict[str, tuple[Counter[str], Counter[str]]] = {}
            for seed in range(args.seeds):
                for objective, (ours, loo) in one_run(seed, per_side, args.depth,
                                                      Path(tmp)).items():
                    a, b = tallies.setdefault(objective, (Counter(), Counter()))
                    a[ours] += 1
                    b[loo] += 1
            print(f"{per_side} records a side, {args.seeds} runs, depth {args.depth}:")
            for objective, (by_score, by_contribution) in tallies.items():
                for label, tally in (("score (service)", by_score),
                                     ("leave-one-out", by_contribution)):
                    # a pair that includes Porto names it too
                    hits = sum(v for k, v in tally.items() if target in k)
                    misses = ", ".join(f"{k} x{v}" for k, v in tally.most_common()
                                       if target not in k)
                    print(f"  {objective:16s} {label:16s} {hits}/{args.seeds} name Porto"
                          + (f"  (else: {misses})" if misses else ""))


if __name__ == "__main__":
    main()
