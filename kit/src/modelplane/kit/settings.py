"""Settings shared by every service, read from the environment in one place.

A service's own settings (database URL, ports of extra HTTP listeners, ...)
live in the service; it reads them with :meth:`ServiceSettings.env`, which
looks up ``MODELPLANE_<SERVICE>_<NAME>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from modelplane.kit.arrow_ipc import ArrowLimits

#: Default gRPC ports; the gateway's HTTP port is 7100.
DEFAULT_PORTS: dict[str, int] = {
    "gateway": 7100,
    "featurestore": 7101,
    "registry": 7102,
    "validator": 7103,
    "serving": 7104,
    "observability": 7105,
}
SERVICES = ("featurestore", "registry", "validator", "serving", "observability")
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: HTTP request bodies: the gateway's limit and serving's own OIP REST port's, one default
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "off", "false", "no"}


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    listen: str
    data_root: Path
    auth_enabled: bool = True
    api_keys_file: Path | None = None
    api_key: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    grace_seconds: float = 10.0
    #: decompressed bytes and rows of one Arrow IPC payload (``modelplane.kit.arrow_ipc``)
    arrow_limits: ArrowLimits = field(default_factory=ArrowLimits)
    #: ``host:port`` of the Prometheus ``/metrics`` listener (per-RPC series); "" = none
    metrics_addr: str = ""
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def data_dir(self) -> Path:
        """This service's own directory under the data root (created on demand)."""
        path = self.data_root / self.service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, name: str, default: str | None = None) -> str | None:
        """``MODELPLANE_<SERVICE>_<NAME>`` from the environment, else ``default``."""
        value = self.environ.get(f"MODELPLANE_{self.service.upper()}_{name.upper()}")
        return value if value not in (None, "") else default

    def target(self, service: str) -> str:
        """Where to reach another service: ``MODELPLANE_<SVC>_TARGET``, else its listen address."""
        key = service.upper()
        return (self.environ.get(f"MODELPLANE_{key}_TARGET")
                or self.environ.get(f"MODELPLANE_{key}_ADDR")
                or f"127.0.0.1:{DEFAULT_PORTS[service]}")

    def with_listen(self, listen: str) -> ServiceSettings:
        return replace(self, listen=listen)

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> ServiceSettings:
        env = dict(os.environ if environ is None else environ)
        root = Path(env.get("MODELPLANE_DATA_DIR") or ".modelplane").expanduser().resolve()
        listen = env.get(f"MODELPLANE_{service.upper()}_ADDR") or \
            f"127.0.0.1:{DEFAULT_PORTS.get(service, 0)}"
        keys_file = env.get("MODELPLANE_API_KEYS_FILE")
        # This process's own identity: a service gets only its own key, from the
        # environment or a 0600 file named by MODELPLANE_API_KEY_FILE (never argv); no
        # service reads the admin key.
        api_key = env.get("MODELPLANE_API_KEY") or None
        key_file = env.get("MODELPLANE_API_KEY_FILE")
        if not api_key and key_file:
            api_key = Path(key_file).expanduser().read_text().strip() or None
        return cls(
            service=service,
            listen=listen,
            data_root=root,
            auth_enabled=_flag(env.get("MODELPLANE_AUTH"), True),
            api_keys_file=Path(keys_file) if keys_file else root / "api_keys.json",
            api_key=api_key,
            max_message_bytes=int(env.get("MODELPLANE_MAX_MESSAGE_BYTES")
                                  or DEFAULT_MAX_MESSAGE_BYTES),
            tls_cert=Path(env["MODELPLANE_TLS_CERT"]) if env.get("MODELPLANE_TLS_CERT") else None,
            tls_key=Path(env["MODELPLANE_TLS_KEY"]) if env.get("MODELPLANE_TLS_KEY") else None,
            tls_ca=Path(env["MODELPLANE_TLS_CA"]) if env.get("MODELPLANE_TLS_CA") else None,
            grace_seconds=float(env.get("MODELPLANE_GRACE_SECONDS") or 10.0),
            arrow_limits=ArrowLimits.from_environ(env),
            metrics_addr=env.get("MODELPLANE_METRICS_ADDR") or "",
            environ=env,
        )
