"""Channels to peer services: the API key and W3C trace context ride along."""

from __future__ import annotations

from typing import Any

import grpc

from modelplane.kit.settings import ServiceSettings


class _Metadata:
    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._pairs = pairs

    def _details(self, details: Any) -> Any:
        if not self._pairs:
            return details
        metadata = tuple(details.metadata or ()) + self._pairs
        return details._replace(metadata=metadata)


class _UnaryUnary(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_Metadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_Metadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, it: Any) -> Any:
        return await continuation(self._details(details), it)


class _StreamStream(_Metadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, it: Any) -> Any:
        return await continuation(self._details(details), it)


def channel(target: str, settings: ServiceSettings | None = None, *,
            api_key: str | None = None, tracing: bool = True) -> grpc.aio.Channel:
    """An aio channel to ``target`` sending ``authorization: Bearer <key>`` on every call.

    The key is ``api_key`` or ``settings.api_key``; TLS is used when
    ``settings.tls_ca`` is set (with the service's own cert as client cert: mTLS).
    """
    key = api_key or (settings.api_key if settings else None)
    pairs = (("authorization", f"Bearer {key}"),) if key else ()
    interceptors: list[Any] = [cls(pairs) for cls in
                               (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
    if tracing:
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors = list(aio_client_interceptors()) + interceptors
    limit = settings.max_message_bytes if settings else 64 * 1024 * 1024
    options = [("grpc.max_receive_message_length", limit),
               ("grpc.max_send_message_length", limit)]
    if settings and settings.tls_ca:
        creds = grpc.ssl_channel_credentials(
            root_certificates=settings.tls_ca.read_bytes(),
            private_key=settings.tls_key.read_bytes() if settings.tls_key else None,
            certificate_chain=settings.tls_cert.read_bytes() if settings.tls_cert else None)
        return grpc.aio.secure_channel(target, creds, options=options, interceptors=interceptors)
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
