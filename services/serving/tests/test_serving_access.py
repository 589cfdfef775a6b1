"""Per-deployment rights, Prometheus metrics, batch scoring, Bento export."""

from __future__ import annotations

import asyncio

import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as tgrpc
from tritonclient.utils import InferenceServerException

from modelplane.kit.auth import Role, add_key
from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X = np.random.default_rng(2).normal(size=(1, 4))


async def test_per_deployment_rights_for_infer_and_manage(make_settings, sv, tmp_path):
    keys = tmp_path / "keys.json"
    admin = add_key(keys, "admin", Role.ADMIN)
    alice = add_key(keys, "alice", Role.READER)
    bob = add_key(keys, "bob", Role.READER)
    carol = add_key(keys, "carol", Role.WRITER)
    dave = add_key(keys, "dave", Role.WRITER)
    settings = make_settings(MODELPLANE_AUTH="on", MODELPLANE_API_KEYS_FILE=str(keys))
    async with sv.run_server(settings) as server:
        def md(key: str) -> tuple:
            return (("authorization", f"Bearer {key}"),)

        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(
                name="churn", model="churn",
                access=pb.AccessPolicy(infer_principals=["alice"],
                                       manage_principals=["carol"]))), metadata=md(admin))
            split = pb.TrafficSplit(routes=[pb.Route(target=pb.ModelTarget(version="2"),
                                                     weight=1)])
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                    name="churn", traffic_split=split), metadata=md(dave))
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                    name="churn", traffic_split=split), metadata=md(alice))  # reader
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            await stub.SetTrafficSplit(pb.SetTrafficSplitRequest(
                name="churn", traffic_split=split), metadata=md(carol))

        def infer_as(key: str | None) -> str:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            inp = tgrpc.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X)
            headers = {"authorization": f"Bearer {key}"} if key else None
            try:
                return c.infer("churn", [inp], headers=headers).get_response().model_version
            except InferenceServerException as exc:
                return exc.status()
            finally:
                c.close()

        assert await asyncio.to_thread(infer_as, alice) == "2"
        assert await asyncio.to_thread(infer_as, bob) == "StatusCode.PERMISSION_DENIED"
        assert await asyncio.to_thread(infer_as, None) == "StatusCode.UNAUTHENTICATED"
        assert await asyncio.to_thread(infer_as, admin) == "2"

        def http_as(key: str | None) -> int:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return httpx.post(f"http://{server.http_address}/v2/models/churn/infer",
                              headers=headers, json={"inputs": [
                                  {"name": "x", "shape": [1, 4], "datatype": "FP64",
                                   "data": X.reshape(-1).tolist()}]}).status_code

        assert [await asyncio.to_thread(http_as, k) for k in (alice, bob, None)] == \
            [200, 403, 401]


async def test_metrics_count_requests_latency_and_errors_by_deployment_and_version(
        make_settings, sv):
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=pb.Deployment(name="churn",
                                                                    model="churn")))

        def traffic() -> str:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            inp = tgrpc.InferInput("x", [1, 4], "FP64")
            inp.set_data_from_numpy(X)
            for _ in range(5):
                c.infer("churn", [inp])
            c.close()
            return httpx.get(f"http://{server.http_address}/metrics").text

        body = await asyncio.to_thread(traffic)
        assert 'modelplane_serving_requests_total{deployment="churn",outcome="ok",' \
               'route="champion",version="1"} 5.0' in body
        assert 'modelplane_serving_request_latency_seconds_count{deployment="churn",' \
               'version="1"} 5.0' in body
        assert "modelplane_serving_prediction_log_pending" in body


async def test_batch_job_scores_a_parquet_file_and_logs_it_as_batch(make_settings, sv, tmp_path):
    from sklearn.linear_model import LogisticRegression

    obs = sv.ObservabilityStandIn()
    await obs.start()
    X, _ = sv.make_data(9, 25)
    src = tmp_path / "serving" / "imports" / "rows.parquet"  # the service's imports root
    src.parent.mkdir(parents=True)
    pd.DataFrame(X, columns=[f"f{i}" for i in range(4)]).to_parquet(src)
    expected = LogisticRegression(C=1.0).fit(*sv.make_data(0)).predict(X)
    settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
    try:
        async with sv.run_server(settings) as server:
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                stub = serving_pb2_grpc.ServingServiceStub(ch)
                await stub.CreateDeployment(pb.CreateDeploymentRequest(
                    deployment=pb.Deployment(name="churn", model="churn")))
                job = await stub.CreateBatchJob(pb.CreateBatchJobRequest(
                    batch_job=pb.BatchJob(deployment="churn", parquet_uri=str(src))))
                for _ in range(200):
                    job = await stub.GetBatchJob(pb.GetBatchJobRequest(id=job.id))
                    if job.state in (pb.BATCH_JOB_STATE_SUCCEEDED, pb.BATCH_JOB_STATE_FAILED):
                        break
                    await asyncio.sleep(0.05)
                assert job.state == pb.BATCH_JOB_STATE_SUCCEEDED, job.error_message
                assert job.rows_scored == 25 and job.model_version == "1"
                listed = await stub.ListBatchJobs(pb.ListBatchJobsRequest(deployment="churn"))
                assert [j.id for j in listed.batch_jobs] == [job.id]
            out = pd.read_parquet(job.output_uri)
            np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)
            await sv.wait_until(lambda: len(obs.records) == 25)
        from modelplane.observability.v1 import observability_pb2 as o

        assert {r.environment for r in obs.records.values()} == {o.ENVIRONMENT_BATCH}
        assert set(out["prediction_id"]) == set(obs.records)
    finally:
        await obs.stop()


async def test_export_bento_builds_a_standalone_bento_archive(make_settings, sv, tmp_path):
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=pb.Deployment(name="churn", model="churn")))
            out = await stub.ExportBento(pb.ExportBentoRequest(
                name="churn", output_path=str(tmp_path / "serving" / "exports" / "churn.bento")),
                timeout=120)
        assert out.bento_model_tag == "churn:v1"
        assert out.bento_tag.startswith("churn-svc:")
        import tarfile

        with tarfile.open(out.path) as tar:
            names = tar.getnames()
        assert any(n.rsplit("/", 1)[-1].startswith("service_") and n.endswith(".py") for n in names)
        assert any("models/churn/v1" in n for n in names)
