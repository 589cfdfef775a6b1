"""Channels to peer services: the API key and W3C trace context ride along.

Every channel carries the same keepalive and reconnect settings
(:data:`KEEPALIVE_OPTIONS`, documented in the kit README): a peer that vanished
without closing its connections is noticed within ~30 s on a busy or watching
channel, and a peer that comes back is reconnected to within ~10 s, not gRPC's
default of up to 120 s. A ``dns:///`` target (a headless Kubernetes Service:
one address per pod) is balanced ``round_robin`` over every address it resolves
to, so one long-lived channel spreads its calls over all replicas.
"""

from __future__ import annotations

from typing import Any

import grpc

from modelplane.kit.settings import ServiceSettings

#: keepalive and reconnect backoff of every channel (see the kit README for why)
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    # ping every 20 s while calls are in flight (watch streams included) ...
    ("grpc.keepalive_time_ms", 20_000),
    # ... and drop the connection when a ping is not answered within 10 s
    ("grpc.keepalive_timeout_ms", 10_000),
    # a watch stream may be idle for hours: keep pinging without data frames
    ("grpc.http2.max_pings_without_data", 0),
    # no pings on an idle channel (nothing to protect; servers would count strikes)
    ("grpc.keepalive_permit_without_calls", 0),
    # reconnect after 0.5 s, doubling (gRPC adds ±20 % jitter) to at most 10 s
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 10_000),
)
#: servers accept client pings this often without data (must not exceed the client's
#: keepalive_time, or gRPC answers GOAWAY "too_many_pings")
SERVER_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
)
ROUND_ROBIN = "round_robin"


def lb_policy_for(target: str, lb_policy: str | None = None) -> str | None:
    """The load-balancing policy of a channel to ``target``: ``lb_policy`` when given
    ("" = gRPC's default, pick_first), else ``round_robin`` for ``dns:`` targets (every
    address a headless Service resolves to) and gRPC's default otherwise."""
    if lb_policy is not None:
        return lb_policy or None
    return ROUND_ROBIN if target.startswith("dns:") else None


class _Metadata:
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._pairs = pairs

    def _details(self, details: Any) -> Any:
        if not self._pairs:
            return details
        metadata = tuple(details.metadata or ()) + self._pairs
        return details._replace(metadata=metadata)


# grpc ships no type stubs, so its interceptor bases are Any to mypy (subclassing Any).
class _UnaryUnary(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Metadata, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Metadata, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, it: Any) -> Any:
        return await continuation(self._details(details), it)


class _StreamStream(_Metadata, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, it: Any) -> Any:
        return await continuation(self._details(details), it)


def channel(target: str, settings: ServiceSettings | None = None, *,
            api_key: str | None = None, tracing: bool = True,
            lb_policy: str | None = None) -> grpc.aio.Channel:
    """An aio channel to ``target`` sending ``authorization: Bearer <key>`` on every call.

    The key is ``api_key`` or ``settings.api_key``; TLS is used when
    ``settings.tls_ca`` is set (with the service's own cert as client cert: mTLS).
    Keepalive and reconnect backoff are :data:`KEEPALIVE_OPTIONS`; the balancing
    policy is :func:`lb_policy_for` (``round_robin`` for ``dns:///host:port``).
    """
    key = api_key or (settings.api_key if settings else None)
    pairs = (("authorization", f"Bearer {key}"),) if key else ()
    interceptors: list[Any] = [cls(pairs) for cls in
                               (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
    if tracing:
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors = list(aio_client_interceptors()) + interceptors
    limit = settings.max_message_bytes if settings else 64 * 1024 * 1024
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", limit),
                                      *KEEPALIVE_OPTIONS]
    policy = lb_policy_for(target, lb_policy)
    if policy:
        options.append(("grpc.lb_policy_name", policy))
    if settings and settings.tls_ca:
        creds = grpc.ssl_channel_credentials(
            root_certificates=settings.tls_ca.read_bytes(),
            private_key=settings.tls_key.read_bytes() if settings.tls_key else None,
            certificate_chain=settings.tls_cert.read_bytes() if settings.tls_cert else None)
        return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
