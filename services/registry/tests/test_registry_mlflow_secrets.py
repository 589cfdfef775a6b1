"""The MLflow child keeps the database password off its command line and holds no
modelplane key: ``ps`` shows argv to every local user, and the child (and its
workers) run MLflow's code, not ours."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from modelplane.kit.pytest_plugin import descendants, free_port
from modelplane.kit.settings import ServiceSettings
from modelplane.registry.mlflow_server import MlflowServer
from modelplane.registry.settings import RegistrySettings

CANARY = "pw-canary-7f3a9"


def _with_password(url: str) -> str:
    # The test server trusts local connections, so any password is accepted: a canary.
    scheme, _, rest = url.partition("://")
    userinfo, _, host = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{CANARY}@{host}"


async def test_backend_password_and_keys_stay_off_the_mlflow_command_line(
        tmp_path: Path, make_postgres_database: Callable[[str], str]) -> None:
    backend = _with_password(make_postgres_database("mp_mlflow_secret"))
    environ = {**os.environ,
               "MODELPLANE_DATA_DIR": str(tmp_path),
               "MODELPLANE_API_KEY": "mp_some_service_key",
               "MODELPLANE_API_KEY_FILE": str(tmp_path / "registry.key"),
               "MODELPLANE_MLFLOW_ADDR": f"127.0.0.1:{free_port()}",
               "MODELPLANE_REGISTRY_MLFLOW_WORKERS": "1",
               "MODELPLANE_REGISTRY_MLFLOW_BACKEND_STORE_URI": backend}
    settings = RegistrySettings.from_service(ServiceSettings.from_env("registry", environ))
    server = MlflowServer(settings, environ)
    await server.start()
    try:
        assert server.pid is not None
        pids = [server.pid, *descendants(server.pid)]
        assert len(pids) >= 2  # mlflow's CLI and its uvicorn worker(s)
        for pid in pids:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert CANARY not in cmdline and "postgresql" not in cmdline, cmdline
        child_env = dict(
            item.split("=", 1) for item in
            Path(f"/proc/{server.pid}/environ").read_bytes().decode().split("\0") if "=" in item)
        assert "MODELPLANE_API_KEY" not in child_env
        assert "MODELPLANE_API_KEY_FILE" not in child_env
        assert child_env["MLFLOW_BACKEND_STORE_URI"] == backend  # how it gets there instead
    finally:
        await server.stop()
