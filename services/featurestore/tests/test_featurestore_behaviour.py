"""Behaviour of the featurestore over gRPC, on every store configuration.

Each test makes its own entity/feature view names so they share one server.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pyarrow as pa
import pytest
from feast.protos.feast.serving import ServingService_pb2 as feast_pb
from feast.protos.feast.types import Value_pb2
from pyarrow import ipc

from modelplane.api.v1 import types_pb2
from modelplane.featurestore.demo_data import arrow_ipc
from modelplane.featurestore.v1 import featurestore_pb2 as pb

TS = pa.timestamp("us", tz="UTC")


def table_data(table: pa.Table) -> types_pb2.TableData:
    return types_pb2.TableData(arrow_ipc=arrow_ipc(table))


def ts(dt: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    out = Timestamp()
    out.FromDatetime(dt)
    return out

NOW = datetime.now(UTC).replace(microsecond=0)


async def make_view(fs: Any, *, ttl: timedelta = timedelta(0),
                    online: bool = True) -> tuple[str, str]:
    """A fresh entity (INT64 key) and feature view with DOUBLE `value`, STRING `tag`,
    INT64 `count`."""
    entity = fs.unique("cust")
    view = fs.unique("stats")
    fv = pb.FeatureView(name=view, entities=[entity], online=online, features=[
        pb.Feature(name="value", value_type=pb.VALUE_TYPE_DOUBLE),
        pb.Feature(name="tag", value_type=pb.VALUE_TYPE_STRING),
        pb.Feature(name="count", value_type=pb.VALUE_TYPE_INT64)])
    fv.ttl.FromTimedelta(ttl)
    await fs.stub.ApplyRepo(pb.ApplyRepoRequest(
        entities=[pb.Entity(name=entity, join_key=f"{entity}_id", value_type=pb.VALUE_TYPE_INT64)],
        feature_views=[fv]))
    return entity, view


def rows(key: str, ids: list[int], times: list[datetime], values: list[float],
         tags: list[str] | None = None, counts: list[int] | None = None) -> pa.Table:
    return pa.table({
        key: pa.array(ids, pa.int64()), "event_timestamp": pa.array(times, TS),
        "value": pa.array(values, pa.float64()),
        "tag": pa.array(tags or [f"t{v}" for v in values], pa.string()),
        "count": pa.array(counts or [int(v) for v in values], pa.int64())})


async def write_offline(fs: Any, view: str, table: pa.Table) -> int:
    resp = await fs.stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(feature_view=view,
                                                                     rows=table_data(table)))
    return resp.row_count


async def materialize(fs: Any, views: list[str], end: datetime,
                      start: datetime | None = None) -> list[pb.MaterializeProgress]:
    req = pb.MaterializeRequest(feature_views=views, end_time=ts(end))
    if start is not None:
        req.start_time.CopyFrom(ts(start))
    return [p async for p in fs.stub.Materialize(req)]


async def online(fs: Any, refs: list[str], key: str, ids: list[Any]) -> dict[str, list[Any]]:
    from modelplane.api.v1 import types_pb2
    req = pb.GetOnlineFeaturesRequest(feature_refs=refs)
    req.entities[key].values.extend(types_pb2.Value(int64_value=i) for i in ids)
    resp = await fs.stub.GetOnlineFeatures(req)
    out = {}
    for col in resp.columns:
        vals = []
        for v in col.values:
            kind = v.WhichOneof("kind")
            vals.append(None if kind in (None, "null_value") else getattr(v, kind))
        out[col.name] = vals
    return out


async def dataset_rows(fs: Any, dataset_id: str) -> pa.Table:
    chunks = [ipc.open_stream(c.arrow_ipc).read_all()
              async for c in fs.stub.ReadDataset(pb.ReadDatasetRequest(id=dataset_id))]
    return pa.concat_tables(chunks)


def rpc_error(exc: grpc.aio.AioRpcError) -> Any:
    from modelplane.kit.status import raise_from_rpc_error
    try:
        raise_from_rpc_error(exc)
    except Exception as err:  # noqa: BLE001
        return err


# ---------------------------------------------------------------- point-in-time correctness

async def test_training_set_never_contains_a_value_stamped_after_its_row(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    # Each feature value is its own event time (epoch seconds): a leak is visible as
    # value > row time.
    base = NOW - timedelta(days=5)
    times = [base + timedelta(hours=7 * i + k) for k in range(3) for i in range(12)]
    ids = [1 + (i % 3) for i in range(len(times))]
    await write_offline(fs, view, rows(key, ids, times, [t.timestamp() for t in times]))
    probe_times = [base + timedelta(hours=h, minutes=30) for h in range(-2, 90, 5)]
    entity_rows = pa.table({key: pa.array([1 + (h % 3) for h in range(len(probe_times))],
                                          pa.int64()),
                            "event_timestamp": pa.array(probe_times, TS),
                            "label": pa.array(list(range(len(probe_times))), pa.int64())})
    ds = await fs.stub.CreateDataset(pb.CreateDatasetRequest(
        dataset=pb.Dataset(name=fs.unique("pit"), feature_refs=[f"{view}:value", f"{view}:tag"]),
        entity_rows=table_data(entity_rows)))
    got = (await dataset_rows(fs, ds.id)).to_pylist()
    assert len(got) == len(probe_times) == ds.row_count
    expected_any = 0
    for row, probe, cid in zip(got, probe_times, entity_rows.column(key).to_pylist()):
        assert row["label"] == probe_times.index(probe)  # row order and extra columns kept
        candidates = [t.timestamp() for t, i in zip(times, ids) if i == cid and t <= probe]
        if candidates:
            expected_any += 1
            assert row["value"] == max(candidates), "the latest value at or before the row's time"
            assert row["value"] <= probe.timestamp()
        else:
            assert row["value"] is None, "no value existed yet: the row must stay, with no feature"
    assert expected_any >= 10


async def test_ttl_limits_how_old_a_joined_value_may_be(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs, ttl=timedelta(hours=2))
    key = f"{entity}_id"
    t0 = NOW - timedelta(days=1)
    await write_offline(fs, view, rows(key, [1], [t0], [5.0]))
    entity_rows = pa.table({key: pa.array([1, 1], pa.int64()),
                            "event_timestamp": pa.array([t0 + timedelta(hours=1),
                                                         t0 + timedelta(hours=3)], TS)})
    ds = await fs.stub.CreateDataset(pb.CreateDatasetRequest(
        dataset=pb.Dataset(name=fs.unique("ttl"), feature_refs=[f"{view}:value"]),
        entity_rows=table_data(entity_rows)))
    got = (await dataset_rows(fs, ds.id)).column("value").to_pylist()
    assert got == [5.0, None]


async def test_nanosecond_entity_times_are_joined_without_leaking(featurestore: Any) -> None:
    # pandas timestamps carry nanoseconds; Feast's offline stores keep microseconds.
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    t0 = NOW - timedelta(hours=3)
    await write_offline(fs, view, rows(key, [1, 1], [t0, t0 + timedelta(hours=1)], [1.0, 2.0]))
    base_ns = int(t0.timestamp() * 1_000_000) * 1000
    probe_ns = [base_ns + 123, base_ns + 3_600 * 10**9 - 1]  # just after t0; 1 ns before t0+1h
    entity_rows = pa.table({key: pa.array([1, 1], pa.int64()),
                            "event_timestamp": pa.array(probe_ns, pa.timestamp("ns", tz="UTC"))})
    ds = await fs.stub.CreateDataset(pb.CreateDatasetRequest(
        dataset=pb.Dataset(name=fs.unique("ns"), feature_refs=[f"{view}:value"]),
        entity_rows=table_data(entity_rows)))
    got = (await dataset_rows(fs, ds.id)).column("value").to_pylist()
    assert got == [1.0, 1.0], "the value stamped at t0+1h is after both rows"


# ---------------------------------------------------------------- materialization

async def test_incremental_materialization_moves_only_new_data(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    t1 = NOW - timedelta(hours=10)
    await write_offline(fs, view, rows(key, [1, 2], [t1, t1], [1.0, 2.0]))
    first = await materialize(fs, [view], end=NOW - timedelta(hours=5))
    assert [p.state for p in first] == [pb.MATERIALIZE_STATE_RUNNING,
                                        pb.MATERIALIZE_STATE_SUCCEEDED]
    assert first[-1].rows_written == 2
    first_end = first[-1].range.end_time.ToDatetime(tzinfo=UTC)

    # Mark entity 1 in the online store: a second pass that re-moved old data would overwrite it.
    await fs.stub.PushOnlineRows(pb.PushOnlineRowsRequest(
        feature_view=view, rows=table_data(rows(key, [1], [t1 + timedelta(minutes=1)], [111.0]))))
    # A late row stamped before the first end is not "new": incremental runs start where
    # the last ended.
    await write_offline(fs, view, rows(key, [3, 4],
                                       [NOW - timedelta(hours=2), NOW - timedelta(hours=6)],
                                       [3.0, 4.0]))
    second = await materialize(fs, [view], end=NOW)
    assert second[-1].state == pb.MATERIALIZE_STATE_SUCCEEDED
    assert second[0].range.start_time.ToDatetime(tzinfo=UTC) == first_end
    assert second[-1].rows_written == 1
    got = await online(fs, [f"{view}:value"], key, [1, 2, 3, 4])
    assert got["value"] == [111.0, 2.0, 3.0, None]

    again = await materialize(fs, [view], end=NOW)
    assert [p.state for p in again] == [pb.MATERIALIZE_STATE_SKIPPED]


async def test_online_values_equal_the_latest_offline_values(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    import random
    rnd = random.Random(3)
    ids, times, values = [], [], []
    for cid in range(1, 21):
        for _ in range(rnd.randint(1, 5)):
            ids.append(cid)
            times.append(NOW - timedelta(minutes=rnd.randint(10, 5000)))
            values.append(round(rnd.uniform(-100, 100), 3))
    await write_offline(fs, view,
                        rows(key, ids, times, values, counts=[rnd.randint(0, 9) for _ in ids]))
    await materialize(fs, [view], end=NOW, start=NOW - timedelta(days=30))
    latest: dict[int, tuple[datetime, float]] = {}
    for cid, t, v in zip(ids, times, values):
        if cid not in latest or t > latest[cid][0]:
            latest[cid] = (t, v)
    got = await online(fs, [f"{view}:value", f"{view}:tag"], key, list(range(1, 22)))
    assert got[key] == list(range(1, 22))
    assert got["value"] == [latest[c][1] for c in range(1, 21)] + [None]
    assert got["tag"] == [f"t{latest[c][1]}" for c in range(1, 21)] + [None]


async def test_feast_serving_stub_reads_what_our_rpcs_ingested(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    t = NOW - timedelta(hours=1)
    await write_offline(fs, view,
                        rows(key, [7, 8], [t, t], [7.5, 8.5], tags=["a", "b"], counts=[70, 80]))
    await materialize(fs, [view], end=NOW)
    await fs.stub.PushOnlineRows(pb.PushOnlineRowsRequest(
        feature_view=view, rows=table_data(rows(key, [9], [NOW], [9.5], tags=["c"], counts=[90]))))

    info = await fs.feast_stub.GetFeastServingInfo(feast_pb.GetFeastServingInfoRequest())
    assert "feast" in info.version
    req = feast_pb.GetOnlineFeaturesRequest(
        features=feast_pb.FeatureList(val=[f"{view}:value", f"{view}:tag", f"{view}:count"]))
    req.entities[key].val.extend(Value_pb2.Value(int64_val=i) for i in (7, 8, 9, 10))
    resp = await fs.feast_stub.GetOnlineFeatures(req)
    assert list(resp.metadata.feature_names.val) == [key, "value", "tag", "count"]
    cols = {name: vec for name, vec in zip(resp.metadata.feature_names.val, resp.results)}
    assert [v.double_val for v in cols["value"].values][:3] == [7.5, 8.5, 9.5]
    assert [v.string_val for v in cols["tag"].values][:3] == ["a", "b", "c"]
    assert [v.int64_val for v in cols["count"].values][:3] == [70, 80, 90]
    assert list(cols["value"].statuses) == [feast_pb.PRESENT] * 3 + [feast_pb.NOT_FOUND]
    assert cols["value"].event_timestamps[2].seconds == int(NOW.timestamp())

    # Feast's own SDK reads the same online store and agrees.
    feast_dict = feast_sdk_online(
        fs, features=[f"{view}:value", f"{view}:tag"],
        entity_rows=[{key: i} for i in (7, 8, 9, 10)]).to_dict()
    assert feast_dict["value"] == [7.5, 8.5, 9.5, None]
    assert feast_dict["tag"] == ["a", "b", "c", None]


def feast_sdk_online(fs: Any, features: list[str], entity_rows: list[dict[str, Any]]) -> Any:
    """Feast's own SDK's ``get_online_features`` over the service's store, asked again
    (after a registry refresh) while it says a just-applied view or entity does not exist.
    The SDK reads through its registry cache, which can lag the registry: Feast's refresh
    is unlocked (a read begun before ApplyRepo can land after a newer one, also between a
    check of the cache and the call) and it swallows its errors. CI saw the SDK say a
    just-applied entity did not exist. Any other error, or the same one for 5 s, fails."""
    from feast.errors import EntityNotFoundException, FeatureViewNotFoundException

    store = fs.core.repository.store
    deadline = time.monotonic() + 5.0
    while True:
        try:
            return store.get_online_features(features=features, entity_rows=entity_rows)
        except (EntityNotFoundException, FeatureViewNotFoundException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            store.refresh_registry()


async def _ttl_case(fs: Any, ttl: timedelta) -> tuple[str, str, list[int]]:
    """A view with TTL ``ttl`` holding: 1 fresh, 2 stale (5 h old), 3 with a null value,
    5 fresh again; 4 and 6 never written. Returns (key, view, ids asked, 4 repeated)."""
    entity, view = await make_view(fs, ttl=ttl)
    key = f"{entity}_id"
    fresh, stale = NOW - timedelta(minutes=30), NOW - timedelta(hours=5)
    table = pa.table({
        key: pa.array([1, 2, 3, 5], pa.int64()),
        "event_timestamp": pa.array([fresh, stale, fresh, fresh + timedelta(seconds=1)], TS),
        "value": pa.array([1.5, 2.5, None, 5.5], pa.float64()),
        "tag": pa.array(["one", "two", "three", None], pa.string()),
        "count": pa.array([10, 20, 30, 50], pa.int64())})
    await write_offline(fs, view, table)
    await materialize(fs, [view], end=NOW, start=NOW - timedelta(days=1))
    return key, view, [1, 2, 3, 4, 5, 6, 4, 1]


async def test_online_answers_equal_feasts_own_including_ttl_nulls_and_missing_keys(
        featurestore: Any) -> None:
    """Values, statuses and event times, on both contracts, against Feast's SDK reading the
    same store: fresh, TTL-expired, null-valued, never-written and repeated entity keys.

    Differences that are ours on purpose (README, "Online path"): Feast 0.67's Python SDK
    applies no TTL online (a stale row comes back PRESENT with its value; we answer
    OUTSIDE_MAX_AGE and no value), calls a stored null PRESENT (we say NULL_VALUE) and
    orders columns by a set's iteration order (ours: the request's)."""
    fs = featurestore
    key, view, ids = await _ttl_case(fs, timedelta(hours=2))
    refs = [f"{view}:count", f"{view}:value", f"{view}:tag"]
    sdk = feast_sdk_online(fs, features=refs, entity_rows=[{key: i} for i in ids]).proto
    expected = dict(zip(sdk.metadata.feature_names.val, sdk.results))
    stale, empty = ids.index(2), Value_pb2.Value()

    req = feast_pb.GetOnlineFeaturesRequest(features=feast_pb.FeatureList(val=refs))
    req.entities[key].val.extend(Value_pb2.Value(int64_val=i) for i in ids)
    got = await fs.feast_stub.GetOnlineFeatures(req)
    assert list(got.metadata.feature_names.val) == [key, "count", "value", "tag"]
    assert set(expected) == set(got.metadata.feature_names.val)
    answers = {}
    for name, ours_vec in zip(got.metadata.feature_names.val, got.results):
        feast_vec = expected[name]
        assert list(ours_vec.event_timestamps) == list(feast_vec.event_timestamps)
        values, statuses = list(feast_vec.values), list(feast_vec.statuses)
        if name != key:
            values[stale] = empty
            # The status each row must have by the FieldStatus contract: Feast 0.67's SDK
            # says NOT_FOUND or PRESENT for a never-written key depending on its read path.
            statuses = [feast_pb.OUTSIDE_MAX_AGE if i == stale
                        else feast_pb.PRESENT if v != empty
                        else feast_pb.NULL_VALUE if t.seconds else feast_pb.NOT_FOUND
                        for i, (v, t) in enumerate(zip(values, feast_vec.event_timestamps))]
            assert all(theirs in (mine, feast_pb.PRESENT)
                       for mine, theirs in zip(statuses, feast_vec.statuses))
        assert list(ours_vec.values) == values, name
        assert list(ours_vec.statuses) == statuses, name
        answers[name] = ours_vec
    assert list(answers["value"].statuses) == [
        feast_pb.PRESENT, feast_pb.OUTSIDE_MAX_AGE, feast_pb.NULL_VALUE, feast_pb.NOT_FOUND,
        feast_pb.PRESENT, feast_pb.NOT_FOUND, feast_pb.NOT_FOUND, feast_pb.PRESENT]
    assert [v.double_val for v in answers["value"].values] == [1.5, 0, 0, 0, 5.5, 0, 0, 1.5]
    assert answers["value"].event_timestamps[stale].seconds == int(
        (NOW - timedelta(hours=5)).timestamp())

    # Our contract: the same answer in our types (statuses and values mapped one to one).
    ours = pb.GetOnlineFeaturesRequest(feature_refs=refs)
    ours.entities[key].values.extend(types_pb2.Value(int64_value=i) for i in ids)
    resp = await fs.stub.GetOnlineFeatures(ours)
    status_map = {feast_pb.PRESENT: pb.FEATURE_STATUS_PRESENT,
                  feast_pb.NOT_FOUND: pb.FEATURE_STATUS_NOT_FOUND,
                  feast_pb.OUTSIDE_MAX_AGE: pb.FEATURE_STATUS_OUTSIDE_MAX_AGE,
                  feast_pb.NULL_VALUE: pb.FEATURE_STATUS_NULL_VALUE}
    assert [c.name for c in resp.columns] == [key, "count", "value", "tag"]
    assert [v.int64_value for v in resp.columns[0].values] == ids
    for col in resp.columns[1:]:
        feast_vec = answers[col.name]
        assert list(col.statuses) == [status_map[s] for s in feast_vec.statuses]
        assert list(col.event_times) == list(feast_vec.event_timestamps)
        for mine, theirs in zip(col.values, feast_vec.values, strict=True):
            kind, feast_kind = mine.WhichOneof("kind"), theirs.WhichOneof("val")
            if feast_kind in (None, "null_val"):
                assert kind in (None, "null_value")
            else:
                assert getattr(mine, kind) == getattr(theirs, feast_kind)


async def test_changed_definitions_reach_the_next_lookup(featurestore: Any) -> None:
    """Cached lookup plans follow ApplyRepo: a shorter TTL expires rows, a new feature
    becomes readable, a removed one is refused."""
    fs = featurestore
    key, view, _ = await _ttl_case(fs, timedelta(hours=2))
    before = await online(fs, [f"{view}:value"], key, [1, 2])
    assert before["value"] == [1.5, None]

    entity = key.removesuffix("_id")
    fv = pb.FeatureView(name=view, entities=[entity], online=True, features=[
        pb.Feature(name="value", value_type=pb.VALUE_TYPE_DOUBLE),
        pb.Feature(name="count", value_type=pb.VALUE_TYPE_INT64)])
    fv.ttl.FromTimedelta(timedelta(minutes=10))
    await fs.stub.ApplyRepo(pb.ApplyRepoRequest(feature_views=[fv]))
    after = await online(fs, [f"{view}:value", f"{view}:count"], key, [1, 2])
    assert after["value"] == [None, None]  # 30 min old: now outside the 10 min TTL

    fv.ttl.FromTimedelta(timedelta(days=1))
    await fs.stub.ApplyRepo(pb.ApplyRepoRequest(feature_views=[fv]))
    longer = await online(fs, [f"{view}:value", f"{view}:count"], key, [1, 2])
    assert longer["value"] == [1.5, 2.5] and longer["count"] == [10, 20]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await online(fs, [f"{view}:tag"], key, [1])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_push_keeps_the_newest_event_per_entity(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    batch = rows(key, [1, 1, 2], [NOW - timedelta(hours=1), NOW, NOW], [1.0, 2.0, 3.0])
    resp = await fs.stub.PushOnlineRows(pb.PushOnlineRowsRequest(feature_view=view,
                                                                 rows=table_data(batch)))
    assert resp.row_count == 2
    older = rows(key, [1], [NOW - timedelta(hours=3)], [-1.0])
    resp = await fs.stub.PushOnlineRows(pb.PushOnlineRowsRequest(feature_view=view,
                                                                 rows=table_data(older)))
    assert resp.row_count == 0
    got = await online(fs, [f"{view}:value"], key, [1, 2])
    assert got["value"] == [2.0, 3.0]


async def test_a_push_waits_for_another_replica_writing_the_view_and_keeps_its_newer_row(
        featurestore: Any) -> None:
    """Replicas sharing an online store: the newest-event rule's read-and-write is one
    critical section across processes (file lock, PostgreSQL advisory lock, Redis lock)."""
    import asyncio

    import pandas as pd

    from modelplane.featurestore.online_write_lock import OnlineWriteLock

    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    repo = fs.core.repository
    other_replica = OnlineWriteLock.for_settings(repo.settings)  # its own handle / connection
    push = None
    with other_replica.hold(view):
        push = asyncio.ensure_future(fs.stub.PushOnlineRows(pb.PushOnlineRowsRequest(
            feature_view=view, rows=table_data(rows(key, [1], [NOW], [2.0])))))
        with pytest.raises(TimeoutError):  # it waits for the other replica's write
            await asyncio.wait_for(asyncio.shield(push), 1.5)
        # ... which stores a newer event for the same key meanwhile
        newer = pd.DataFrame({key: [1], "event_timestamp": [NOW + timedelta(hours=1)],
                              "value": [9.0], "tag": ["t9"], "count": [9]})
        await asyncio.to_thread(repo.store.refresh_registry)  # Feast's cache: the new view
        await asyncio.to_thread(repo.store.write_to_online_store, view, newer)
    resp = await push
    assert resp.row_count == 0  # older than what the other replica wrote
    got = await online(fs, [f"{view}:value"], key, [1])
    assert got["value"] == [9.0]


def _stream_message(key: str, ids: list[int | None], times: list[datetime | None],
                    values: list[float], *, tag_type: pa.DataType | None = None,
                    view: str = "") -> pb.StreamOnlineRowsRequest:
    tag_type = tag_type or pa.string()
    tags = [f"t{v}" for v in values] if tag_type == pa.string() else [int(v) for v in values]
    table = pa.table({key: pa.array(ids, pa.int64()), "event_timestamp": pa.array(times, TS),
                      "value": pa.array(values, pa.float64()), "tag": pa.array(tags, tag_type)})
    return pb.StreamOnlineRowsRequest(feature_view=view, rows=table_data(table))


async def _stream(fs: Any, messages: list[pb.StreamOnlineRowsRequest]
                  ) -> pb.StreamOnlineRowsResponse:
    async def requests() -> Any:
        for m in messages:
            yield m
    return await fs.stub.StreamOnlineRows(requests())


async def test_stream_push_rejects_bad_rows_by_index_and_keeps_the_newest_event(
        featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    hour_ago = NOW - timedelta(hours=1)
    messages = []
    for m in range(10):  # 10 messages x 20 rows; row i of the stream has id i
        ids: list[int | None] = list(range(m * 20, m * 20 + 20))
        times: list[datetime | None] = [hour_ago] * 20
        values = [float(i) for i in range(m * 20, m * 20 + 20)]
        tag_type = pa.string()
        if m == 2:
            ids[5] = None                   # stream index 45: no entity key
        if m == 4:
            times[0] = None                 # stream index 80: no event time
        if m == 6:
            tag_type = pa.int64()           # 120..139: `tag` is not a string
        if m == 8:
            ids[0], times[0], values[0] = 3, NOW - timedelta(hours=2), -3.0   # older than id 3
        if m == 9:
            ids[0], times[0], values[0] = 7, NOW, 777.0                        # newer than id 7
        messages.append(_stream_message(key, ids, times, values, tag_type=tag_type,
                                        view=view if m in (0, 6) else ""))
    resp = await _stream(fs, messages)
    assert resp.received_count == 200
    assert resp.rejected_count == 22
    assert [r.index for r in resp.rejected] == [45, 80, *range(120, 140)]
    assert resp.rejected[0].field == f"rows.{key}" and "null" in resp.rejected[0].reason
    assert resp.rejected[1].field == "rows.event_timestamp"
    assert {r.field for r in resp.rejected[2:]} == {"rows.tag"}
    # 178 good rows; the older id 3 and the first id 7 lose to a newer event of their key
    assert resp.superseded_count == 2 and resp.written_count == 176

    got = await online(fs, [f"{view}:value", f"{view}:tag"], key, [0, 3, 7, 45, 80, 120, 199])
    assert got["value"] == [0.0, 3.0, 777.0, None, None, None, 199.0]
    assert got["tag"][0] == "t0.0"

    # A later stream: an older event for id 7 is not written; a newer one for id 0 is.
    resp = await _stream(fs, [
        _stream_message(key, [7], [NOW - timedelta(hours=3)], [-7.0], view=view),
        _stream_message(key, [0], [NOW + timedelta(minutes=1)], [1000.0])])
    assert (resp.written_count, resp.superseded_count, resp.rejected_count) == (1, 1, 0)
    got = await online(fs, [f"{view}:value"], key, [0, 7])
    assert got["value"] == [1000.0, 777.0]


async def test_stream_push_reads_ahead_a_bounded_number_of_batches(featurestore: Any) -> None:
    """Backpressure: with a slow store, the reader stays at most queue + 2 write batches
    ahead of the writer, instead of buffering the whole stream."""
    import asyncio
    import time

    from modelplane.featurestore.online_stream import OnlineRowStream, RowBatch

    fs = featurestore
    if fs.config != "default":
        pytest.skip("the bound is the stream's, not the store's: one store is enough")
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    yielded = 0
    leads: list[int] = []

    def slow_store(spec: Any, keys: dict[str, list[Any]]) -> list[float]:
        leads.append(yielded - (len(leads) + 1))   # messages read beyond this write batch
        time.sleep(0.05)
        return fs.core.writer.stored_event_seconds(spec, keys)  # type: ignore[no-any-return]

    async def batches() -> Any:
        nonlocal yielded
        for m in range(30):
            yielded += 1
            yield RowBatch(view if m == 0 else "", rows(key, list(range(m * 10, m * 10 + 10)),
                                                        [NOW] * 10, [float(m)] * 10))
            await asyncio.sleep(0)

    stream = OnlineRowStream(fs.core.repository, slow_store, batch_rows=10, queue_batches=1)
    result = await stream.push(batches())
    assert (result.received, result.written, result.rejected_count) == (300, 300, 0)
    assert len(leads) == 30 and max(leads) <= 1 + 2, leads
    got = await online(fs, [f"{view}:value"], key, [0, 299])
    assert got["value"] == [0.0, 29.0]


async def test_stream_push_needs_a_feature_view_and_names_unknown_ones(featurestore: Any) -> None:
    fs = featurestore
    entity, _ = await make_view(fs)
    key = f"{entity}_id"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _stream(fs, [_stream_message(key, [1], [NOW], [1.0])])
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(info.value).field_violations[0].field == "feature_view"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _stream(fs, [_stream_message(key, [1], [NOW], [1.0], view="no_such_view")])
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- bad input

async def test_unknown_refs_are_named_in_the_error(featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await online(fs, [f"{view}:value", "nope_view:x"], key, [1])
    err = rpc_error(info.value)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.metadata["feature_ref"] == "nope_view:x" and "nope_view" in err.message

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await online(fs, [f"{view}:value", f"{view}:missing"], key, [1])
    err = rpc_error(info.value)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.metadata["feature_ref"] == f"{view}:missing"
    assert err.field_violations[0].field == "feature_refs[1]"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.CreateDataset(pb.CreateDatasetRequest(
            dataset=pb.Dataset(name="x", feature_refs=["malformed"]),
            entity_rows=table_data(pa.table({key: [1], "event_timestamp": pa.array([NOW], TS)}))))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(info.value).field_violations[0].field == "dataset.feature_refs[0]"

    # Feast's contract gets the same errors.
    req = feast_pb.GetOnlineFeaturesRequest(features=feast_pb.FeatureList(val=["ghost:value"]))
    req.entities[key].val.append(Value_pb2.Value(int64_val=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.feast_stub.GetOnlineFeatures(req)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    for bad in (pb.WriteOfflineRowsRequest(feature_view="ghost",
                                           rows=table_data(pa.table({"a": [1]}))),):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await fs.stub.WriteOfflineRows(bad)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert rpc_error(info.value).metadata["feature_view"] == "ghost"


async def test_bad_entity_keys_are_invalid_argument(featurestore: Any) -> None:
    from modelplane.api.v1 import types_pb2
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    req = pb.GetOnlineFeaturesRequest(feature_refs=[f"{view}:value"])
    req.entities[key].values.append(types_pb2.Value(string_value="not-an-int"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.GetOnlineFeatures(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error(info.value).field_violations[0].field == f"entities.{key}[0]"

    req = pb.GetOnlineFeaturesRequest(feature_refs=[f"{view}:value"])
    req.entities["wrong_key"].values.append(types_pb2.Value(int64_value=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.GetOnlineFeatures(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {v.field for v in rpc_error(info.value).field_violations}
    assert fields == {f"entities.{key}", "entities.wrong_key"}


async def test_rows_of_the_wrong_type_are_rejected_and_nothing_is_written(
        featurestore: Any) -> None:
    fs = featurestore
    entity, view = await make_view(fs)
    key = f"{entity}_id"
    good = rows(key, [1], [NOW - timedelta(hours=1)], [1.0])
    await write_offline(fs, view, good)
    await materialize(fs, [view], end=NOW)
    bad = pa.table({key: pa.array([1, 2], pa.int64()),
                    "event_timestamp": pa.array([NOW, NOW], TS),
                    "value": pa.array(["high", "low"]),          # STRING for a DOUBLE
                    "count": pa.array([1.5, 2.5]),               # float for an INT64
                    "extra": pa.array([1, 2])})                  # not a column of the view
    for call in (fs.stub.WriteOfflineRows, fs.stub.PushOnlineRows):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(type(pb.WriteOfflineRowsRequest())(feature_view=view, rows=table_data(bad))
                       if call is fs.stub.WriteOfflineRows else
                       pb.PushOnlineRowsRequest(feature_view=view, rows=table_data(bad),
                                                also_offline=True))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fields = {v.field for v in rpc_error(info.value).field_violations}
        assert fields == {"rows.value", "rows.count", "rows.extra"}
    missing_ts = pa.table({key: pa.array([5], pa.int64()), "value": pa.array([1.0])})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fs.stub.WriteOfflineRows(pb.WriteOfflineRowsRequest(feature_view=view,
                                                                 rows=table_data(missing_ts)))
    assert {v.field for v in rpc_error(info.value).field_violations} == {"rows.event_timestamp"}

    report = await fs.stub.ComputeDataQuality(pb.ComputeDataQualityRequest(feature_view=view))
    assert report.row_count == 1, "a rejected request writes nothing offline"
    got = await online(fs, [f"{view}:value"], key, [1, 2])
    assert got["value"] == [1.0, None], "a rejected request writes nothing online"
