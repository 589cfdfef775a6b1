"""Register a generated servicer so that chosen unary methods may answer with wire bytes.

The online lookup builds its response as protobuf wire bytes (``wire.py``).
Through the generated handlers those bytes would have to be parsed into a
message only for grpc to serialize that message again: for a 100 x 50 lookup
that round trip costs about as much as the lookup itself. Here the named
methods' response serializer passes ``bytes`` through untouched (and still
serializes a message, so a method may return either).

Only the response serializer changes: the request deserializer, the servicer
method and every interceptor (auth, error mapping, tracing) stay as generated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc


def _as_is(response: Any) -> bytes:
    if type(response) is bytes:
        return response
    data: bytes = response.SerializeToString()
    return data


def _bytes_out(handler: Any) -> Any:
    if handler is None or not handler.unary_unary:
        return handler
    return grpc.unary_unary_rpc_method_handler(
        handler.unary_unary, request_deserializer=handler.request_deserializer,
        response_serializer=_as_is)


# grpc ships no type stubs: GenericRpcHandler is Any to mypy.
class _Generic(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, inner: Any, methods: frozenset[str]) -> None:
        self._inner = inner
        self._methods = methods

    def service(self, handler_call_details: Any) -> Any:
        handler = self._inner.service(handler_call_details)
        if handler_call_details.method in self._methods:
            return _bytes_out(handler)
        return handler


class _Registrar:
    """Stands in for the server while a generated ``add_X_to_server`` registers itself."""

    def __init__(self, server: Any, service: str, methods: Iterable[str]) -> None:
        self._server = server
        self._service = service
        self._names = frozenset(methods)
        self._full = frozenset(f"/{service}/{m}" for m in self._names)

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_Generic(h, self._full) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        if service == self._service:
            handlers = {name: _bytes_out(h) if name in self._names else h
                        for name, h in handlers.items()}
        self._server.add_registered_method_handlers(service, handlers)


def with_wire_responses(add_to_server: Callable[[Any, Any], None], service: str,
                        methods: Iterable[str]) -> Callable[[Any, Any], None]:
    """``add_to_server`` (a generated ``add_XServicer_to_server``) whose ``methods`` of
    ``service`` (unary ones) may return serialized response bytes."""
    names = tuple(methods)

    def add(servicer: Any, server: Any) -> None:
        add_to_server(servicer, _Registrar(server, service, names))

    return add
