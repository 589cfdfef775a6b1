"""RaiseAlert (issue #17): an alert raised by another service, not a monitor, on both
stores (embedded and PostgreSQL).

Raised once per (source, idempotency key) however often the raiser retries; listed
and streamed like a monitor's alert, with its source and version; two raised alerts
of one model are two alerts (the per-monitor constraints do not merge them); a bad
request names every bad field.
"""

from __future__ import annotations

import asyncio
import uuid

from obs_test_data import Service

from modelplane.kit.pytest_plugin import rpc_error
from modelplane.observability.v1 import observability_pb2 as pb


def _request(model: str, key: str, message: str = "rolled back: worse in oslo"
             ) -> pb.RaiseAlertRequest:
    return pb.RaiseAlertRequest(source="rollout/fraud-v2", model=model, version="2",
                                message=message, idempotency_key=key)


async def test_a_retried_raise_stores_one_alert_and_streams_it_once(service: Service) -> None:
    model = f"raised-{uuid.uuid4().hex[:6]}"
    watch = service.stub.WatchAlerts(pb.WatchAlertsRequest(model=model))
    await asyncio.sleep(0.3)  # the watch is registered
    first = await service.stub.RaiseAlert(_request(model, f"{model}@7"))
    again = await service.stub.RaiseAlert(_request(model, f"{model}@7", "a retry, other words"))
    assert again == first
    assert first.state == pb.ALERT_STATE_FIRING and first.monitor_id == ""
    assert (first.source, first.model, first.version) == ("rollout/fraud-v2", model, "2")
    assert first.message == "rolled back: worse in oslo"
    streamed = await asyncio.wait_for(watch.read(), 10)
    assert streamed.id == first.id and streamed.source == "rollout/fraud-v2"
    listed = (await service.stub.ListAlerts(pb.ListAlertsRequest(model=model))).alerts
    assert [a.id for a in listed] == [first.id]
    firing = (await service.stub.ListAlerts(pb.ListAlertsRequest(
        model=model, state=pb.ALERT_STATE_FIRING))).alerts
    assert [a.id for a in firing] == [first.id]
    # nothing more on the stream: the retry raised nothing
    try:
        extra = await asyncio.wait_for(watch.read(), 1.0)
        raise AssertionError(f"a second alert was streamed: {extra}")
    except TimeoutError:
        pass
    watch.cancel()


async def test_two_raised_alerts_of_one_model_are_both_firing(service: Service) -> None:
    model = f"raised-{uuid.uuid4().hex[:6]}"
    a = await service.stub.RaiseAlert(_request(model, f"{model}@7"))
    b = await service.stub.RaiseAlert(_request(model, f"{model}@9"))
    assert a.id != b.id
    firing = (await service.stub.ListAlerts(pb.ListAlertsRequest(
        model=model, state=pb.ALERT_STATE_FIRING))).alerts
    assert {x.id for x in firing} == {a.id, b.id}


async def test_a_bad_raise_is_refused_naming_every_field(service: Service) -> None:
    err = await rpc_error(service.stub.RaiseAlert(pb.RaiseAlertRequest(
        source="Rollout X", model="", message=" ", idempotency_key="k" * 300)))
    assert err.reason == "INVALID_ALERT"
    assert {v.field for v in err.field_violations} == {
        "source", "model", "message", "idempotency_key"}
