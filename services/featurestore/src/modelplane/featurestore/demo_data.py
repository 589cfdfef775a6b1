"""A small generated feature repo for demos, tests and benchmarks (no downloads).

The rows are ``modelplane.kit.demo_data``'s (the one generator, shared with the
CLI's lifecycle demo; its values do not depend on the hour it runs): card
transactions of customers in five cities, with a fraud label that arrives three
days after the transaction (so the most recent rows are still unlabeled). Three
feature views keyed by ``customer``:

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
from datetime import datetime, timedelta
from typing import Any

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
from modelplane.kit import demo_data

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
    """The kit generator's history (``end`` defaults to this hour), as the three views'
    Arrow tables."""
    h = demo_data.history(n_customers, days, txns_per_customer_day, seed, end)
    columns = {"transactions": TRANSACTION_FEATURES, "customer_profile": PROFILE_FEATURES,
               "customer_activity": ACTIVITY_FEATURES}

    def arrow(view: str, df: pd.DataFrame) -> pa.Table:
        df = df[["customer_id", "event_timestamp", *columns[view]]].reset_index(drop=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        return table.set_column(table.column_names.index("event_timestamp"), "event_timestamp",
                                table.column("event_timestamp").cast(TS, safe=False))

    return DemoData(arrow("transactions", h.transactions),
                    arrow("customer_profile", h.customer_profile),
                    arrow("customer_activity", h.customer_activity), h.start, h.end)


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
