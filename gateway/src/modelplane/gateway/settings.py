"""The gateway's settings, read from the environment in one place.

| variable | default | meaning |
|---|---|---|
| ``MODELPLANE_GATEWAY_ADDR`` | ``127.0.0.1:7100`` | HTTP listen address |
| ``MODELPLANE_<SERVICE>_TARGET`` | ``127.0.0.1:<port>`` | where each service's gRPC server is |
| ``MODELPLANE_SERVING_HTTP_TARGET`` | ``MODELPLANE_SERVING_HTTP_ADDR``, else ``127.0.0.1:7114`` | serving's OIP REST endpoint(s) (``/v2/...`` is forwarded there; ``a:p,b:p`` round robin over replicas); ``none`` = no OIP routes |
| ``MODELPLANE_GATEWAY_MAX_BODY_BYTES`` | ``16777216`` | larger request bodies get 413 |
| ``MODELPLANE_GATEWAY_TIMEOUT_SECONDS`` | ``60`` | deadline of unary calls (``grpc-timeout`` header overrides) |
| ``MODELPLANE_GATEWAY_JSON_NAMES`` | ``proto`` | response field names: ``proto`` (snake_case) or ``json`` (lowerCamel) |
| ``MODELPLANE_GATEWAY_AUTH`` | ``MODELPLANE_AUTH`` (``on``) | check API key and role at the gateway too |
| ``MODELPLANE_GATEWAY_ACCESS_LOG`` | ``off`` | one JSON log line per RPC request (route, status, duration, ids) |

plus the kit's shared ones (``MODELPLANE_AUTH``, ``MODELPLANE_API_KEYS_FILE``,
``MODELPLANE_MAX_MESSAGE_BYTES``, ``MODELPLANE_TLS_*``, ``OTEL_*``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from modelplane.kit.settings import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORTS, ServiceSettings

#: serving's OIP REST listener (serving's own default, ``MODELPLANE_SERVING_HTTP_ADDR``)
DEFAULT_OIP_TARGET = "127.0.0.1:7114"
DEFAULT_TIMEOUT_SECONDS = 60.0


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in {"0", "off", "false", "no"}


class SettingsError(ValueError):
    """An environment variable with a value the gateway cannot use."""


def _number(env: ServiceSettings, name: str, default: float, *, integer: bool) -> float:
    raw = env.env(name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise SettingsError(f"MODELPLANE_GATEWAY_{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"MODELPLANE_GATEWAY_{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class GatewaySettings:
    service: ServiceSettings
    """The kit's shared settings for the process named ``gateway``."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    json_names: str = "proto"
    auth_enabled: bool = True
    access_log: bool = False
    oip_target: str = DEFAULT_OIP_TARGET
    """host:port of serving's OIP REST endpoint; "" = not configured (``/v2`` answers 503)."""

    @property
    def listen(self) -> str:
        return self.service.listen

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return (host.strip("[]") or "127.0.0.1"), int(port)

    def target(self, backend: str) -> str | None:
        """gRPC address of a service, None when nothing says where it is."""
        environ = self.service.environ
        key = backend.upper()
        explicit = environ.get(f"MODELPLANE_{key}_TARGET") or environ.get(f"MODELPLANE_{key}_ADDR")
        if explicit:
            return explicit
        if backend in DEFAULT_PORTS and backend != "gateway":
            return self.service.target(backend)
        return None

    def with_overrides(self, **changes: object) -> GatewaySettings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = dict(os.environ if environ is None else environ)
        service = ServiceSettings.from_env("gateway", env)
        json_names = (service.env("JSON_NAMES") or "proto").strip().lower()
        if json_names not in ("proto", "json"):
            raise SettingsError(
                f"MODELPLANE_GATEWAY_JSON_NAMES must be 'proto' or 'json', got {json_names!r}")
        return cls(
            service=service,
            max_body_bytes=int(_number(service, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES,
                                       integer=True)),
            timeout_seconds=_number(service, "TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS,
                                    integer=False),
            json_names=json_names,
            auth_enabled=_flag(service.env("AUTH"), service.auth_enabled),
            access_log=_flag(service.env("ACCESS_LOG"), False),
            oip_target=_oip_target(env),
        )


def _oip_target(env: Mapping[str, str]) -> str:
    """``MODELPLANE_SERVING_HTTP_TARGET``, else serving's own listen address
    ``MODELPLANE_SERVING_HTTP_ADDR`` (a wildcard host read as this machine), else the
    default; ``none``/``off`` = no such endpoint."""
    explicit = (env.get("MODELPLANE_SERVING_HTTP_TARGET") or "").strip()
    if not explicit:
        raw = env.get("MODELPLANE_SERVING_HTTP_ADDR")
        listen = (raw or "").strip()
        if raw is not None and listen.lower() in ("", "none", "off"):
            return ""  # serving has no REST listener (set, but empty or off)
        if listen:
            host, _, port = listen.rpartition(":")
            if host in ("", "0.0.0.0", "[::]", "::"):
                host = "127.0.0.1"
            return f"{host}:{port}"
        return DEFAULT_OIP_TARGET
    if explicit.lower() in ("none", "off"):
        return ""
    return explicit
