"""Serving's rollouts and their events, for lineage (``ListRollouts``,
``ListRolloutEvents``, every page)."""

from __future__ import annotations

from datetime import UTC

import grpc

from modelplane.observability.adapters.peer_call import DEFAULT_TIMEOUT_S, call_peer
from modelplane.observability.lineage import PeerError, RolloutEventInfo, RolloutInfo
from modelplane.serving.v1 import serving_pb2 as spb
from modelplane.serving.v1 import serving_pb2_grpc as spb_grpc

#: pages read at most per listing (1000 items a page)
MAX_PAGES = 20


class ServingRollouts:
    """:class:`~modelplane.observability.lineage.Rollouts` over the serving service."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._stub = spb_grpc.ServingServiceStub(channel)
        self._timeout = timeout_s

    async def rollouts(self, deployment: str) -> list[RolloutInfo]:
        out: list[RolloutInfo] = []
        token = ""
        for _ in range(MAX_PAGES):
            resp = await call_peer(self._stub.ListRollouts, spb.ListRolloutsRequest(
                page_size=1000, page_token=token, deployment=deployment), "ListRollouts",
                self._timeout)
            out += [RolloutInfo(r.name, r.deployment, r.challenger.model, r.challenger_version,
                                r.champion_version,
                                r.create_time.ToDatetime(tzinfo=UTC)
                                if r.HasField("create_time") else None)
                    for r in resp.rollouts]
            token = resp.next_page_token
            if not token:
                return out
        raise PeerError(f"ListRollouts: more than {MAX_PAGES * 1000} rollouts")

    async def events(self, rollout: str) -> list[RolloutEventInfo]:
        out: list[RolloutEventInfo] = []
        token = ""
        for _ in range(MAX_PAGES):
            resp = await call_peer(self._stub.ListRolloutEvents, spb.ListRolloutEventsRequest(
                name=rollout, page_size=1000, page_token=token),
                f"ListRolloutEvents {rollout}", self._timeout)
            out += [RolloutEventInfo(e.sequence, e.time.ToDatetime(tzinfo=UTC),
                                     spb.RolloutState.Name(e.state), e.step, e.weight)
                    for e in resp.events]
            token = resp.next_page_token
            if not token:
                return out
        raise PeerError(f"ListRolloutEvents {rollout}: more than {MAX_PAGES * 1000} events")


__all__ = ["ServingRollouts"]
