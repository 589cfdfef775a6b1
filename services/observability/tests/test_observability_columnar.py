"""LogRecords' columnar form (``arrow_ipc``) on both stores: the same stored data and
analytics as the per-record form, rejections by index, idempotency across forms,
and the ingest span joined to the prediction's trace."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf.json_format import MessageToDict
from obs_test_data import (  # type: ignore[import-not-found]
    T0,
    Service,
    arrow_table,
    churn_records,
    ipc_bytes,
    log,
    log_actuals,
    log_arrow,
    record,
    rpc_error,
    unique_model,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelplane.kit.errors import InvalidArgument
from modelplane.kit.telemetry import setup_tracing
from modelplane.observability.store.base import ScanSpec
from modelplane.observability.v1 import observability_pb2 as pb

PROD = pb.ENVIRONMENT_PRODUCTION


async def _stream(stub: Any, requests: list[pb.LogRecordsRequest]) -> pb.LogRecordsResponse:
    async def gen() -> AsyncIterator[pb.LogRecordsRequest]:
        for r in requests:
            yield r
    return await stub.LogRecords(gen())


def _renamed(recs: list[pb.EvaluationRecord], model: str, prefix: str
             ) -> list[pb.EvaluationRecord]:
    out = []
    for r in recs:
        c = pb.EvaluationRecord()
        c.CopyFrom(r)
        c.model = model
        c.prediction_id = prefix + r.prediction_id
        out.append(c)
    return out


def _scan(service: Service, model: str) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in
            service.runtime.store.scan(ScanSpec(model)).decode().splitlines() if line]
    for d in docs:
        d["i"] = d["i"].split(":", 1)[1]
    return docs


def _mixed_records(model: str, n: int) -> list[pb.EvaluationRecord]:
    """Every value type, missing values, NaN / infinite features, integral doubles."""
    rng = np.random.default_rng(7)
    recs = []
    for i in range(n):
        feats: dict[str, object] = {
            "x": float(rng.normal()), "whole": float(i % 4),  # integral doubles keep ".0"
            "count": int(i % 7), "city": ["paris", "lyon", 'q"uo\\te'][i % 3],
            "flag": bool(i % 2), "big": 1e16 * (i % 2) + 0.5 if i % 5 else 123456789.125,
            "tiny": 1.5e-7 * i}
        if i % 9 == 0:
            feats["x"] = float("nan")
        if i % 11 == 0:
            feats["tiny"] = float("inf")
        if i % 6 == 0:
            del feats["city"]
        r = record(f"{i}", model, "v2" if i % 3 else "v1", PROD, T0 + timedelta(minutes=i),
                   feats, int(i % 3 == 0), {"1": float(rng.uniform())} if i % 8 else {},
                   {"region": "eu"} if i % 2 else {})
        if i % 4 == 0:
            r.trace_id = uuid.uuid4().hex
        if i % 10:
            r.latency.FromMicroseconds(100 + i)
        if i % 13 == 0:
            r.attributions["x"] = 0.25
        recs.append(r)
    return recs


async def test_both_forms_store_identical_records_and_give_identical_analytics(
        service: Service) -> None:
    rows_model, cols_model = unique_model("rows"), unique_model("cols")
    base = _mixed_records("m", 240)
    by_rows = _renamed(base, rows_model, "r:")
    by_cols = _renamed(base, cols_model, "c:")
    a = await log(service.stub, by_rows, batch=100)
    b = await log_arrow(service.stub, by_cols, batch=100)
    assert (a.accepted_count, a.duplicate_count, list(a.rejected)) == (240, 0, [])
    assert (b.accepted_count, b.duplicate_count, list(b.rejected)) == (240, 0, [])
    # The stored values, byte for byte after JSON parsing, and the catalogs.
    assert _scan(service, rows_model) == _scan(service, cols_model)
    catalogs = service.runtime.catalogs
    assert catalogs[rows_model].kinds == catalogs[cols_model].kinds
    # GetRecord gives the same record (integral doubles stay doubles).
    for pid in ("0", "5", "13", "22"):
        ra = await service.stub.GetRecord(pb.GetRecordRequest(prediction_id="r:" + pid))
        rb = await service.stub.GetRecord(pb.GetRecordRequest(prediction_id="c:" + pid))
        da, db = MessageToDict(ra), MessageToDict(rb)
        for d in (da, db):
            d.pop("predictionId"), d.pop("model")
        assert da == db
    # Analytics: performance with actuals, drift between versions, by slice.
    y = [(i % 2) for i in range(240)]
    await log_actuals(service.stub, [(f"r:{i}", y[i]) for i in range(240)])
    await log_actuals(service.stub, [(f"c:{i}", y[i]) for i in range(240)])
    for request in (
        lambda m: service.stub.ComputePerformance(pb.ComputePerformanceRequest(
            filter=pb.EvaluationFilter(model=m), bucket={"seconds": 3600},
            slice_by=[pb.ColumnRef(name="city"), pb.ColumnRef(name="whole")])),
        lambda m: service.stub.ComputeDrift(pb.ComputeDriftRequest(
            current=pb.EvaluationFilter(model=m, versions=["v2"]),
            reference=pb.ReferenceData(filter=pb.EvaluationFilter(model=m, versions=["v1"])))),
    ):
        ra, rb = await request(rows_model), await request(cols_model)
        assert MessageToDict(ra) == MessageToDict(rb)


async def test_rejections_carry_their_index_in_the_whole_stream(service: Service) -> None:
    model = unique_model("colrej")
    recs, _ = churn_records(model, PROD, 30)
    good = arrow_table(recs[10:20])
    ids = good.column("prediction_id").to_pylist()
    env = good.column("environment").to_pylist()
    env[2], env[4] = 0, 9
    scores = good.column("score.1").to_pylist()
    scores[5] = float("nan")
    pids = list(ids)
    pids[7] = None
    bad = (good.set_column(good.schema.get_field_index("environment"), "environment",
                           pa.array(env, pa.int32()))
           .set_column(good.schema.get_field_index("score.1"), "score.1", pa.array(scores))
           .set_column(0, "prediction_id", pa.array(pids, pa.string())))
    res = await _stream(service.stub, [
        pb.LogRecordsRequest(records=recs[:10]),
        pb.LogRecordsRequest(arrow_ipc=ipc_bytes(bad)),
        pb.LogRecordsRequest(arrow_ipc=ipc_bytes(arrow_table(recs[20:]))),
    ])
    assert res.accepted_count == 26 and res.duplicate_count == 0
    got = [(r.index, r.prediction_id, r.field) for r in res.rejected]
    assert got == [(12, ids[2], "arrow_ipc[2].environment"),
                   (14, ids[4], "arrow_ipc[4].environment"),
                   (15, ids[5], "arrow_ipc[5].score.1"),
                   (17, "", "arrow_ipc[7].prediction_id")]
    assert "required" in res.rejected[0].reason
    assert "Environment" in res.rejected[1].reason
    assert "finite" in res.rejected[2].reason
    # A column the contract does not know, or a type it does not allow: the whole batch.
    unknown = arrow_table(recs[:3]).append_column("feature_x", pa.array([1.0, 2.0, 3.0]))
    wrong = arrow_table(recs[:3]).append_column("score.0", pa.array(["a", "b", "c"]))
    res = await _stream(service.stub, [pb.LogRecordsRequest(arrow_ipc=ipc_bytes(unknown)),
                                       pb.LogRecordsRequest(arrow_ipc=ipc_bytes(wrong))])
    assert res.accepted_count == 0
    assert [(r.index, r.field) for r in res.rejected] == [
        (0, "arrow_ipc[0].feature_x"), (1, "arrow_ipc[1].feature_x"),
        (2, "arrow_ipc[2].feature_x"), (3, "arrow_ipc[0].score.0"),
        (4, "arrow_ipc[1].score.0"), (5, "arrow_ipc[2].score.0")]
    assert "not a column of the contract" in res.rejected[0].reason
    assert "not allowed" in res.rejected[3].reason


async def test_a_prediction_id_counts_once_across_both_forms(service: Service) -> None:
    model = unique_model("coldup")
    recs, _ = churn_records(model, PROD, 40)
    first = await log(service.stub, recs[:20])
    assert first.accepted_count == 20
    # 10 already logged as records, 20 new, 5 repeated inside the batch itself.
    res = await log_arrow(service.stub, recs[10:40] + recs[35:40], batch=100)
    assert (res.accepted_count, res.duplicate_count) == (20, 15)
    again = await log(service.stub, recs[30:40])
    assert (again.accepted_count, again.duplicate_count) == (0, 10)
    listed = await service.stub.ListObservedModels(pb.ListObservedModelsRequest(page_size=1000))
    assert next(m for m in listed.models if m.model == model).record_count == 40


@pytest.mark.parametrize("form", ["arrow_ipc", "records"])
async def test_merged_batches_store_what_separate_ones_do(service: Service, form: str) -> None:
    """The ingest writers merge the batches waiting in the queue: one write of the
    concatenated tables (a dictionary-encoded model column, so several
    dictionaries) or record lists must store, reject and count exactly what
    separate writes do, and name a rejected row by its place in the caller's
    message."""
    import time

    from modelplane.observability.convert import record_from_pb
    from modelplane.observability.ingest import ArrowRecords

    def message(recs: list[pb.EvaluationRecord]) -> Any:
        if form == "records":
            return [record_from_pb(r, i) for i, r in enumerate(recs)]
        return ArrowRecords(arrow_table(recs))

    base = _mixed_records("m", 240)
    ingestor = service.runtime.ingestor
    results = {}
    for name, merge in (("separate", False), ("merged", True)):
        model = unique_model(name)
        recs = _renamed(base, model, f"{name[0]}{form[0]}:")
        recs[130].prediction_id = ""  # rejected: message 3 (rows 120-159), its row 10
        messages = [message(recs[k:k + 40]) for k in range(0, 240, 40)]
        writes = []

        def slow(batch: Any, first: int, seen: set[str], writes: list[int] = writes) -> Any:
            time.sleep(0.05)  # the database is slower than the client: batches queue up
            writes.append(len(batch))
            return ingestor.write_batch(batch, first, seen)

        async def stream(messages: list[Any] = messages) -> AsyncIterator[Any]:
            for m in messages:
                yield m

        result = await ingestor.ingest_stream(stream(), slow, merge=merge)
        if merge:
            assert len(writes) < len(messages)  # some were written together
            again = await ingestor.ingest_stream(stream(), slow, merge=True)
            assert (again.accepted, again.duplicates) == (0, 239)  # a retry
        else:
            assert writes == [40] * 6
        results[name] = (model, result)
    (m_sep, sep), (m_mrg, mrg) = results["separate"], results["merged"]
    assert (sep.accepted, sep.duplicates) == (mrg.accepted, mrg.duplicates) == (239, 0)
    assert [(r.index, r.field) for r in sep.rejected] == \
        [(r.index, r.field) for r in mrg.rejected] == [(130, f"{form}[10].prediction_id")]
    assert _scan(service, m_sep) == _scan(service, m_mrg)
    assert service.runtime.catalogs[m_sep].kinds == service.runtime.catalogs[m_mrg].kinds


async def test_a_feature_keeps_its_kind_across_forms(service: Service) -> None:
    model = unique_model("colkind")
    await log(service.stub, [record("k-0", model, "v1", PROD, T0, {"x": 1.0, "c": "a"}, 1)])
    table = arrow_table([record(f"k-{i}", model, "v1", PROD, T0, {"c": "b"}, 1)
                         for i in range(1, 5)])
    # x arrives as strings: rows with a value are rejected, the row without one is kept.
    table = table.append_column("feature.x", pa.array(["s", None, "t", None]))
    res = await _stream(service.stub, [pb.LogRecordsRequest(arrow_ipc=ipc_bytes(table))])
    assert res.accepted_count == 2
    assert [(r.index, r.field) for r in res.rejected] == [
        (0, "arrow_ipc[0].feature.x"), (2, "arrow_ipc[2].feature.x")]
    assert "categorical but model" in res.rejected[0].reason
    assert "numeric" in res.rejected[0].reason
    # And the other way: the catalog learnt from a columnar batch binds the per-record path.
    ints = arrow_table([record("k-9", model, "v1", PROD, T0, {"n": 3}, 1)])
    assert (await _stream(service.stub, [pb.LogRecordsRequest(arrow_ipc=ipc_bytes(ints))])
            ).accepted_count == 1
    rows = await log(service.stub, [record("k-10", model, "v1", PROD, T0, {"n": True}, 1),
                                    record("k-11", model, "v1", PROD, T0, {"n": 2.5}, 1)])
    assert rows.accepted_count == 1 and rows.rejected[0].index == 0


async def test_records_and_arrow_ipc_together_or_garbage_are_invalid_argument(
        service: Service) -> None:
    model = unique_model("colbad")
    recs, _ = churn_records(model, PROD, 2)
    both = pb.LogRecordsRequest(records=recs[:1], arrow_ipc=ipc_bytes(arrow_table(recs[1:])))
    err = await rpc_error(_stream(service.stub, [both]))
    assert isinstance(err, InvalidArgument)
    assert err.reason == "BOTH_RECORDS_AND_ARROW_IPC"
    err = await rpc_error(_stream(service.stub, [pb.LogRecordsRequest(arrow_ipc=b"not arrow")]))
    assert isinstance(err, InvalidArgument)
    assert err.reason == "INVALID_ARROW_IPC"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    setup_tracing("observability", processors=[SimpleSpanProcessor(exporter)])
    return exporter


async def test_ingest_joins_the_prediction_trace_as_a_child_span(
        service: Service, spans: InMemorySpanExporter) -> None:
    model = unique_model("coltrace")
    recs, _ = churn_records(model, PROD, 6)
    traces = [uuid.uuid4().hex for _ in range(6)]
    parents = [uuid.uuid4().hex[:16] for _ in range(6)]
    for r, t, s in zip(recs, traces, parents):
        r.trace_id, r.span_id = t, s
    recs[5].span_id = ""  # no span id: not traced
    await log(service.stub, recs[:3])
    await log_arrow(service.stub, recs[3:])
    mine = {format(s.context.trace_id, "032x"): s for s in spans.get_finished_spans()
            if s.name == "observability.ingest_record" and s.attributes
            and s.attributes.get("modelplane.model") == model}
    assert set(mine) == set(traces[:5])
    forms = {}
    for t, p in zip(traces[:5], parents[:5]):
        span = mine[t]
        assert span.parent is not None and format(span.parent.span_id, "016x") == p
        assert span.parent.is_remote
        attributes = dict(span.attributes or {})
        assert attributes["modelplane.observability.records"] == 1
        forms[t] = attributes["modelplane.observability.form"]
    assert [forms[t] for t in traces[:5]] == ["records"] * 3 + ["arrow_ipc"] * 2


def test_columnar_json_numbers_parse_like_json_dumps() -> None:
    """The JSON text the columnar path builds with Arrow kernels reads back as the
    same Python values, of the same types, as the per-record path's json.dumps."""
    from modelplane.observability.columnar import prepare_columnar, record_table

    rng = np.random.default_rng(3)
    values = [0.0, -0.0, 1.0, -2.0, 5e-324, 1e-7, 0.1, 123456789.0, 1e15, 1e16, 1e17,
              2.0 ** 53, 1e300, float("nan"), float("inf"), None,
              *(rng.normal(size=200) * 10.0 ** rng.integers(-12, 20, 200)).tolist(),
              *np.round(rng.normal(size=100) * 1e6).tolist()]
    n = len(values)
    table = pa.table({
        "prediction_id": [f"p{i}" for i in range(n)], "model": ["m"] * n, "version": ["v"] * n,
        "environment": pa.array([3] * n, pa.int8()),
        "prediction_time": pa.array([0] * n, pa.timestamp("s")),
        "feature.x": pa.array(values, pa.float64()),
        "feature.s": [f'a"b\\c\n{i}é' for i in range(n)],  # control characters
        "feature.t": [f'a"b\\c{i}é' for i in range(n)],  # escaped by Arrow kernels
    })
    batch = prepare_columnar(table, 0, {})
    features = record_table(batch, pa.timestamp("us")).column("features").to_pylist()
    for i, (value, text) in enumerate(zip(values, features)):
        got = json.loads(text)
        want: dict[str, Any] = {} if value is None or not np.isfinite(value) else {"x": value}
        want.update(s=f'a"b\\c\n{i}é', t=f'a"b\\c{i}é')
        assert got == want and [type(v) for v in got.values()] == [
            type(v) for v in want.values()], (value, text)
