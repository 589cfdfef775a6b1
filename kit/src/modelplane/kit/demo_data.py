"""Generated card transactions in five cities (no downloads): the one data generator
of the lifecycle demo (``modelplane demo``), the featurestore's demo repository
(``modelplane.featurestore.demo_data``), tests and benchmarks.

History (offline, for training): one row per transaction with its event time,
the customer key, amount, merchant category, local hour, city and the fraud
label, which arrives ``LABEL_DELAY`` after the transaction (the most recent
rows are still unlabeled). Beside it, daily customer snapshots (age, credit
limit, home city, segment) and 7-day activity per customer (count, mean and
maximum amount, share of night transactions). A caller writes the columns its
feature views have.

The values do not depend on the wall clock: the ``hour`` feature counts from
``LOCAL_HOUR_AT_END`` at the history's end, so one seed gives one data set
whatever time it runs (only the event times move with ``end``).

Live traffic (for serving): new transactions of the same customers. From
``shift_at`` on, the transactions in ``SHIFTED_CITY`` change: amounts grow
several-fold, most go to electronics and a fraud ring makes half of them
fraudulent whatever they look like - data drift and a performance drop in one
city, which observability's drift and root cause analyses should name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

#: a numpy array of any shape and type
Array = np.ndarray[Any, Any]

CITIES = ("Lisbon", "Porto", "Madrid", "Paris", "Berlin")
SHIFTED_CITY = "Porto"
#: the city whose training labels a labeling bug flipped for the demo's second challenger
BROKEN_CITY = "Lisbon"
MERCHANTS = ("grocery", "fuel", "online", "travel", "electronics", "restaurant")
_MERCHANT_P = (0.3, 0.15, 0.25, 0.08, 0.07, 0.15)
_MERCHANT_RISK = {"grocery": -1.2, "fuel": -0.8, "online": 0.9, "travel": 0.5,
                  "electronics": 1.4, "restaurant": -1.0}
LABEL_DELAY = timedelta(days=3)
#: the customers' local hour when the generated history ends (and live traffic is sent).
#: The ``hour`` feature counts from it, not from the clock: the fraud labels depend on the
#: hour, so data keyed to the clock made a different data set (and different models and
#: validation reports) each hour of the day; one hour's data failed a challenger's check.
LOCAL_HOUR_AT_END = 13

#: what the caller sends with each prediction request (besides the customer key)
REQUEST_FEATURES = ("amount", "merchant_category", "hour", "city")
#: online features joined by serving, as featurestore references
ONLINE_FEATURE_REFS = ("customer_profile:age", "customer_profile:credit_limit",
                       "customer_profile:segment", "customer_activity:txn_count_7d",
                       "customer_activity:avg_amount_7d")
NUMERIC_FEATURES = ("amount", "hour", "age", "credit_limit", "txn_count_7d", "avg_amount_7d")
CATEGORICAL_FEATURES = ("merchant_category", "city", "segment")
MODEL_FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
LABEL = "is_fraud"


@dataclass
class Customers:
    ids: Array
    home_city: Array
    age: Array
    credit_limit: Array
    segment: Array


@dataclass
class History:
    transactions: pd.DataFrame
    customer_profile: pd.DataFrame
    customer_activity: pd.DataFrame
    customers: Customers
    start: datetime
    end: datetime

    @property
    def labeled_until(self) -> datetime:
        return self.end - LABEL_DELAY


@dataclass
class LiveTraffic:
    """Request rows (customer_id + REQUEST_FEATURES), their true labels, and where the shift
    starts."""

    rows: pd.DataFrame
    labels: Array
    shift_at: int


def fraud_probability(amount: Array, merchant: Array, hour: Array,
                      away: Array, age: Array) -> Array:
    risk = (-3.2 + 1.3 * np.log1p(amount / 60.0)
            + 2.2 * np.vectorize(_MERCHANT_RISK.get)(merchant)
            + 1.5 * _night(hour) + 0.5 * away - 0.015 * (age - 45))
    return np.asarray(1.0 / (1.0 + np.exp(-risk)))


def _night(hour: Array) -> Array:
    return (hour < 6) | (hour > 22)


def _customers(rng: np.random.Generator, n: int, id_offset: int) -> Customers:
    ids = np.arange(id_offset + 1, id_offset + n + 1, dtype=np.int64)
    home = rng.choice(CITIES, size=n)
    age = rng.integers(18, 85, size=n).astype(np.int64)
    limit = np.round(rng.lognormal(8.0, 0.5, size=n), 2)
    segment = np.where(limit > 5000, "premium", np.where(age < 30, "young", "standard"))
    return Customers(ids, home, age, limit, segment)


def _local_hour(ts: pd.DatetimeIndex, end: pd.Timestamp) -> Array:
    """Local hour of each time, the local clock reading ``LOCAL_HOUR_AT_END`` at ``end``."""
    hours_before = np.floor((ts - end).total_seconds().to_numpy() / 3600).astype(np.int64)
    return np.asarray((LOCAL_HOUR_AT_END + hours_before) % 24)


def _transactions(rng: np.random.Generator, c: Customers, idx: Array,
                  ts: pd.DatetimeIndex, end: pd.Timestamp) -> pd.DataFrame:
    n = len(idx)
    merchant = rng.choice(MERCHANTS, size=n, p=_MERCHANT_P)
    amount = np.round(rng.lognormal(3.4, 0.9, size=n) * np.where(merchant == "travel", 4, 1), 2)
    hour = _local_hour(ts, end)
    away = rng.random(n) < 0.12
    city = np.where(away, rng.choice(CITIES, size=n), c.home_city[idx])
    p = fraud_probability(amount, merchant, hour, away, c.age[idx])
    fraud = (rng.random(n) < p).astype(np.int64)
    return pd.DataFrame({"customer_id": c.ids[idx], "event_timestamp": ts, "amount": amount,
                         "merchant_category": merchant, "hour": hour, "city": city,
                         LABEL: fraud})


def history(n_customers: int = 300, days: int = 30, txns_per_customer_day: float = 1.0,
            seed: int = 7, end: datetime | None = None, id_offset: int = 0) -> History:
    """``id_offset`` keeps the customers of one run apart from those of earlier runs."""
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    c = _customers(rng, n_customers, id_offset)
    n = int(n_customers * days * txns_per_customer_day)
    # every customer transacts at least once (an online activity row for each)
    idx = np.concatenate([rng.integers(0, n_customers, size=n), np.arange(n_customers)])
    offsets = rng.uniform(0, days * 86400 - 60, size=n + n_customers)
    order = np.argsort(offsets)
    idx, offsets = idx[order], offsets[order]
    ts = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s"))
    tx = _transactions(rng, c, idx, ts, pd.Timestamp(end))
    labeled = (tx["event_timestamp"] + LABEL_DELAY) <= pd.Timestamp(end)
    tx[LABEL] = pd.array(tx[LABEL], dtype="Int64")
    tx.loc[~labeled, LABEL] = pd.NA

    days_index = [pd.Timestamp(start) + pd.Timedelta(days=d) for d in range(days + 1)]
    profile = pd.concat([pd.DataFrame({
        "customer_id": c.ids, "event_timestamp": day, "age": c.age,
        "credit_limit": np.round(c.credit_limit * (1 + 0.002 * d), 2),
        "home_city": c.home_city,
        "segment": c.segment}) for d, day in enumerate(days_index)], ignore_index=True)

    parts = []
    for cid, group in tx.groupby("customer_id", sort=False):
        g = group.set_index("event_timestamp").sort_index()
        roll = g["amount"].rolling("7D")
        night = _night(g["hour"].to_numpy()).astype(float)
        parts.append(pd.DataFrame({
            "customer_id": cid, "event_timestamp": g.index,
            "txn_count_7d": roll.count().astype(np.int64).to_numpy(),
            "avg_amount_7d": np.round(roll.mean().to_numpy(), 2),
            "max_amount_7d": roll.max().to_numpy(),
            "night_share_7d": pd.Series(night, index=g.index).rolling("7D").mean().to_numpy()}))
    activity = pd.concat(parts, ignore_index=True).sort_values("event_timestamp",
                                                                ignore_index=True)
    return History(tx, profile, activity, c, start, end)


def live_traffic(h: History, n: int, seed: int = 11, shift_at: int | None = None) -> LiveTraffic:
    """``n`` new transactions; from ``shift_at`` (default: half way) on, shifted in
    SHIFTED_CITY."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(h.customers.ids), size=n)
    now = pd.Timestamp(datetime.now(UTC))
    # local hours spread over the day, as if the traffic came at any time
    ts = pd.DatetimeIndex(now - pd.to_timedelta(rng.uniform(0, 86400, size=n), unit="s"))
    tx = _transactions(rng, h.customers, idx, ts, now)
    shift_at = n // 2 if shift_at is None else shift_at
    shifted = (np.arange(n) >= shift_at) & (tx["city"].to_numpy() == SHIFTED_CITY)
    k = int(shifted.sum())
    tx.loc[shifted, "amount"] = np.round(tx.loc[shifted, "amount"].to_numpy()
                                         * rng.uniform(4, 8, size=k), 2)
    tx.loc[shifted, "merchant_category"] = np.where(rng.random(k) < 0.7, "electronics", "online")
    labels = tx[LABEL].to_numpy().astype(np.int64)
    labels[shifted] = (rng.random(k) < 0.5).astype(np.int64)  # the fraud ring
    rows = tx[["customer_id", *REQUEST_FEATURES]].reset_index(drop=True)
    return LiveTraffic(rows, labels, shift_at)


def flip_city_labels(train: pd.DataFrame, city: str = BROKEN_CITY) -> pd.DataFrame:
    """``train`` with every label of ``city`` flipped: a labeling bug in one city's feed.
    A model trained on it is as good as before elsewhere and wrong in ``city``."""
    out = train.copy()
    rows = (out["city"] == city).to_numpy()
    out.loc[rows, LABEL] = 1 - out.loc[rows, LABEL].astype(np.int64)
    return out
