"""Steps 6, 8-9: the serving deployment with online features and live traffic sent as
an application would (OIP REST through the gateway)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc

from modelplane.cli.demo.session import DEPLOYMENT, MODEL, Demo, DemoFailed, call, reraise


def route(alias: str, weight: float) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    return sv.Route(target=sv.ModelTarget(alias=alias), weight=weight, label=alias)


async def wait_ready(demo: Demo, progress: Any, task: Any, timeout: float = 300,
                     name: str = DEPLOYMENT) -> Any:
    from modelplane.serving.v1 import serving_pb2 as sv

    deadline = time.monotonic() + timeout
    while True:
        d = await call("GetDeployment", demo.stub("serving").GetDeployment(
            sv.GetDeploymentRequest(name=name)))
        if d.state == sv.DEPLOYMENT_STATE_READY:
            progress.update(task, completed=1, total=1)
            return d
        if d.state == sv.DEPLOYMENT_STATE_FAILED:
            raise DemoFailed(f"deployment {name} FAILED: {d.state_message}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"deployment {name} not READY after {timeout:.0f}s "
                             f"({sv.DeploymentState.Name(d.state)}: {d.state_message})")
        await asyncio.sleep(0.5)


async def deploy(demo: Demo) -> Any:
    from modelplane.kit import demo_data
    from modelplane.serving.v1 import serving_pb2 as sv

    serving = demo.stub("serving")
    try:
        await serving.DeleteDeployment(sv.DeleteDeploymentRequest(name=DEPLOYMENT))
        demo.console.print(f"(replaced the deployment {DEPLOYMENT} of an earlier run)")
    except grpc.aio.AioRpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            await call("DeleteDeployment", reraise(err))
    deployment = sv.Deployment(
        name=DEPLOYMENT, model=MODEL, description="fraud scoring with online customer features",
        traffic_split=sv.TrafficSplit(routes=[route("champion", 100)]),
        features=sv.FeatureBinding(feature_refs=list(demo_data.ONLINE_FEATURE_REFS),
                                   entity_keys=["customer_id"]))
    await call("CreateDeployment", serving.CreateDeployment(
        sv.CreateDeploymentRequest(deployment=deployment)))
    with demo.progress() as progress:
        task = progress.add_task(f"load {MODEL}@champion into BentoML", total=None)
        d = await wait_ready(demo, progress, task)
    loaded = ", ".join(f"{m.model} v{m.version} ({m.bento_model_tag})" for m in d.loaded_models)
    demo.console.print(f"deployment [bold]{DEPLOYMENT}[/] READY: {loaded}; online features "
                       f"{', '.join(d.features.feature_refs)} joined by customer_id")
    return d


@dataclass
class Prediction:
    index: int
    prediction_id: str
    version: str
    route: str
    prediction: int
    label: int
    city: str


def _infer_body(row: dict[str, Any]) -> dict[str, Any]:
    def tensor(name: str, datatype: str, value: Any) -> dict[str, Any]:
        return {"name": name, "datatype": datatype, "shape": [1], "data": [value]}

    return {"inputs": [
        tensor("customer_id", "INT64", int(row["customer_id"])),
        tensor("amount", "FP64", float(row["amount"])),
        tensor("merchant_category", "BYTES", str(row["merchant_category"])),
        tensor("hour", "INT64", int(row["hour"])),
        tensor("city", "BYTES", str(row["city"])),
    ]}


async def send_traffic(demo: Demo, rows: Any, labels: Any, indices: range, progress: Any,
                       task: Any) -> list[Prediction]:
    import httpx

    # as an application team would: through the gateway (OIP REST, forwarded to serving)
    url = f"{demo.platform.gateway_url}/v2/models/{DEPLOYMENT}/infer"
    headers = {"authorization": f"Bearer {demo.api_key}"}
    out: list[Prediction] = []
    sem = asyncio.Semaphore(demo.size.concurrency)
    failures: list[str] = []

    async with httpx.AsyncClient(timeout=30.0, headers=headers) as client:
        async def one(i: int) -> None:
            row = rows.iloc[i]
            async with sem:
                r = await client.post(url, json=_infer_body(row.to_dict()))
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
            else:
                body = r.json()
                params = body.get("parameters", {})
                pred = body["outputs"][0]["data"][0]
                out.append(Prediction(i, params["prediction_id"], str(params["model_version"]),
                                      params.get("route", ""), int(pred), int(labels[i]),
                                      str(row["city"])))
            progress.advance(task)

        await asyncio.gather(*(one(i) for i in indices))
    if failures:
        raise DemoFailed(f"{len(failures)} of {len(indices)} inference requests failed, "
                         f"e.g. {failures[0]}")
    return out
