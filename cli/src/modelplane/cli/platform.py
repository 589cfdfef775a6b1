"""The local platform: every service and the gateway as supervised processes.

State lives in the data directory: ``platform.json`` (layout, the supervisor's
pid and, per process, its pid, state, restarts and last exit code: written by
the supervisor, see ``supervisor.py``), ``api_keys.json`` (key hashes, 0600),
``admin.key`` (the admin key, 0600; no service reads it), ``keys/<service>.key``
(each service's own identity, see ``keys.py``), ``logs/<instance>.log``.

A service may run as several replicas (``--replicas serving=2``). Replica ``r``
(0-based) of a service listens on the first replica's ports plus
``REPLICA_PORT_STRIDE * r``; the first replica keeps the plain name
(``serving``), the others are ``serving-2``, ``serving-3``... Peers and the
gateway reach the replicas of a service through one gRPC target listing them
all (``ipv4:host:a,host:b``), balanced round robin.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from modelplane.cli.keys import service_environment, service_key_file
from modelplane.kit.auth import Role, add_key
from modelplane.kit.settings import DEFAULT_PORTS, SERVICES

STATE_FILE = "platform.json"
#: offsets from the base port of the HTTP listeners some services run beside gRPC
EXTRA_PORTS = {"mlflow": 10, "serving_http": 14, "observability_http": 15}
DEFAULT_BASE_PORT = DEFAULT_PORTS["gateway"]
#: offsets of each service's Prometheus /metrics listener (the kit's per-RPC series)
METRICS_PORTS = {service: 16 + i for i, service in enumerate(SERVICES)}
#: replica ``r`` of a service uses its first replica's ports plus this times ``r``
REPLICA_PORT_STRIDE = 25
#: services whose replicas keep their own data root (spools, model caches: files a
#: process owns); the others share the platform's (the registry's artifact store must
#: be one)
PRIVATE_DATA_ROOT = ("serving", "observability")


@dataclass
class Platform:
    data_dir: Path
    host: str = "127.0.0.1"
    base_port: int = DEFAULT_BASE_PORT
    pids: dict[str, int] = field(default_factory=dict)
    #: processes per service (absent = 1)
    replicas: dict[str, int] = field(default_factory=dict)
    #: the services' stores are PostgreSQL databases (not embedded files)
    postgres: bool = False
    supervisor_pid: int | None = None
    #: per process: pid, state, restarts, last_exit_code, message (the supervisor's view)
    instances: dict[str, dict[str, object]] = field(default_factory=dict)

    # addresses -----------------------------------------------------------------
    def port(self, name: str, replica: int = 0) -> int:
        stride = REPLICA_PORT_STRIDE * replica
        if name in EXTRA_PORTS:
            return self.base_port + EXTRA_PORTS[name] + stride
        return self.base_port + (DEFAULT_PORTS[name] - DEFAULT_PORTS["gateway"]) + stride

    def metrics_address(self, service: str, replica: int = 0) -> str:
        port = self.base_port + METRICS_PORTS[service] + REPLICA_PORT_STRIDE * replica
        return f"{self.host}:{port}"

    def grpc_address(self, service: str, replica: int = 0) -> str:
        return f"{self.host}:{self.port(service, replica)}"

    def replica_count(self, component: str) -> int:
        return self.replicas.get(component, 1)

    def grpc_target(self, service: str) -> str:
        """How peers reach ``service``: its address, or every replica's for round robin."""
        n = self.replica_count(service)
        if n == 1:
            return self.grpc_address(service)
        return "ipv4:" + ",".join(self.grpc_address(service, r) for r in range(n))

    def instance_names(self) -> list[tuple[str, str, int]]:
        """``(instance, component, replica)`` for every process, gateway last."""
        out = []
        for component in COMPONENTS:
            for r in range(self.replica_count(component)):
                out.append((instance_name(component, r), component, r))
        return out

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.port('gateway')}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://{self.host}:{self.port('mlflow')}"

    @property
    def serving_http_url(self) -> str:
        return f"http://{self.host}:{self.port('serving_http')}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.port('observability_http')}/"

    # keys ----------------------------------------------------------------------
    @property
    def keys_file(self) -> Path:
        return self.data_dir / "api_keys.json"

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"

    def ensure_keys(self) -> tuple[str, bool]:
        """The admin key, created on first start (returns ``(key, created)``)."""
        if self.admin_key_file.exists() and self.keys_file.exists():
            return self.admin_key_file.read_text().strip(), False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = add_key(self.keys_file, "admin", Role.ADMIN)
        fd = os.open(self.admin_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key, True

    # environment ----------------------------------------------------------------
    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env.update({
            "MODELPLANE_DATA_DIR": str(self.data_dir),
            "MODELPLANE_API_KEYS_FILE": str(self.keys_file),
            "MODELPLANE_GATEWAY_ADDR": self.grpc_address("gateway"),
            "MODELPLANE_MLFLOW_ADDR": f"{self.host}:{self.port('mlflow')}",
            "MODELPLANE_SERVING_HTTP_ADDR": f"{self.host}:{self.port('serving_http')}",
            # the gateway forwards OIP REST (/v2/...) to serving's listener above
            "MODELPLANE_SERVING_HTTP_TARGET": f"{self.host}:{self.port('serving_http')}",
            "MODELPLANE_OBSERVABILITY_HTTP_ADDR": f"{self.host}:{self.port('observability_http')}",
            "PYTHONUNBUFFERED": "1",
        })
        for service in SERVICES:
            env[f"MODELPLANE_{service.upper()}_ADDR"] = self.grpc_address(service)
        # One person's laptop platform: one MLflow worker starts in half the CPU of two.
        env.setdefault("MODELPLANE_REGISTRY_MLFLOW_WORKERS", "1")
        # Rollouts look at their numbers every second (default 5 s): a local platform's
        # traffic is small and the demo waits for each decision.
        env.setdefault("MODELPLANE_SERVING_ROLLOUT_TICK_SECONDS", "1")
        return env

    def instance_environment(self, base: Mapping[str, str], component: str, replica: int
                             ) -> dict[str, str]:
        """``base`` (see ``environment``) with the listen addresses of one replica and
        the component's own identity key file (no other key: see ``keys.py``)."""
        env = service_environment(base, service_key_file(self.data_dir, component))
        for service in SERVICES:
            if self.replica_count(service) > 1:
                env[f"MODELPLANE_{service.upper()}_TARGET"] = self.grpc_target(service)
        if self.replica_count("serving") > 1:
            # the gateway forwards OIP REST round robin over every serving replica
            env["MODELPLANE_SERVING_HTTP_TARGET"] = ",".join(
                f"{self.host}:{self.port('serving_http', r)}"
                for r in range(self.replica_count("serving")))
        if component in METRICS_PORTS:
            env["MODELPLANE_METRICS_ADDR"] = self.metrics_address(component, replica)
        if replica == 0:
            return env
        env[f"MODELPLANE_{component.upper()}_ADDR"] = self.grpc_address(component, replica)
        if component == "serving":
            http_port = self.port("serving_http", replica)
            env["MODELPLANE_SERVING_HTTP_ADDR"] = f"{self.host}:{http_port}"
        elif component == "observability":
            env["MODELPLANE_OBSERVABILITY_HTTP_ADDR"] = \
                f"{self.host}:{self.port('observability_http', replica)}"
        elif component == "registry":
            env["MODELPLANE_MLFLOW_ADDR"] = f"{self.host}:{self.port('mlflow', replica)}"
        if component in PRIVATE_DATA_ROOT:
            root = self.data_dir / "replicas" / instance_name(component, replica)
            root.mkdir(parents=True, exist_ok=True)
            env["MODELPLANE_DATA_DIR"] = str(root)
        return env

    # state -----------------------------------------------------------------------
    def save(self) -> None:
        """Write ``platform.json`` atomically (readers never see half a file)."""
        state = asdict(self)
        state["data_dir"] = str(self.data_dir)
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, data_dir: Path) -> Platform | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return cls(data_dir=Path(state["data_dir"]), host=state["host"],
                   base_port=state["base_port"], pids=state.get("pids", {}),
                   replicas=state.get("replicas", {}), postgres=state.get("postgres", False),
                   supervisor_pid=state.get("supervisor_pid"),
                   instances=state.get("instances", {}))


COMPONENTS = (*SERVICES, "gateway")


def instance_name(component: str, replica: int) -> str:
    return component if replica == 0 else f"{component}-{replica + 1}"


def parse_replicas(spec: str) -> dict[str, int]:
    """``serving=2,observability=2`` -> ``{"serving": 2, "observability": 2}``."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or name not in SERVICES:
            raise ValueError(f"--replicas wants SERVICE=N with SERVICE one of "
                             f"{', '.join(SERVICES)} (the gateway runs once); got {part!r}")
        try:
            n = int(count)
        except ValueError:
            raise ValueError(f"--replicas: {count!r} is not a number of processes") from None
        if not 1 <= n <= 8:
            raise ValueError(f"--replicas: {name}={n}: between 1 and 8 processes")
        out[name] = n
    return out


def service_database_urls(dsn: str) -> dict[str, str]:
    """One database per service on the PostgreSQL server of ``dsn``, created if missing.

    ``postgresql://user@host:5432/mp`` gives ``mp_featurestore``, ``mp_registry``...
    (``modelplane_<service>`` when the URL names no database).
    """
    import psycopg
    from psycopg import sql

    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("--postgres wants a URL: postgresql://user[:password]@host[:port][/db]")
    prefix = parts.path.lstrip("/") or "modelplane"
    urls: dict[str, str] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for service in SERVICES:
            name = f"{prefix}_{service}"
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (name,)).fetchone()
            if found is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            urls[service] = urlunsplit(parts._replace(path="/" + name))
    return urls


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
