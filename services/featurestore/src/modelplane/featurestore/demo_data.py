"""A small generated feature repo for demos, tests and benchmarks (no downloads).

Card transactions of customers in a few cities, with a fraud label that
arrives three days after the transaction (so the most recent rows are still
unlabeled). Three feature views keyed by ``customer``:

* ``transactions``: one row per transaction (amount, merchant category, hour,
  city, the delayed ``is_fraud`` label) - the spine of training sets;
* ``customer_profile``: daily snapshots (age, credit limit, city, segment);
* ``customer_activity``: 7-day activity after every transaction (count,
  mean and max amount, share of night transactions).

``seed_featurestore(stub)`` loads it all through the featurestore's gRPC API
(ApplyRepo, WriteOfflineRows, Materialize) for the lifecycle demo.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelplane.featurestore.definitions import (
    EntitySpec,
    FeatureServiceSpec,
    FeatureSpec,
    FeatureViewSpec,
    ProjectionSpec,
    ValueKind,
)

CITIES = ("Lisbon", "Porto", "Madrid", "Paris", "Berlin")
MERCHANTS = ("grocery", "fuel", "online", "travel", "electronics", "restaurant")
_MERCHANT_RISK = {"grocery": -1.0, "fuel": -0.6, "online": 0.6, "travel": 0.4,
                  "electronics": 0.9, "restaurant": -0.8}
LABEL_DELAY = timedelta(days=3)
TS = pa.timestamp("us", tz="UTC")

ACTIVITY_FEATURES = ("txn_count_7d", "avg_amount_7d", "max_amount_7d", "night_share_7d")
PROFILE_FEATURES = ("age", "credit_limit", "home_city", "segment")
TRANSACTION_FEATURES = ("amount", "merchant_category", "hour", "city", "is_fraud")
MODEL_FEATURE_REFS = (
    "customer_profile:age", "customer_profile:credit_limit", "customer_profile:segment",
    "customer_activity:txn_count_7d", "customer_activity:avg_amount_7d",
    "customer_activity:max_amount_7d", "customer_activity:night_share_7d",
)


@dataclass
class DemoData:
    transactions: pa.Table
    customer_profile: pa.Table
    customer_activity: pa.Table
    start: datetime
    end: datetime


def definitions() -> tuple[list[EntitySpec], list[FeatureViewSpec], list[FeatureServiceSpec]]:
    customer = EntitySpec("customer", "customer_id", ValueKind.INT64, "a card holder")
    views = [
        FeatureViewSpec("transactions", ["customer"], [
            FeatureSpec("amount", ValueKind.DOUBLE, "transaction amount, EUR"),
            FeatureSpec("merchant_category", ValueKind.STRING),
            FeatureSpec("hour", ValueKind.INT64, "local hour of day"),
            FeatureSpec("city", ValueKind.STRING, "where the card was used"),
            FeatureSpec("is_fraud", ValueKind.INT64, "label, known 3 days after the transaction"),
        ], ttl=timedelta(days=0), online=False,
        description="card transactions with a delayed label"),
        FeatureViewSpec("customer_profile", ["customer"], [
            FeatureSpec("age", ValueKind.INT64), FeatureSpec("credit_limit", ValueKind.DOUBLE),
            FeatureSpec("home_city", ValueKind.STRING), FeatureSpec("segment", ValueKind.STRING),
        ], ttl=timedelta(days=2), online=True, description="daily customer snapshot"),
        FeatureViewSpec("customer_activity", ["customer"], [
            FeatureSpec("txn_count_7d", ValueKind.INT64),
            FeatureSpec("avg_amount_7d", ValueKind.DOUBLE),
            FeatureSpec("max_amount_7d", ValueKind.DOUBLE),
            FeatureSpec("night_share_7d", ValueKind.DOUBLE),
        ], ttl=timedelta(days=7), online=True, description="7-day activity after each transaction"),
    ]
    services = [FeatureServiceSpec("fraud_model", [
        ProjectionSpec("customer_profile", ["age", "credit_limit", "segment"]),
        ProjectionSpec("customer_activity", list(ACTIVITY_FEATURES)),
    ], description="features of the fraud model")]
    return [customer], views, services


def generate(n_customers: int = 300, days: int = 30, txns_per_customer_day: float = 0.8,
             seed: int = 7, end: datetime | None = None) -> DemoData:
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    ids = np.arange(1, n_customers + 1, dtype=np.int64)
    home = rng.choice(CITIES, size=n_customers)
    age = rng.integers(18, 85, size=n_customers)
    limit = np.round(rng.lognormal(8.0, 0.5, size=n_customers), 2)
    segment = np.where(limit > 5000, "premium", np.where(age < 30, "young", "standard"))

    n = int(n_customers * days * txns_per_customer_day)
    cust_idx = rng.integers(0, n_customers, size=n)
    offsets = np.sort(rng.uniform(0, days * 86400, size=n))
    ts = pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s")
    merchant = rng.choice(MERCHANTS, size=n, p=[0.3, 0.15, 0.25, 0.08, 0.07, 0.15])
    amount = np.round(rng.lognormal(3.3, 0.9, size=n) * np.where(merchant == "travel", 4, 1), 2)
    hour = ts.hour.to_numpy().astype(np.int64)
    away = rng.random(n) < 0.1
    city = np.where(away, rng.choice(CITIES, size=n), home[cust_idx])
    risk = (-4.2 + 0.9 * np.log1p(amount / 50) + np.vectorize(_MERCHANT_RISK.get)(merchant)
            + 0.8 * ((hour < 6) | (hour > 22)) + 1.0 * away - 0.01 * (age[cust_idx] - 40))
    fraud = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(np.int64)
    labeled = (ts + LABEL_DELAY) <= pd.Timestamp(end)
    tx = pd.DataFrame({
        "customer_id": ids[cust_idx], "event_timestamp": ts, "amount": amount,
        "merchant_category": merchant, "hour": hour, "city": city,
        "is_fraud": pd.array(np.where(labeled, fraud, 0), dtype="Int64"),
    })
    tx.loc[~labeled, "is_fraud"] = pd.NA

    snapshots = []
    for d in range(days + 1):
        day = pd.Timestamp(start) + pd.Timedelta(days=d)
        snapshots.append(pd.DataFrame({
            "customer_id": ids, "event_timestamp": day, "age": age.astype(np.int64),
            "credit_limit": np.round(limit * (1 + 0.002 * d), 2), "home_city": home,
            "segment": segment}))
    profile = pd.concat(snapshots, ignore_index=True)

    activity_parts = []
    for cid, group in tx.groupby("customer_id", sort=False):
        g = group.set_index("event_timestamp").sort_index()
        roll = g["amount"].rolling("7D")
        night = ((g["hour"] < 6) | (g["hour"] > 22)).astype(float).rolling("7D").mean()
        activity_parts.append(pd.DataFrame({
            "customer_id": cid, "event_timestamp": g.index,
            "txn_count_7d": roll.count().astype(np.int64).to_numpy(),
            "avg_amount_7d": np.round(roll.mean().to_numpy(), 2),
            "max_amount_7d": roll.max().to_numpy(), "night_share_7d": night.to_numpy()}))
    activity = pd.concat(activity_parts, ignore_index=True).sort_values("event_timestamp")

    def arrow(df: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
        return table.set_column(table.column_names.index("event_timestamp"), "event_timestamp",
                                table.column("event_timestamp").cast(TS, safe=False))

    return DemoData(arrow(tx), arrow(profile), arrow(activity), start, end)


def arrow_ipc(table: pa.Table) -> bytes:
    from pyarrow import ipc

    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


async def seed_featurestore(stub: Any, data: DemoData | None = None) -> DemoData:
    """Apply the demo definitions, write the generated rows and materialize, over gRPC.

    ``stub`` is a ``FeatureStoreServiceStub`` on an aio channel (with a writer key).
    """
    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.convert import entity_to_pb, service_to_pb, view_to_pb
    from modelplane.featurestore.v1 import featurestore_pb2 as pb

    data = data or generate()
    entities, views, services = definitions()
    await stub.ApplyRepo(pb.ApplyRepoRequest(
        entities=[entity_to_pb(e) for e in entities],
        feature_views=[_without_source(view_to_pb(v)) for v in views],
        feature_services=[service_to_pb(s) for s in services]))
    for name, table in (("transactions", data.transactions),
                        ("customer_profile", data.customer_profile),
                        ("customer_activity", data.customer_activity)):
        await stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(
            feature_view=name, rows=types_pb2.TableData(arrow_ipc=arrow_ipc(table))))
    end = data.end + timedelta(seconds=1)
    request = pb.MaterializeRequest()
    request.end_time.FromDatetime(end)
    async for _ in stub.Materialize(request):
        pass
    return data


def _without_source(msg: Any) -> Any:
    msg.ClearField("source")
    msg.ClearField("create_time")
    msg.ClearField("update_time")
    return msg
