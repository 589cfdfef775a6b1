"""Fallback on a raising, hanging or garbage-returning model; circuit breaker; shadow; ensembles."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np
import tritonclient.grpc as tgrpc
from google.protobuf import duration_pb2

from modelplane.serving.v1 import serving_pb2 as pb
from modelplane.serving.v1 import serving_pb2_grpc

X = np.random.default_rng(3).normal(size=(2, 4))


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def broken(version: str, **extra) -> pb.Deployment:
    """Primary = a broken model version; fallback: churn v1, then the constant baseline."""
    return pb.Deployment(
        name="risky", model="broken",
        traffic_split=pb.TrafficSplit(routes=[
            pb.Route(target=pb.ModelTarget(version=version), weight=1)]),
        fallback=pb.FallbackPolicy(
            chain=[pb.ModelTarget(model="churn", version="1"),
                   pb.ModelTarget(model="baseline", version="1")],
            timeout=_duration(0.3),
            circuit_breaker=pb.CircuitBreaker(error_rate_threshold=0.5, minimum_requests=4,
                                              window=_duration(30),
                                              open_duration=_duration(60))),
        **extra)


def _infer_many(address: str, n: int) -> list:
    c = tgrpc.InferenceServerClient(address)
    inp = tgrpc.InferInput("x", list(X.shape), "FP64")
    inp.set_data_from_numpy(X)
    out = []
    for _ in range(n):
        r = c.infer("risky", [inp])
        p = r.get_response().parameters
        out.append((r.get_response().model_version, p["fallback"].bool_param,
                    p["fallback_reason"].string_param if "fallback_reason" in p else "",
                    r.as_numpy("output-0").tolist()))
    c.close()
    return out


async def test_raising_model_falls_back_then_circuit_opens(make_settings, sv):
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=broken("1")))
        results = await asyncio.to_thread(_infer_many, server.grpc_address, 8)
        # Every request answered by churn v1; none failed.
        assert all(v == "1" and fb for v, fb, _, _ in results)
        reasons = [r for _, _, r, _ in results]
        assert reasons[:4] == ["MODEL_ERROR"] * 4
        assert reasons[4:] == ["CIRCUIT_OPEN"] * 4  # breaker opened after 4 errors of 4
        body = (await asyncio.to_thread(
            __import__("httpx").get, f"http://{server.http_address}/metrics")).text
        assert 'modelplane_serving_fallbacks_total{deployment="risky",reason="MODEL_ERROR",' \
               'version="1"} 4.0' in body
        assert 'reason="CIRCUIT_OPEN",version="1"} 4.0' in body
        assert 'modelplane_serving_model_errors_total{deployment="risky",reason="MODEL_ERROR",' \
               'version="1"} 4.0' in body


async def test_hanging_model_times_out_to_fallback_and_server_stays_up(make_settings, sv):
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=broken("2")))
        started = time.perf_counter()
        results = await asyncio.to_thread(_infer_many, server.grpc_address, 6)
        elapsed = time.perf_counter() - started
        assert [r[2] for r in results] == ["TIMEOUT"] * 4 + ["CIRCUIT_OPEN"] * 2
        assert all(v == "1" for v, *_ in results)
        assert elapsed < 4 * 0.3 + 2.0  # open circuit answers without waiting
        # The server still answers health and other models.
        c = tgrpc.InferenceServerClient(server.grpc_address)
        assert await asyncio.to_thread(c.is_server_live)


async def test_garbage_output_falls_back_through_the_chain_to_the_baseline(make_settings, sv):
    dep = broken("3")
    dep.fallback.chain[0].version = "3"  # the first fallback is garbage too
    dep.fallback.chain[0].model = "broken"
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                pb.CreateDeploymentRequest(deployment=dep))
        results = await asyncio.to_thread(_infer_many, server.grpc_address, 2)
        assert all(v == "1" and fb and out == [7, 7] for v, fb, _, out in results)


async def test_shadow_gets_a_mirror_logged_as_shadow_and_the_answer_is_the_primary(
        make_settings, sv):
    obs = sv.ObservabilityStandIn()
    await obs.start()
    settings = make_settings(MODELPLANE_SERVING_OBSERVABILITY_TARGET=obs.address)
    try:
        async with sv.run_server(settings) as server:
            async with grpc.aio.insecure_channel(server.grpc_address) as ch:
                await serving_pb2_grpc.ServingServiceStub(ch).CreateDeployment(
                    pb.CreateDeploymentRequest(deployment=pb.Deployment(
                        name="risky", model="churn",
                        shadows=[pb.ModelTarget(alias="challenger"),
                                 pb.ModelTarget(model="broken", version="1")])))
            results = await asyncio.to_thread(_infer_many, server.grpc_address, 5)
            assert all(v == "1" and not fb for v, fb, _, _ in results)
            # 5 predictions x 2 rows: production + shadow (the broken shadow logs nothing).
            await sv.wait_until(lambda: len(obs.records) == 20)
        from modelplane.observability.v1 import observability_pb2 as o

        by_env: dict[int, list] = {}
        for rec in obs.records.values():
            by_env.setdefault(rec.environment, []).append(rec)
        assert {r.version for r in by_env[o.ENVIRONMENT_PRODUCTION]} == {"1"}
        assert {r.version for r in by_env[o.ENVIRONMENT_SHADOW]} == {"2"}
        parents = {r.tags["parent_prediction_id"] for r in by_env[o.ENVIRONMENT_SHADOW]}
        prod_ids = {r.prediction_id.rsplit(".", 1)[0] for r in by_env[o.ENVIRONMENT_PRODUCTION]}
        assert parents == prod_ids
        one = by_env[o.ENVIRONMENT_PRODUCTION][0]
        assert set(one.features) == {"x_0", "x_1", "x_2", "x_3"}
        assert one.tags["deployment"] == "risky" and one.latency.ToNanoseconds() > 0
    finally:
        await obs.stop()


def _log_last_column_reader(registry) -> str:
    """A pyfunc model that answers its input's last column + 100: chained after another
    member, that column is the member's output (the data plane appends it)."""
    import mlflow
    import mlflow.pyfunc

    class LastColumnPlus100(mlflow.pyfunc.PythonModel):  # defined here: pickled by value
        def predict(self, context, model_input, params=None):
            return np.asarray(model_input, dtype=np.float64)[:, -1] + 100.0

    registry.use()  # its store and experiment: another module may have left its own
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="model", python_model=LastColumnPlus100(),
                                       registered_model_name="chain_reader",
                                       pip_requirements=["mlflow", "cloudpickle", "numpy"])
    return str(info.registered_model_version)


async def test_ensembles_average_vote_and_chain(make_settings, registry, sv):
    from sklearn.linear_model import LogisticRegression

    m1 = LogisticRegression(C=1.0).fit(*sv.make_data(0))
    m2 = LogisticRegression(C=0.01).fit(*sv.make_data(1))
    p1, p2 = m1.predict(X), m2.predict(X)

    def ens(name: str, method: int, members: list) -> pb.Deployment:
        return pb.Deployment(name=name, model="churn",
                             ensemble=pb.Ensemble(method=method, members=members))

    churn1, churn2 = pb.ModelTarget(version="1"), pb.ModelTarget(version="2")
    base = pb.ModelTarget(model="baseline", version="1")
    reader = pb.ModelTarget(model="chain_reader", version=_log_last_column_reader(registry))
    async with sv.run_server(make_settings()) as server:
        async with grpc.aio.insecure_channel(server.grpc_address) as ch:
            stub = serving_pb2_grpc.ServingServiceStub(ch)
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=ens("avg", pb.ENSEMBLE_METHOD_AVERAGE, [churn1, churn2, base])))
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=ens("vote", pb.ENSEMBLE_METHOD_VOTE, [base, churn1, churn1])))
            await stub.CreateDeployment(pb.CreateDeploymentRequest(
                deployment=ens("chain", pb.ENSEMBLE_METHOD_CHAIN, [churn1, reader])))

        def call(name: str) -> tuple:
            c = tgrpc.InferenceServerClient(server.grpc_address)
            inp = tgrpc.InferInput("x", list(X.shape), "FP64")
            inp.set_data_from_numpy(X)
            r = c.infer(name, [inp])
            c.close()
            return r.as_numpy("output-0"), r.get_response().model_version

        avg, avg_version = await asyncio.to_thread(call, "avg")
        np.testing.assert_allclose(avg, (p1 + p2 + 7) / 3)
        assert avg_version == "churn:1+churn:2+baseline:1"
        vote, _ = await asyncio.to_thread(call, "vote")
        np.testing.assert_array_equal(vote, p1)  # two of three members say p1
        chain, chain_version = await asyncio.to_thread(call, "chain")
        # the second member read the first one's output: unchained, it would read x[:, 3]
        np.testing.assert_array_equal(chain, p1 + 100.0)
        assert chain_version == f"churn:1+chain_reader:{reader.version}"
