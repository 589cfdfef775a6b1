"""gRPC channels to the services, and one generic callable per RPC.

Calls are made with ``channel.unary_unary(path, serializer, deserializer)``
(and the streaming forms) on the message classes of the descriptor pool: no
generated stub is needed, so any contract the catalog found can be called.

A service's target may name several replicas: ``ipv4:10.0.0.1:7104,10.0.0.2:7104``
(what ``modelplane up --replicas`` sets) or ``dns:///serving.ns.svc:7104`` on a
headless Kubernetes Service (one A record per ready pod). The channel balances
calls over all of them (``round_robin``) instead of pinning every call to the
first address that answered; with a single address it behaves as before.

The channels carry no API key of the gateway's own (the caller's
``authorization`` is forwarded instead) and no client interceptors: trace
context is injected into each call's metadata directly, which keeps the
per-call overhead low.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from modelplane.gateway.catalog import RpcMethod
from modelplane.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class NoTarget(LookupError):
    """No address is configured for a service."""


class Backends:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[int, Any] = {}

    def target(self, backend: str) -> str:
        target = self._settings.target(backend)
        if target is None:
            raise NoTarget(backend)
        return target

    def channel(self, backend: str) -> grpc.aio.Channel:
        found = self._channels.get(backend)
        if found is None:
            found = self._open(self.target(backend))
            self._channels[backend] = found
        return found

    def _open(self, target: str) -> grpc.aio.Channel:
        shared = self._settings.service
        limit = shared.max_message_bytes
        options = [("grpc.max_receive_message_length", limit),
                   ("grpc.max_send_message_length", limit),
                   ("grpc.enable_retries", 1),
                   ("grpc.keepalive_time_ms", 30_000),
                   ("grpc.lb_policy_name", "round_robin")]
        if shared.tls_ca:
            creds = grpc.ssl_channel_credentials(
                root_certificates=shared.tls_ca.read_bytes(),
                private_key=shared.tls_key.read_bytes() if shared.tls_key else None,
                certificate_chain=shared.tls_cert.read_bytes() if shared.tls_cert else None)
            return grpc.aio.secure_channel(target, creds, options=options)
        return grpc.aio.insecure_channel(target, options=options)

    def callable_for(self, method: RpcMethod) -> Any:
        """The cached multi-callable of ``method`` on its service's channel."""
        key = id(method)
        found = self._callables.get(key)
        if found is not None:
            return found
        channel = self.channel(method.backend)
        serializer = method.request_class.SerializeToString
        deserializer = method.response_class.FromString
        if method.client_streaming and method.server_streaming:
            factory = channel.stream_stream
        elif method.client_streaming:
            factory = channel.stream_unary
        elif method.server_streaming:
            factory = channel.unary_stream
        else:
            factory = channel.unary_unary
        found = factory(method.path, request_serializer=serializer,
                        response_deserializer=deserializer)
        self._callables[key] = found
        return found

    async def close(self) -> None:
        channels, self._channels, self._callables = self._channels, {}, {}
        for channel in channels.values():
            await channel.close()
