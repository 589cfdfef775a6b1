"""Online features from the real featurestore (Feast ServingService contract), and dataset batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import numpy as np
import pyarrow as pa
import pytest
import tritonclient.grpc as tgrpc

from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

TS = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
async def featurestore(tmp_path_factory):
    from modelplane.api.v1 import types_pb2
    from modelplane.featurestore.demo_data import arrow_ipc
    from modelplane.featurestore.main import build_spec
    from modelplane.featurestore.settings import FeatureStoreSettings
    from modelplane.featurestore.v1 import featurestore_pb2 as fpb
    from modelplane.featurestore.v1 import featurestore_pb2_grpc
    from modelplane.kit.server import running
    from modelplane.kit.settings import ServiceSettings

    tmp = tmp_path_factory.mktemp("fs")
    settings = ServiceSettings(service="featurestore", listen="127.0.0.1:0", data_root=tmp,
                               auth_enabled=False)
    spec, _ = build_spec(settings, FeatureStoreSettings(data_dir=tmp / "data", project="srv"))
    async with running(spec, settings) as svc, grpc.aio.insecure_channel(svc.address) as ch:
        stub = featurestore_pb2_grpc.FeatureStoreServiceStub(ch)
        await stub.ApplyRepo(fpb.ApplyRepoRequest(
            entities=[fpb.Entity(name="driver", join_key="driver_id",
                                 value_type=fpb.VALUE_TYPE_INT64)],
            feature_views=[fpb.FeatureView(
                name="driver_stats", entities=["driver"], online=True,
                features=[fpb.Feature(name=f"f{i}", value_type=fpb.VALUE_TYPE_DOUBLE)
                          for i in range(4)])]))
        values = np.random.default_rng(4).normal(size=(3, 4))
        now = datetime.now(UTC).replace(microsecond=0)
        table = pa.table({"driver_id": pa.array([1, 2, 3], pa.int64()),
                          "event_timestamp": pa.array([now] * 3, TS),
                          **{f"f{i}": pa.array(values[:, i], pa.float64())
                             for i in range(4)}})
        await stub.PushOnlineRows(fpb.PushOnlineRowsRequest(
            feature_view="driver_stats", rows=types_pb2.TableData(arrow_ipc=arrow_ipc(table)),
            also_offline=True))
        entity_rows = pa.table({"driver_id": pa.array([3, 1], pa.int64()),
                                "event_timestamp": pa.array([now, now], TS)})
        ds = await stub.CreateDataset(fpb.CreateDatasetRequest(
            dataset=fpb.Dataset(name="scoring", feature_refs=[f"driver_stats:f{i}"
                                                              for i in range(4)]),
            entity_rows=types_pb2.TableData(arrow_ipc=arrow_ipc(entity_rows))))
        yield svc.address, values, ds.id


async def test_features_are_fetched_by_entity_key_and_joined_to_the_inputs(
        make_settings, sv, featurestore):
    from sklearn.linear_model import LogisticRegression

    address, values, dataset_id = featurestore
    clf = LogisticRegression(C=1.0).fit(*sv.make_data(0))
    obs = sv.ObservabilityStandIn()
    await obs.start()
    settings = make_settings(MODELPLANE_SERVING_FEATURESTORE_TARGET=address,
                             MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
    try:
        async with sv.run_server(settings) as server:  # noqa: SIM117 - the inner block needs the server's address
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                stub = serving_pb2_grpc.ServingServiceStub(ch)
                await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
                    name="eta", model="churn", features=pb.FeatureBinding(
                        feature_refs=[f"driver_stats:f{i}" for i in range(4)],
                        entity_keys=["driver_id"]))))

                def infer() -> tuple:
                    c = tgrpc.InferenceServerClient(server.grpc_address)
                    inp = tgrpc.InferInput("driver_id", [2], "INT64")
                    inp.set_data_from_numpy(np.array([2, 1], dtype=np.int64))
                    r = c.infer("eta", [inp])
                    bad = tgrpc.InferInput("rider_id", [1], "INT64")
                    bad.set_data_from_numpy(np.array([1], dtype=np.int64))
                    try:
                        c.infer("eta", [bad])
                        err = ""
                    except Exception as exc:  # noqa: BLE001
                        err = exc.status()
                    c.close()
                    return r.as_numpy("output-0"), r.get_response(), err

                out, resp, err = await asyncio.to_thread(infer)
                np.testing.assert_array_equal(out, clf.predict(values[[1, 0]]))
                assert err == "StatusCode.INVALID_ARGUMENT"
                pid = resp.parameters["prediction_id"].string_param
                await sv.wait_until(lambda: f"{pid}.0" in obs.records)
                rec = obs.records[f"{pid}.0"]
                assert rec.features["f0"].double_value == pytest.approx(values[1, 0])
                assert rec.features["driver_id"].int64_value == 2

                # Batch: score the featurestore dataset (entity keys + features).
                job = await stub.CreateBatchJob(pb.CreateBatchJobRequest(
                    batch_job=pb.BatchJob(deployment="eta", dataset=dataset_id)))
                for _ in range(400):
                    job = await stub.GetBatchJob(pb.GetBatchJobRequest(id=job.id))
                    if job.state in (pb.BATCH_JOB_STATE_SUCCEEDED, pb.BATCH_JOB_STATE_FAILED):
                        break
                    await asyncio.sleep(0.05)
                assert job.state == pb.BATCH_JOB_STATE_SUCCEEDED, job.error_message
                import pandas as pd

                scored = pd.read_parquet(job.output_uri)
                np.testing.assert_array_equal(scored["prediction"].to_numpy(),
                                              clf.predict(values[[2, 0]]))
    finally:
        await obs.stop()
