"""The prediction log's columnar form, its delivery to the real observability service,
dead letters for rejected rows, trace/span ids, and an observability older than arrow_ipc."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Self

import grpc
import numpy as np
import pyarrow as pa
import tritonclient.grpc.aio as tgrpc_aio

from modelplane.observability.v1 import observability_pb2 as obs_pb
from modelplane.serving.log_columns import encode_columnar
from modelplane.serving.prediction_log import PredictionRecord
from modelplane.serving.servable_model import ModelInput
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X = np.random.default_rng(5).normal(size=(2, 4))


def _record(pid: str, inputs, outputs, **kw) -> PredictionRecord:
    base = {"deployment": "d", "model": "m", "model_version": "3", "environment": "production",
                "time": 1_700_000_000.25, "latency_ms": 1.5, "features": {}, "route": "champion",
                "trace_id": "ab" * 16, "fallback_reason": "", "parent_prediction_id": "",
                "span_id": "cd" * 8}
    base.update(kw)
    return PredictionRecord(pid, base.pop("deployment"), base.pop("model"),
                            base.pop("model_version"), base.pop("environment"), base.pop("time"),
                            inputs, outputs, base.pop("latency_ms"), **base)


def test_records_become_contract_columns_grouped_by_layout():
    matrix = [_record(f"p{i}", ModelInput(1, {}, np.full((1, 3), float(i)), "x"),
                      np.array([i % 2])) for i in range(3)]
    multi = _record("q", ModelInput(2, {"age": np.array([30, 40]),
                                        "city": np.array(["a", "b"], dtype=object)}),
                    np.array([[0.2, 0.8], [0.9, 0.1]]), environment="shadow",
                    parent_prediction_id="p0", fallback_reason="TIMEOUT", span_id="",
                    features={"spend": np.array([1.5, 2.5])})
    spooled = PredictionRecord.from_dict(matrix[0].to_dict() | {"prediction_id": "s"})
    messages = encode_columnar([*matrix, multi, spooled])
    assert len(messages) == 2  # the matrix layout (live and spooled alike) and the column one
    by_rows = {m.rows: m for m in messages}
    t = pa.ipc.open_stream(by_rows[4].ipc).read_all()
    assert t.column("prediction_id").to_pylist() == ["p0", "p1", "p2", "s"]
    assert [o for o in by_rows[4].origin] == [(0, 0), (1, 0), (2, 0), (4, 0)]
    assert t.column("feature.x_2").to_pylist() == [0.0, 1.0, 2.0, 0.0]
    assert t.schema.field("feature.x_0").type == pa.float64()
    assert t.column("prediction").to_pylist() == [0, 1, 0, 0]
    assert t.schema.field("prediction").type == pa.int64()
    assert t.column("environment").to_pylist() == [3] * 4
    assert t.schema.field("prediction_time").type == pa.timestamp("us", tz="UTC")
    assert t.column("prediction_time")[0].as_py().timestamp() == 1_700_000_000.25
    assert t.column("latency_us").to_pylist() == [1500] * 4
    assert t.column("trace_id").to_pylist() == ["ab" * 16] * 4
    assert t.column("span_id").to_pylist() == ["cd" * 8] * 4
    assert t.column("tag.deployment").to_pylist() == ["d"] * 4
    assert "tag.fallback_reason" not in t.column_names  # empty everywhere: no column

    t = pa.ipc.open_stream(by_rows[2].ipc).read_all()
    assert t.column("prediction_id").to_pylist() == ["q.0", "q.1"]
    assert by_rows[2].origin == [(3, 0), (3, 1)]
    assert t.column("feature.age").to_pylist() == [30, 40]
    assert t.column("feature.city").to_pylist() == ["a", "b"]
    assert t.column("feature.spend").to_pylist() == [1.5, 2.5]
    assert t.column("score.1").to_pylist() == [0.8, 0.1]
    assert t.column("prediction").to_pylist() == [1, 0]  # the arg-max class
    assert t.column("environment").to_pylist() == [4, 4]
    assert t.column("tag.parent_prediction_id").to_pylist() == ["p0", "p0"]
    assert t.column("tag.fallback_reason").to_pylist() == ["TIMEOUT", "TIMEOUT"]
    assert "span_id" not in t.column_names


async def _deploy(address: str, *deployments: pb.Deployment) -> None:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = serving_pb2_grpc.ServingServiceStub(ch)
        for d in deployments:
            await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=d))


async def _infer(address: str, model: str, n: int, headers: dict | None = None) -> list[str]:
    c = tgrpc_aio.InferenceServerClient(address)
    inp = tgrpc_aio.InferInput("x", [2, 4], "FP64")
    inp.set_data_from_numpy(X)
    try:
        return [(await c.infer(model, [inp], headers=headers)).get_response()
                .parameters["prediction_id"].string_param for _ in range(n)]
    finally:
        await c.close()


async def _observability(tmp_path, database_url: str | None = None):
    from modelplane.kit.server import running
    from modelplane.kit.settings import ServiceSettings
    from modelplane.observability.main import build
    from modelplane.observability.runtime import ObservabilityRuntime
    from modelplane.observability.settings import ObservabilitySettings

    svc = ServiceSettings.from_env("observability", {
        "MODELPLANE_DATA_DIR": str(tmp_path / "obs"), "MODELPLANE_AUTH": "off"}
    ).with_listen("127.0.0.1:0")
    settings = ObservabilitySettings(svc, http_addr="", monitor_tick_seconds=0,
                                     database_url=database_url)
    rt = ObservabilityRuntime(settings)
    spec, _ = build(settings, rt)
    return running(spec, svc)


class _Records(logging.Handler):
    """Log records of one logger (the kit replaces the root handlers, caplog's among them)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Self:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)


async def test_predictions_reach_the_real_observability_and_rejected_rows_are_dead_lettered(
        make_settings, sv, tmp_path):
    from modelplane.kit.telemetry import setup_tracing
    from modelplane.observability.v1 import observability_pb2 as obs
    from modelplane.observability.v1 import observability_pb2_grpc as obs_grpc

    setup_tracing("serving-tests")  # as serve() does: requests get a recording span
    async with await _observability(tmp_path) as observability:
        ch = grpc.aio.insecure_channel(observability.address)
        stub = obs_grpc.ObservabilityServiceStub(ch)
        # Model "baseline" already has feature x_0 as a string: its numeric x_0 is refused.
        seed = obs.EvaluationRecord(prediction_id="seed", model="baseline", version="1",
                                    environment=obs.ENVIRONMENT_PRODUCTION)
        seed.prediction_time.GetCurrentTime()
        seed.features["x_0"].string_value = "text"
        seeded = await stub.LogRecords(iter([obs.LogRecordsRequest(records=[seed])]))
        assert seeded.accepted_count == 1

        settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=observability.address,
                                 MODELPLANE_SERVING_LOG_FLUSH_SECONDS="0.3")
        async with sv.run_server(settings) as server:
            await _deploy(server.grpc_address,
                          pb.Deployment(name="churn", model="churn"),
                          pb.Deployment(name="base", model="baseline",
                                        traffic_split=pb.TrafficSplit(routes=[pb.Route(
                                            target=pb.ModelTarget(version="1"), weight=1)])))
            with _Records("modelplane.serving.prediction_log") as caplog:
                good, bad = await asyncio.gather(_infer(server.grpc_address, "churn", 5),
                                                 _infer(server.grpc_address, "base", 3))
                await sv.wait_until(lambda: server.logger.delivered == 8
                                    and server.logger.rejected == 6, timeout=15)
            # The accepted rows are stored, one per row, with what serving knew.
            stored = await stub.GetRecord(obs.GetRecordRequest(prediction_id=f"{good[0]}.1"))
            assert stored.model == "churn" and stored.version == "1"
            assert stored.environment == obs.ENVIRONMENT_PRODUCTION
            assert stored.features["x_3"].double_value == X[1, 3]
            assert stored.tags["deployment"] == "churn" and len(stored.trace_id) == 32
            # The refused rows: in the dead-letter file with the reason, counted, logged.
            lines = [json.loads(x) for x in
                     (settings.spool_dir / "dead-letter.jsonl").read_text().splitlines()]
            assert sorted(x["prediction_id"] for x in lines) == sorted(
                f"{p}.{i}" for p in bad for i in range(2))
            assert all("x_0" in x["field"] and "categorical" in x["reason"] for x in lines)
            assert {x["record"]["deployment"] for x in lines} == {"base"}
            assert lines[0]["record"]["inputs"]["x"] in (X.tolist(),)
            assert any("rejected 6 prediction row" in r.getMessage() for r in caplog.records)
            assert 'modelplane_serving_prediction_log_rejected_total{deployment="base"} 6.0' in \
                (await asyncio.to_thread(_metrics, server.http_address))
            # Dead letters are not spool files: nothing is re-sent, nothing pending.
            assert server.logger.pending == 0
        await ch.close()


def _metrics(address: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as r:
        return r.read().decode()


async def test_span_id_names_the_recording_span_and_is_empty_when_not_sampled(make_settings, sv):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from modelplane.kit.telemetry import setup_tracing

    exporter = InMemorySpanExporter()
    setup_tracing("serving-tests", [SimpleSpanProcessor(exporter)])
    obs = sv.ObservabilityStandIn()
    await obs.start()
    try:
        settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
        async with sv.run_server(settings) as server:
            await _deploy(server.grpc_address, pb.Deployment(name="churn", model="churn"))
            sampled = (await _infer(server.grpc_address, "churn", 1))[0]
            trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            unsampled = (await _infer(server.grpc_address, "churn", 1, headers={
                "traceparent": f"00-{trace}-00f067aa0ba902b7-00"}))[0]
            await sv.wait_until(lambda: len(obs.records) == 4)
        assert obs.arrow_messages >= 1  # the columnar path was used
        rec = obs.records[f"{sampled}.0"]
        spans = {format(s.context.span_id, "016x"): s for s in exporter.get_finished_spans()}
        assert rec.span_id in spans and "ModelInfer" in spans[rec.span_id].name
        assert format(spans[rec.span_id].context.trace_id, "032x") == rec.trace_id
        off = obs.records[f"{unsampled}.1"]
        assert off.trace_id == trace and off.span_id == ""
    finally:
        await obs.stop()


async def test_an_observability_without_arrow_ipc_gets_one_record_per_row(make_settings, sv):
    obs = sv.ObservabilityStandIn(columnar=False)  # ignores arrow_ipc, as before the contract
    await obs.start()
    try:
        settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
        async with sv.run_server(settings) as server:
            await _deploy(server.grpc_address, pb.Deployment(name="churn", model="churn"))
            with _Records("modelplane.serving.observability_sink") as caplog:
                ids = await _infer(server.grpc_address, "churn", 3)
                await sv.wait_until(lambda: len(obs.records) == 6)
                ids += await _infer(server.grpc_address, "churn", 2)
                await sv.wait_until(lambda: len(obs.records) == 10)
        assert set(obs.records) == {f"{p}.{i}" for p in ids for i in range(2)}
        assert sum("arrow_ipc" in r.getMessage() for r in caplog.records) == 1  # said once
        assert obs.arrow_messages == 0
    finally:
        await obs.stop()



async def test_a_resent_batch_is_stored_once_by_prediction_id(tmp_path, make_postgres_database):
    """What makes the write-ahead log's resend after a crash harmless: observability on
    PostgreSQL claims each prediction id once (ON CONFLICT DO NOTHING) and counts the rest
    as duplicates, columnar and per-row alike."""
    import psycopg

    from modelplane.serving.adapters.observability_sink import ObservabilitySink

    dsn = make_postgres_database("mp_dedupe_obs")
    async with await _observability(tmp_path, dsn) as observability:
        first = [_record(f"id{i}", ModelInput(1, {}, X[:1], "x"), np.array([i % 2]))
                 for i in range(5)]
        sink = ObservabilitySink(grpc.aio.insecure_channel(observability.address))
        try:
            assert await sink.send(first) == []
            # Sent again (a crash before the ack), with two records never sent before.
            more = [_record(f"id{i}", ModelInput(1, {}, X[:1], "x"), np.array([1]))
                    for i in range(5, 7)]
            response = await sink._call([obs_pb.LogRecordsRequest(arrow_ipc=m.ipc)
                                         for m in encode_columnar([*first, *more])])
            assert (response.accepted_count, response.duplicate_count) == (2, 5)
            sink.columnar = False  # and the per-row path of an older observability
            assert await sink.send(first[:2]) == []
        finally:
            await sink.close()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT prediction_id, count(*) FROM obs_records "
                            "GROUP BY prediction_id ORDER BY 1").fetchall()
    assert rows == [(f"id{i}", 1) for i in range(7)]
