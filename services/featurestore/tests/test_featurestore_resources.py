"""Definitions, datasets, data quality reports and the demo repo on the embedded store."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pyarrow as pa
import pytest
from pyarrow import ipc

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.demo_data import (
    MODEL_FEATURE_REFS,
    arrow_ipc,
    generate,
    seed_featurestore,
)
from modelplane.featurestore.v1 import featurestore_pb2 as pb
from modelplane.kit.status import raise_from_rpc_error

TS = pa.timestamp("us", tz="UTC")
NOW = datetime.now(UTC).replace(microsecond=0)


def err(exc: grpc.aio.AioRpcError) -> Any:
    try:
        raise_from_rpc_error(exc)
    except Exception as e:  # noqa: BLE001
        return e


def data(table: pa.Table) -> types_pb2.TableData:
    return types_pb2.TableData(arrow_ipc=arrow_ipc(table))


@pytest.fixture(scope="module")
async def demo(default_featurestore: Any) -> Any:
    generated = generate(n_customers=60, days=20, seed=11, end=NOW)
    await seed_featurestore(default_featurestore.stub, generated)
    return generated


async def test_definitions_lifecycle_with_pages_and_guards(default_featurestore: Any) -> None:
    stub = default_featurestore.stub
    names = [f"ent_{i}" for i in range(5)]
    for n in names:
        created = await stub.CreateEntity(pb.CreateEntityRequest(
            entity=pb.Entity(name=n, value_type=pb.VALUE_TYPE_STRING, description="d")))
        assert created.join_key == n and created.value_type == pb.VALUE_TYPE_STRING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateEntity(pb.CreateEntityRequest(entity=pb.Entity(name=names[0])))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS

    seen, token = [], ""
    while True:
        page = await stub.ListEntities(pb.ListEntitiesRequest(page_size=2, page_token=token))
        assert len(page.entities) <= 2
        seen += [e.name for e in page.entities]
        token = page.next_page_token
        if not token:
            break
    assert [n for n in seen if n.startswith("ent_")] == names
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListEntities(pb.ListEntitiesRequest(page_token="garbage!"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    view = pb.FeatureView(name="ent_view", entities=["ent_0"], online=True,
                          features=[pb.Feature(name="score", value_type=pb.VALUE_TYPE_FLOAT)])
    made = await stub.CreateFeatureView(pb.CreateFeatureViewRequest(feature_view=view))
    assert made.source.kind == pb.SOURCE_KIND_FILE
    assert made.source.timestamp_field == "event_timestamp"
    svc = await stub.CreateFeatureService(pb.CreateFeatureServiceRequest(
        feature_service=pb.FeatureService(
            name="ent_service", projections=[pb.FeatureViewProjection(feature_view="ent_view")])))
    assert list(svc.projections[0].features) == ["score"]

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.DeleteEntity(pb.DeleteEntityRequest(name="ent_0"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err(info.value).metadata["feature_view"] == "ent_view"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.DeleteFeatureView(pb.DeleteFeatureViewRequest(name="ent_view"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stub.DeleteFeatureService(pb.DeleteFeatureServiceRequest(name="ent_service"))
    await stub.DeleteFeatureView(pb.DeleteFeatureViewRequest(name="ent_view"))
    await stub.DeleteEntity(pb.DeleteEntityRequest(name="ent_0"))
    for call, req in ((stub.GetEntity, pb.GetEntityRequest(name="ent_0")),
                      (stub.GetFeatureView, pb.GetFeatureViewRequest(name="ent_view")),
                      (stub.GetFeatureService, pb.GetFeatureServiceRequest(name="ent_service"))):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(req)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    bad = pb.FeatureView(name="9bad", entities=["ghost"], features=[])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateFeatureView(pb.CreateFeatureViewRequest(feature_view=bad))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in err(info.value).field_violations} == {"feature_view.name",
                                                                   "feature_view.features"}


async def test_apply_repo_directory_of_feast_python(default_featurestore: Any) -> None:
    fs = default_featurestore
    tmp_path = fs.data_dir / "imports" / "driver-repo"  # repo dirs only under a storage root
    tmp_path.mkdir(parents=True)
    parquet = tmp_path / "drivers.parquet"
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"driver_id": pa.array([1, 2], pa.int64()),
                             "event_timestamp": pa.array([NOW - timedelta(hours=1)] * 2, TS),
                             "rating": [4.5, 3.9]}), parquet)
    (tmp_path / "repo.py").write_text(textwrap.dedent(f"""
        from datetime import timedelta
        from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
        from feast.types import Float64
        driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
        src = FileSource(name="drivers_src", path={str(parquet)!r},
                         timestamp_field="event_timestamp")
        stats = FeatureView(name="driver_stats", entities=[driver], ttl=timedelta(days=1),
                            schema=[Field(name="rating", dtype=Float64)], source=src, online=True)
        svc = FeatureService(name="driver_svc", features=[stats])
    """))
    dry = await fs.stub.ApplyRepo(pb.ApplyRepoRequest(repo_path=str(tmp_path), dry_run=True))
    assert [v.name for v in dry.feature_views] == ["driver_stats"]
    with pytest.raises(grpc.aio.AioRpcError):
        await fs.stub.GetFeatureView(pb.GetFeatureViewRequest(name="driver_stats"))
    applied = await fs.stub.ApplyRepo(pb.ApplyRepoRequest(repo_path=str(tmp_path)))
    assert [s.name for s in applied.feature_services] == ["driver_svc"]
    req = pb.MaterializeRequest(feature_views=["driver_stats"])
    req.end_time.FromDatetime(NOW)
    progress = [p async for p in fs.stub.Materialize(req)]
    assert progress[-1].rows_written == 2
    lookup = pb.GetOnlineFeaturesRequest(feature_service="driver_svc")
    lookup.entities["driver_id"].values.extend([types_pb2.Value(int64_value=2)])
    resp = await fs.stub.GetOnlineFeatures(lookup)
    assert resp.columns[1].name == "rating" and resp.columns[1].values[0].double_value == 3.9
    # Writing to a single-file source from a repo appends to that file.
    await fs.stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(
        feature_view="driver_stats", rows=data(pa.table({
            "driver_id": pa.array([3], pa.int64()), "event_timestamp": pa.array([NOW], TS),
            "rating": [5.0]}))))
    assert pq.read_table(parquet).num_rows == 3

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.ApplyRepo(pb.ApplyRepoRequest(repo_path=str(tmp_path / "missing")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.ApplyRepo(pb.ApplyRepoRequest(repo_path=str(fs.data_dir.parent)))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_datasets_are_versioned_hashed_and_read_back(default_featurestore: Any,
                                                           demo: Any) -> None:
    stub = default_featurestore.stub
    window = types_pb2.TimeWindow()
    window.start_time.FromDatetime(demo.start + timedelta(days=8))
    window.end_time.FromDatetime(demo.end)
    request = pb.CreateDatasetRequest(
        dataset=pb.Dataset(name="fraud_training", feature_service="fraud_model",
                           tags={"team": "risk"}),
        entity_rows_from_view=pb.EntityRowsFromView(
            feature_view="transactions",
            columns=["amount", "merchant_category", "city", "is_fraud"],
            time_range=window))
    first = await stub.CreateDataset(request)
    second = await stub.CreateDataset(request)
    assert (first.version, second.version) == (1, 2)
    assert first.id != second.id and first.content_hash == second.content_hash
    assert first.row_count > 100 and list(first.join_keys) == ["customer_id"]
    assert list(first.feature_refs) == list(MODEL_FEATURE_REFS)
    assert first.time_range.start_time.ToDatetime(tzinfo=UTC) >= demo.start + timedelta(days=8)

    chunks = [c async for c in stub.ReadDataset(pb.ReadDatasetRequest(id=first.id, chunk_rows=100))]
    assert len(chunks) == -(-first.row_count // 100)
    table = pa.concat_tables(ipc.open_stream(c.arrow_ipc).read_all() for c in chunks)
    assert table.num_rows == first.row_count == sum(c.row_count for c in chunks)
    assert {"customer_id", "event_timestamp", "is_fraud", "age",
            "txn_count_7d"} <= set(table.column_names)
    # Every activity value joined is one computed at or before the transaction.
    assert table.column("txn_count_7d").null_count < table.num_rows

    other = await stub.CreateDataset(pb.CreateDatasetRequest(
        dataset=pb.Dataset(name="fraud_training", feature_refs=["customer_profile:age"]),
        entity_rows_from_view=request.entity_rows_from_view))
    assert other.version == 3 and other.content_hash != first.content_hash

    listed = await stub.ListDatasets(pb.ListDatasetsRequest(name="fraud_training", page_size=2))
    assert [d.version for d in listed.datasets] == [3, 2] and listed.next_page_token
    rest = await stub.ListDatasets(pb.ListDatasetsRequest(name="fraud_training",
                                                          page_token=listed.next_page_token))
    assert [d.version for d in rest.datasets] == [1] and not rest.next_page_token

    await stub.DeleteDataset(pb.DeleteDatasetRequest(id=other.id))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetDataset(pb.GetDatasetRequest(id=other.id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert err(info.value).metadata["dataset"] == other.id

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateDataset(pb.CreateDatasetRequest(
            dataset=pb.Dataset(name="x", feature_refs=["customer_profile:age"]),
            entity_rows=data(pa.table({"event_timestamp": pa.array([NOW], TS)}))))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in err(info.value).field_violations} == {"entity_rows.customer_id"}


async def test_demo_online_features_through_the_feature_service(default_featurestore: Any,
                                                                demo: Any) -> None:
    req = pb.GetOnlineFeaturesRequest(feature_service="fraud_model", full_feature_names=True)
    req.entities["customer_id"].values.extend(types_pb2.Value(int64_value=i) for i in (1, 2, 3))
    resp = await default_featurestore.stub.GetOnlineFeatures(req)
    names = [c.name for c in resp.columns]
    assert names[0] == "customer_id" and "customer_profile__age" in names
    age = next(c for c in resp.columns if c.name == "customer_profile__age")
    assert all(v.int64_value >= 18 for v in age.values)
    assert list(age.statuses) == [pb.FEATURE_STATUS_PRESENT] * 3


async def test_data_quality_report_finds_what_is_wrong(default_featurestore: Any) -> None:
    stub = default_featurestore.stub
    t0 = NOW - timedelta(days=10)
    times = [t0, t0 + timedelta(hours=1), t0 + timedelta(hours=1), t0 + timedelta(days=3),
             t0 + timedelta(days=3, hours=2), t0 + timedelta(days=3, hours=3)]
    rows = pa.table({
        "customer_id": pa.array([1, 2, 2, 3, 4, 5], pa.int64()),
        "event_timestamp": pa.array(times, TS),
        "amount": pa.array([10.0, 20.0, 20.0, None, 50.0, 10.0]),
        "city": pa.array(["Porto", "Paris", "Paris", "Paris", None, "Porto"]),
        "label": pa.array([0, 1, 0, None, 1, 1], pa.int64()),
    })
    report = await stub.ComputeDataQuality(pb.ComputeDataQualityRequest(
        rows=data(rows), label_column="label", entity_columns=["customer_id"], histogram_bins=4))
    assert report.row_count == 6 and report.rows_hash
    assert report.duplicate_events == 1
    assert report.entity_count == 5
    assert report.history_length.ToTimedelta() == timedelta(days=3, hours=3)
    assert len(report.gaps) == 1
    assert report.gaps[0].start_time.ToDatetime(tzinfo=UTC) == t0 + timedelta(hours=1)
    assert report.label.unlabeled_count == 1
    # Rows 0 and 5 share features (10.0, Porto)... but row 0 is label 0, row 5 label 1;
    # rows 1 and 2 are the same event with labels 1 and 0.
    assert report.label.conflicting_groups == 2 and report.label.conflicting_rows == 4
    cols = {c.name: c for c in report.columns}
    assert cols["amount"].missing_count == 1 and cols["amount"].kind == pb.COLUMN_KIND_NUMERIC
    assert cols["amount"].max == 50.0 and sum(b.count for b in cols["amount"].histogram) == 5
    assert len(cols["amount"].histogram) == 4
    top = cols["city"].top_categories[0]
    assert top.value == "Paris" and top.count == 3

    again = await stub.GetDataQualityReport(pb.GetDataQualityReportRequest(id=report.id))
    assert again == report
    listed = await stub.ListDataQualityReports(pb.ListDataQualityReportsRequest())
    assert report.id in [r.id for r in listed.reports] and not listed.reports[0].columns

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ComputeDataQuality(pb.ComputeDataQualityRequest(rows=data(rows),
                                                                   label_column="nope"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err(info.value).field_violations[0].field == "label_column"


async def test_data_quality_of_a_dataset_and_a_source(default_featurestore: Any, demo: Any) -> None:
    stub = default_featurestore.stub
    report = await stub.ComputeDataQuality(pb.ComputeDataQualityRequest(
        feature_view="transactions", label_column="is_fraud"))
    assert report.feature_view == "transactions"
    assert report.row_count == demo.transactions.num_rows
    unlabeled = demo.transactions.column("is_fraud").null_count
    assert report.label.unlabeled_count == unlabeled > 0  # the label arrives 3 days late
    assert list(report.entity_columns) == ["customer_id"]
    listed = await stub.ListDataQualityReports(pb.ListDataQualityReportsRequest(
        feature_view="transactions", full_view=True))
    assert [r.id for r in listed.reports] == [report.id] and listed.reports[0].columns


async def test_offline_rows_from_a_parquet_uri_under_the_data_root(default_featurestore: Any,
                                                                   demo: Any,
                                                                   tmp_path: Any) -> None:
    import pyarrow.parquet as pq
    fs = default_featurestore
    rows = pa.table({"customer_id": pa.array([9001], pa.int64()),
                     "event_timestamp": pa.array([NOW], TS), "age": pa.array([33], pa.int64())})
    inside = fs.data_dir / "imports" / "profile.parquet"
    inside.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, inside)
    resp = await fs.stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(
        feature_view="customer_profile", rows=types_pb2.TableData(parquet_uri=inside.as_uri())))
    assert resp.row_count == 1
    assert resp.event_time_range.start_time.ToDatetime(tzinfo=UTC) == NOW

    outside = tmp_path / "elsewhere.parquet"
    pq.write_table(rows, outside)
    for uri, code in ((str(outside), grpc.StatusCode.PERMISSION_DENIED),
                      ("s3://bucket/x.parquet", grpc.StatusCode.PERMISSION_DENIED),
                      (str(fs.data_dir / "imports" / "missing.parquet"),
                       grpc.StatusCode.NOT_FOUND)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fs.stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(
                feature_view="customer_profile", rows=types_pb2.TableData(parquet_uri=uri)))
        assert info.value.code() == code
        assert err(info.value).metadata["field"] == "rows.parquet_uri"
