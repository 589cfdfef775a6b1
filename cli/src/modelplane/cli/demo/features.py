"""Steps 1-3: generated transactions into the featurestore (definitions, offline rows,
materialization) and the point-in-time training and holdout Datasets."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import grpc

from modelplane.cli.demo.session import Demo, arrow_ipc, call, reraise
from modelplane.kit.timestamps import time_to_pb


def feature_definitions() -> Any:
    from google.protobuf.duration_pb2 import Duration

    from modelplane.featurestore.v1 import featurestore_pb2 as fs

    def feats(**kinds: fs.ValueType) -> list[Any]:
        return [fs.Feature(name=n, value_type=k) for n, k in kinds.items()]

    # the value types' initials keep the feature tables below one line each
    S, I, D = fs.VALUE_TYPE_STRING, fs.VALUE_TYPE_INT64, fs.VALUE_TYPE_DOUBLE  # noqa: E741

    def ttl(days: int) -> Any:
        d = Duration()
        d.FromTimedelta(timedelta(days=days))
        return d

    customer = fs.Entity(name="customer", join_key="customer_id", value_type=I,
                         description="a card holder")
    views = [
        fs.FeatureView(name="transactions", entities=["customer"], online=False, ttl=ttl(0),
                       features=feats(amount=D, merchant_category=S, hour=I, city=S, is_fraud=I),
                       description="card transactions; is_fraud is known 3 days later"),
        fs.FeatureView(name="customer_profile", entities=["customer"], online=True, ttl=ttl(3),
                       features=feats(age=I, credit_limit=D, segment=S),
                       description="daily customer snapshot"),
        fs.FeatureView(name="customer_activity", entities=["customer"], online=True, ttl=ttl(60),
                       features=feats(txn_count_7d=I, avg_amount_7d=D),
                       description="7-day activity after each transaction"),
    ]
    service = fs.FeatureService(name="fraud_model",
                                description="online features of the fraud model",
                                projections=[
                                    fs.FeatureViewProjection(feature_view="customer_profile",
                                                             features=["age", "credit_limit",
                                                                       "segment"]),
                                    fs.FeatureViewProjection(feature_view="customer_activity",
                                                             features=["txn_count_7d",
                                                                       "avg_amount_7d"])])
    return customer, views, service


async def read_dataset(demo: Demo, dataset_id: str) -> Any:
    import pyarrow as pa

    from modelplane.featurestore.v1 import featurestore_pb2 as fs
    from modelplane.kit.arrow_ipc import ArrowBudget

    tables = []
    budget = ArrowBudget()
    stream = demo.stub("featurestore").ReadDataset(fs.ReadDatasetRequest(id=dataset_id))
    try:
        async for chunk in stream:
            if chunk.arrow_ipc:
                tables.append(budget.read(chunk.arrow_ipc, "ReadDatasetResponse.arrow_ipc"))
    except grpc.aio.AioRpcError as err:
        await call(f"reading dataset {dataset_id}", reraise(err))
    return pa.concat_tables(tables).to_pandas()


async def stage_data(demo: Demo) -> Any:
    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.v1 import featurestore_pb2 as fs
    from modelplane.kit import demo_data

    demo.stage(1, "Generate card transactions (5 cities, fraud label known 3 days later)")
    size = demo.size
    # customers of this run get their own ids: a second run on the same platform does not
    # mix its rows with the first run's
    id_offset = (int(time.time()) // 10 % 100_000) * 1_000
    history = await asyncio.to_thread(demo_data.history, size.customers, size.days,
                                      id_offset=id_offset)
    tx = history.transactions
    demo.console.print(f"{len(tx)} transactions of {size.customers} customers over {size.days} "
                       f"days, fraud rate {tx['is_fraud'].mean():.1%}, "
                       f"{int(tx['is_fraud'].isna().sum())} not labeled yet")

    demo.stage(2, "Featurestore: apply definitions, ingest, materialize")
    store = demo.stub("featurestore")
    customer, views, service = feature_definitions()
    applied = await call("ApplyRepo", store.ApplyRepo(fs.ApplyRepoRequest(
        entities=[customer], feature_views=views, feature_services=[service])))
    demo.console.print(f"applied {len(applied.entities)} entity, {len(applied.feature_views)} "
                       f"feature views, {len(applied.feature_services)} feature service")
    # each view gets its own columns (the generator makes more than this demo's views keep)
    generated = {"transactions": tx, "customer_profile": history.customer_profile,
                 "customer_activity": history.customer_activity}
    tables = {v.name: generated[v.name][["customer_id", "event_timestamp",
                                         *(f.name for f in v.features)]] for v in views}
    with demo.progress() as progress:
        task = progress.add_task("ingest offline rows", total=sum(len(t) for t in tables.values()))
        for name, df in tables.items():
            written = await call(f"WriteOfflineRows {name}", store.WriteOfflineRows(
                fs.WriteOfflineRowsRequest(feature_view=name,
                                           rows=types_pb2.TableData(arrow_ipc=arrow_ipc(df)))))
            progress.advance(task, written.row_count)
        mat = progress.add_task("materialize online store", total=2)
        # the whole history, not "since the last run": a second demo run writes rows older
        # than what the first one materialized
        request = fs.MaterializeRequest(start_time=time_to_pb(history.start - timedelta(days=1)),
                                        end_time=time_to_pb(history.end + timedelta(seconds=1)))
        rows_written = 0
        try:
            async for p in store.Materialize(request):
                progress.update(mat, total=max(p.views_total, 1), completed=p.views_done)
                rows_written += p.rows_written
        except grpc.aio.AioRpcError as err:
            await call("Materialize", reraise(err))
    demo.summary["featurestore"] = {"rows": {k: len(v) for k, v in tables.items()},
                                    "materialized_rows": rows_written}

    demo.stage(3, "Point-in-time training and holdout Datasets")
    split = history.labeled_until - timedelta(days=max(3, size.days // 5))
    datasets = {}
    warm = history.start + timedelta(days=7)  # the 7-day activity features are complete
    for name, start, end in (("fraud_train", warm, split),
                             ("fraud_holdout", split, history.labeled_until)):
        # entity rows: this run's labeled transactions (with their label) in the window
        rows = tx[(tx["event_timestamp"] >= start) & (tx["event_timestamp"] < end)
                  & tx[demo_data.LABEL].notna()].copy()
        rows[demo_data.LABEL] = rows[demo_data.LABEL].astype("int64")
        ds = await call(f"CreateDataset {name}", store.CreateDataset(fs.CreateDatasetRequest(
            dataset=fs.Dataset(name=name, feature_refs=list(demo_data.ONLINE_FEATURE_REFS),
                               description="labeled transactions joined point-in-time with "
                                           "the customer's profile and activity"),
            entity_rows=types_pb2.TableData(arrow_ipc=arrow_ipc(rows)),
            timestamp_column="event_timestamp")))
        datasets[name] = ds
        demo.console.print(f"Dataset [bold]{ds.id}[/] ({name} v{ds.version}): {ds.row_count} rows, "
                           f"{len(ds.columns)} columns, sha256 {ds.content_hash[:12]}…")
    frames = {name: await read_dataset(demo, ds.id) for name, ds in datasets.items()}
    for df in frames.values():
        df.dropna(subset=[demo_data.LABEL], inplace=True)
    demo.summary["datasets"] = {name: {"id": ds.id, "row_count": ds.row_count}
                                for name, ds in datasets.items()}
    return history, datasets, frames
