"""The local platform: every service and the gateway as child processes.

State lives in the data directory: ``platform.json`` (addresses and pids),
``api_keys.json`` (key hashes, 0600), ``admin.key`` (the admin key, 0600),
``logs/<service>.log``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelplane.kit.auth import Role, add_key
from modelplane.kit.settings import DEFAULT_PORTS, SERVICES

STATE_FILE = "platform.json"
#: offsets from the base port of the HTTP listeners some services run beside gRPC
EXTRA_PORTS = {"mlflow": 10, "serving_http": 14, "observability_http": 15}
DEFAULT_BASE_PORT = DEFAULT_PORTS["gateway"]


@dataclass
class Platform:
    data_dir: Path
    host: str = "127.0.0.1"
    base_port: int = DEFAULT_BASE_PORT
    pids: dict[str, int] = field(default_factory=dict)

    # addresses -----------------------------------------------------------------
    def port(self, name: str) -> int:
        if name in EXTRA_PORTS:
            return self.base_port + EXTRA_PORTS[name]
        return self.base_port + (DEFAULT_PORTS[name] - DEFAULT_PORTS["gateway"])

    def grpc_address(self, service: str) -> str:
        return f"{self.host}:{self.port(service)}"

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

    def service_key(self) -> str:
        """The key services use to call each other (kept 0600 beside the admin key)."""
        path = self.data_dir / "services.key"
        if path.exists():
            return path.read_text().strip()
        key = add_key(self.keys_file, "platform-services", Role.ADMIN)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key

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
        return env

    # state -----------------------------------------------------------------------
    def save(self) -> None:
        state = asdict(self)
        state["data_dir"] = str(self.data_dir)
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, data_dir: Path) -> Platform | None:
        path = data_dir / STATE_FILE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        return cls(data_dir=Path(state["data_dir"]), host=state["host"],
                   base_port=state["base_port"], pids=state.get("pids", {}))


COMPONENTS = (*SERVICES, "gateway")


def start_process(platform: Platform, name: str, env: dict[str, str], detach: bool
                  ) -> subprocess.Popen[bytes]:
    logs = platform.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", f"modelplane.{name}.main"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=detach,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pids(pids: Mapping[str, int], timeout: float = 20.0) -> None:
    """SIGTERM every process (graceful stop), SIGKILL what is left after ``timeout``."""
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids.values():
        while alive(pid) and time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
