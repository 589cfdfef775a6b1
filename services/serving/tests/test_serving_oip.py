"""tritonclient (gRPC and HTTP), unmodified, against the serving service."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc


def _create(stub: serving_pb2_grpc.ServingServiceStub, **fields) -> pb.Deployment:
    return stub.CreateDeployment(pb.CreateDeploymentRequest(deployment=pb.Deployment(**fields)))


async def test_tritonclient_grpc_and_http_infer_with_prediction_id_and_version(make_settings, sv):
    make_data, run_server = sv.make_data, sv.run_server
    async with run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            d = await _create(stub, name="churn", model="churn")
            assert d.state == pb.DEPLOYMENT_STATE_READY
            assert [m.version for m in d.loaded_models] == ["1"]
            assert d.loaded_models[0].bento_model_tag == "churn:v1"

        X, _ = make_data(5, 3)
        from sklearn.linear_model import LogisticRegression

        expected = LogisticRegression(C=1.0).fit(*make_data(0)).predict(X)

        def grpc_client() -> tuple:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            assert c.is_server_live() and c.is_server_ready()
            assert c.is_model_ready("churn")
            meta = c.get_model_metadata("churn")
            inp = tgrpc.InferInput("input-0", list(X.shape), "FP64")
            inp.set_data_from_numpy(X)
            result = c.infer("churn", [inp])
            c.close()
            return meta, result

        meta, result = await asyncio.to_thread(grpc_client)
        assert meta.name == "churn" and meta.inputs[0].shape == [-1, 4]
        np.testing.assert_array_equal(result.as_numpy("output-0"), expected)
        resp = result.get_response()
        assert resp.model_version == "1"
        assert resp.parameters["model_version"].string_param == "1"
        assert len(resp.parameters["prediction_id"].string_param) == 32
        assert resp.parameters["fallback"].bool_param is False

        def http_client() -> tuple:
            c = thttp.InferenceServerClient(server.http_address)
            assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("churn")
            meta = c.get_model_metadata("churn")
            inp = thttp.InferInput("input-0", list(X.shape), "FP64")
            inp.set_data_from_numpy(X)  # binary tensor extension
            binary = c.infer("churn", [inp])
            inp_json = thttp.InferInput("input-0", list(X.shape), "FP64")
            inp_json.set_data_from_numpy(X, binary_data=False)
            out = thttp.InferRequestedOutput("output-0", binary_data=False)
            as_json = c.infer("churn", [inp_json], outputs=[out])
            c.close()
            return meta, binary, as_json

        meta, binary, as_json = await asyncio.to_thread(http_client)
        assert meta["name"] == "churn"
        np.testing.assert_array_equal(binary.as_numpy("output-0"), expected)
        np.testing.assert_array_equal(as_json.as_numpy("output-0"), expected)
        assert as_json.get_response()["parameters"]["model_version"] == "1"


async def test_bad_input_and_unknown_model_get_oip_errors(make_settings, sv):
    run_server = sv.run_server
    async with run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await _create(serving_pb2_grpc.ServingServiceStub(ch), name="churn", model="churn")

        def calls() -> list[tuple[str, str]]:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            errors = []
            cases = [
                ("nope", np.zeros((1, 4)), "FP64"),           # unknown model
                ("churn", np.zeros((2, 3)), "FP64"),          # wrong width
                ("churn", np.array([[b"a"] * 4], dtype=object), "BYTES"),  # wrong datatype
            ]
            for model, arr, dt in cases:
                inp = tgrpc.InferInput("input-0", list(arr.shape), dt)
                inp.set_data_from_numpy(arr)
                with pytest.raises(InferenceServerException) as info:
                    c.infer(model, [inp])
                errors.append((info.value.status(), info.value.message()))
            c.close()
            return errors

        errors = await asyncio.to_thread(calls)
        assert errors[0][0] == "StatusCode.NOT_FOUND" and "nope" in errors[0][1]
        assert errors[1][0] == "StatusCode.INVALID_ARGUMENT" and "[N, 4]" in errors[1][1]
        assert errors[2][0] == "StatusCode.INVALID_ARGUMENT" and "datatype" in errors[2][1]

        def http_calls() -> list[int]:
            import httpx

            base = f"http://{server.http_address}/v2/models"
            return [
                httpx.post(f"{base}/nope/infer", json={"inputs": []}).status_code,
                httpx.post(f"{base}/churn/infer", json={"inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3]}]}
                ).status_code,
                httpx.post(f"{base}/churn/infer", content=b"{not json").status_code,
            ]

        assert await asyncio.to_thread(http_calls) == [404, 400, 400]


async def test_a_version_of_the_same_name_from_another_registry_is_not_served_from_the_store(
        make_settings, sv, registry, tmp_path):
    """BentoML's model store, shared by two registries (or kept across a model deleted and
    registered again, when MLflow counts versions from 1 again), holds ``churn:v1`` of
    the first: the second's ``churn`` v1 must be imported and served, not the first's."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    X, _ = sv.make_data(5, 20)
    first = LogisticRegression(C=1.0).fit(*sv.make_data(0))
    train_x, train_y = sv.make_data(0)
    flipped = LogisticRegression(C=1.0).fit(train_x, 1 - train_y)
    assert (first.predict(X) != flipped.predict(X)).all()

    other_uri = f"sqlite:///{tmp_path / 'other-registry.db'}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        mlflow.set_tracking_uri(other_uri)
        mlflow.set_registry_uri(other_uri)
        client = MlflowClient(other_uri, other_uri)
        experiment = client.create_experiment(
            "other", artifact_location=(tmp_path / "other-artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            mlflow.sklearn.log_model(flipped, name="model", registered_model_name="churn",
                                     signature=infer_signature(train_x, flipped.predict(X[:1])),
                                     pip_requirements=["scikit-learn"])
        client.set_registered_model_alias("churn", "champion", "1")
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])

    def predict(address: str) -> np.ndarray:
        c = tgrpc.InferenceServerClient(address)
        inp = tgrpc.InferInput("input-0", list(X.shape), "FP64")
        inp.set_data_from_numpy(X)
        out = c.infer("churn", [inp]).as_numpy("output-0")
        c.close()
        return out

    for i, (source, expected) in enumerate(((registry.uri, first), (other_uri, flipped))):
        data_dir = tmp_path / f"serving-{i}"  # its own deployments; BentoML's store shared
        data_dir.mkdir()
        settings = make_settings(MODELPLANE_SERVING_MODEL_SOURCE=source,
                                 MODELPLANE_DATA_DIR=str(data_dir))
        async with sv.run_server(settings) as server:
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                d = await _create(serving_pb2_grpc.ServingServiceStub(ch), name="churn",
                                  model="churn")
                assert [(m.version, m.bento_model_tag) for m in d.loaded_models] == [
                    ("1", "churn:v1")]
            np.testing.assert_array_equal(await asyncio.to_thread(predict, server.grpc_address),
                                          expected.predict(X))
