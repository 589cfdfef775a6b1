"""Supervising the real ``mlflow server`` (REST API + UI) as a child process.

Started with ``--app-name modelplane``, so MLflow loads our app plugin
(``mlflow_app.py``: API keys, promotion gate, audit of REST changes) in its
workers. The child gets its own process group (so stopping it also stops its
uvicorn workers) but stays in the registry's session, so whoever supervises the
registry finds it (and the workers) by session id and kills them when the
registry dies, even by SIGKILL (``modelplane up`` does; see
``cli/supervisor.py``). It also gets a parent-death signal (Linux), which stops
the ``mlflow server`` process itself with a killed registry, though not the
uvicorn workers it spawned: those only the session sweep catches.

Secrets stay off its command line (``ps`` and ``/proc/<pid>/cmdline`` show argv
to every local user): the backend store URI, which carries the database
password, travels as ``MLFLOW_BACKEND_STORE_URI`` in the child's environment.
The child holds no modelplane API key: it only checks callers' keys against
the keys file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from modelplane.kit.errors import Unavailable
from modelplane.registry.settings import RegistrySettings

log = logging.getLogger("modelplane.registry.mlflow_server")

_PR_SET_PDEATHSIG = 1


#: The child asks for SIGTERM when the registry dies (Linux) itself, after exec, then runs
#: ``python -m mlflow``. Done before exec (a ``preexec_fn``), it ran Python in the forked
#: child of a process with live gRPC threads, and gRPC's fork handlers sometimes aborted
#: the child there ("epoll_wait error: Bad file descriptor", exit -6).
_LAUNCH = (
    "import ctypes, runpy, signal\n"
    "try:\n"
    f"    ctypes.CDLL('libc.so.6', use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGTERM)\n"
    "except Exception:\n"
    "    pass\n"
    "runpy.run_module('mlflow', run_name='__main__', alter_sys=True)\n")


class MlflowServer:
    def __init__(self, settings: RegistrySettings, environ: Mapping[str, str] | None = None):
        self.settings = settings
        self._environ = dict(os.environ if environ is None else environ)
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = settings.data_dir / "mlflow-server.log"

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.settings.mlflow_addr.rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def local_uri(self) -> str:
        host, port = self.host_port
        if host in ("0.0.0.0", "::", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{port}"

    def command(self) -> list[str]:
        s = self.settings
        host, port = self.host_port
        dest = s.artifacts_destination
        if "://" not in dest:
            Path(dest).mkdir(parents=True, exist_ok=True)
        # --backend-store-uri is read from MLFLOW_BACKEND_STORE_URI (see environment())
        cmd = [sys.executable, "-c", _LAUNCH, "server",
               "--artifacts-destination", dest,
               "--serve-artifacts",
               "--host", host, "--port", str(port),
               "--workers", str(s.mlflow_workers),
               "--app-name", "modelplane",
               "--uvicorn-opts", "--no-access-log --timeout-graceful-shutdown 5"]
        if s.mlflow_allowed_hosts:
            cmd += ["--allowed-hosts", s.mlflow_allowed_hosts]
        return cmd

    def environment(self) -> dict[str, str]:
        env = dict(self._environ)
        s = self.settings
        # The plugin reads the same settings: hand it the values resolved here.
        env.update({
            "MODELPLANE_DATA_DIR": str(s.service.data_root),
            "MODELPLANE_REGISTRY_DATABASE_URL": s.database_url,
            "MODELPLANE_REGISTRY_MLFLOW_BACKEND_STORE_URI": s.backend_store_uri,
            "MODELPLANE_REGISTRY_PROTECTED_ALIASES": ",".join(s.protected_aliases),
            "MODELPLANE_AUTH": "on" if s.service.auth_enabled else "off",
            "PYTHONUNBUFFERED": "1",
        })
        if s.service.api_keys_file is not None:
            env["MODELPLANE_API_KEYS_FILE"] = str(s.service.api_keys_file)
        # GenAI scorer jobs (huey workers) are not part of a model registry: one process
        # less to start. Set it to true in the environment to have them anyway.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env["MLFLOW_BACKEND_STORE_URI"] = s.backend_store_uri  # not argv: it holds a password
        # The server must not send requests to itself with someone's token, and holds no
        # modelplane identity of its own: it only checks callers' keys.
        for name in ("MLFLOW_TRACKING_TOKEN", "MODELPLANE_API_KEY", "MODELPLANE_API_KEY_FILE"):
            env.pop(name, None)
        env.pop("MLFLOW_TRACKING_URI", None)
        return env

    async def start(self) -> None:
        self.launch()
        await self.wait_ready()

    def launch(self) -> None:
        """Start the child without waiting for it to answer (see ``wait_ready``)."""
        if self._process is not None:
            return
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        try:
            self._process = subprocess.Popen(
                self.command(), env=self.environment(), stdout=log_file,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # its own group (stop() kills the group), still in the registry's session
                process_group=0)
        finally:
            log_file.close()
        log.info("mlflow server starting on %s (pid %s)", self.local_uri, self._process.pid)

    def _tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.mlflow_start_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    code = self._process.returncode
                    self._process = None
                    raise Unavailable(f"mlflow server exited with code {code} while starting; "
                                      f"see {self.log_path}:\n{self._tail()}",
                                      reason="MLFLOW_SERVER_FAILED")
                try:
                    resp = await client.get(self.local_uri + "/health")
                    if resp.status_code == 200:
                        log.info("mlflow server ready on %s", self.local_uri)
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    await self.stop()
                    raise Unavailable(f"mlflow server did not answer on {self.local_uri} within "
                                      f"{self.settings.mlflow_start_timeout:.0f}s; see "
                                      f"{self.log_path}", reason="MLFLOW_SERVER_TIMEOUT")
                await asyncio.sleep(0.25)

    async def supervise(self, check_seconds: float = 1.0) -> None:
        """Restart the server when it exits on its own (run as a task; cancel to end)."""
        backoff = 1.0
        while True:
            await asyncio.sleep(check_seconds)
            proc = self._process
            if proc is None or proc.poll() is None:
                continue
            log.error("mlflow server exited with code %s; restarting it. Last lines:\n%s",
                      proc.returncode, self._tail())
            self._process = None
            try:
                self.launch()
                await self.wait_ready()
                backoff = 1.0
            except Unavailable as exc:
                log.error("mlflow server restart failed: %s", exc.message)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def stop(self, timeout: float = 15.0) -> None:
        proc, self._process = self._process, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.info("mlflow server stopped")
