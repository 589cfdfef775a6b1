"""`modelplane up --detach` / `status --json` / `down`, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelplane.kit.pytest_plugin import descendants, free_port_block

SERVICES = ("featurestore", "registry", "validator", "serving", "observability")
# the module's platform starts inside the first test's budget (`up` waits up to 300 s)
pytestmark = pytest.mark.timeout(600)


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPLANE_")}
    return subprocess.run([sys.executable, "-m", "modelplane.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("platform")
    base = free_port_block()
    common = ("--data-dir", str(data), "--base-port", str(base))
    started = time.monotonic()
    up = _cli("up", "--detach", "--timeout", "300", *common, timeout=400)
    elapsed = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield {"data": data, "base": base, "common": common, "up": up, "elapsed": elapsed}
    finally:
        _cli("down", *common)


def test_up_detach_reports_every_part_serving(platform) -> None:
    print(f"up --detach took {platform['elapsed']:.1f}s")
    status = _cli("status", "--json", *platform["common"])
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    base = platform["base"]
    assert set(report) == {"services", "mlflow", "api_key", "supervisor"}
    assert set(report["services"]) == {*SERVICES, "gateway"}
    supervised = {"state": "running", "restarts": 0, "last_exit_code": None, "message": ""}
    for offset, name in enumerate(SERVICES, start=1):
        assert report["services"][name] == {"grpc": f"127.0.0.1:{base + offset}",
                                            "status": "SERVING", **supervised}
    assert report["services"]["gateway"] == {"http": f"http://127.0.0.1:{base}",
                                             "status": "SERVING", **supervised}
    assert report["mlflow"] == {"tracking_uri": f"http://127.0.0.1:{base + 10}"}
    # through a pipe, `up` told each part's progress in plain lines, one per state change
    out = platform["up"].stdout
    assert "\r" not in out and "\x1b[" not in out
    for name in (*SERVICES, "gateway"):
        assert len(re.findall(rf"^{name}: SERVING \(\d+\.\d s\)$", out, re.MULTILINE)) == 1, out
    # `up --detach` left its supervisor behind, and it is the parent of every part
    state = json.loads((platform["data"] / "platform.json").read_text())
    supervisor = report["supervisor"]["pid"]
    assert report["supervisor"] == {"pid": state["supervisor_pid"], "running": True}
    for pid in state["pids"].values():
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert int(stat[stat.rfind(")") + 2:].split()[1]) == supervisor


def test_every_service_exports_per_rpc_metrics(platform) -> None:
    import httpx

    base = platform["base"]
    for offset, name in enumerate(SERVICES):
        # the health checks `status` made are RPCs too
        body = httpx.get(f"http://127.0.0.1:{base + 16 + offset}/metrics", timeout=10).text
        assert (f'modelplane_rpc_requests_total{{code="OK",method="grpc.health.v1.Health/Check",'
                f'service="{name}"}}') in body, name
        assert "modelplane_rpc_duration_seconds_bucket" in body


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_first_up_creates_a_private_admin_key_and_prints_it(platform) -> None:
    key_file: Path = platform["data"] / "admin.key"
    key = key_file.read_text().strip()
    assert key.startswith("mp_")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((platform["data"] / "api_keys.json").stat().st_mode) == 0o600
    assert key in platform["up"].stdout
    assert key not in (platform["data"] / "api_keys.json").read_text()
    report = json.loads(_cli("status", "--json", *platform["common"]).stdout)
    assert report["api_key"] == key


def test_the_data_dir_is_private(platform) -> None:
    assert stat.S_IMODE(platform["data"].stat().st_mode) == 0o700


def test_each_service_runs_with_its_own_least_role_identity(platform) -> None:
    data: Path = platform["data"]
    admin = (data / "admin.key").read_text().strip()
    rows = {row["name"]: row for row in json.loads((data / "api_keys.json").read_text())["keys"]}
    state = json.loads((data / "platform.json").read_text())
    assert set(state["pids"]) == {*SERVICES, "gateway"}
    for name, pid in state["pids"].items():
        assert rows[name]["service"] is True
        assert rows[name]["role"] in ("reader", "writer")
        key_file = data / "keys" / f"{name}.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        own = key_file.read_text().strip()
        assert hashlib.sha256(own.encode()).hexdigest() == rows[name]["sha256"]
        environ = _environ(pid)
        assert environ["MODELPLANE_API_KEY_FILE"] == str(key_file)
        assert "MODELPLANE_API_KEY" not in environ
        everything = Path(f"/proc/{pid}/environ").read_bytes() + \
            Path(f"/proc/{pid}/cmdline").read_bytes()
        assert admin.encode() not in everything and own.encode() not in everything
    assert rows["validator"]["role"] == rows["serving"]["role"] == "writer"
    # the MLflow child (the registry's) holds no modelplane key at all
    mlflow = [pid for pid in descendants(state["pids"]["registry"])
              if b"mlflow" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert mlflow
    for pid in mlflow:
        assert not {"MODELPLANE_API_KEY", "MODELPLANE_API_KEY_FILE"} & set(_environ(pid))


def test_keys_for_people_take_effect_and_are_revoked_without_a_restart(platform) -> None:
    url = f"http://127.0.0.1:{platform['base']}/v1/models"
    created = _cli("keys", "create", "ana", "--role", "reader", "--expires", "1d",
                   "--data-dir", str(platform["data"]), timeout=60)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=headers, timeout=30).status_code == 200
    listed = _cli("keys", "list", "--json", "--data-dir", str(platform["data"]), timeout=60)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["ana"]["kind"] == "person" and rows["serving"]["kind"] == "service"
    assert key not in listed.stdout
    revoked = _cli("keys", "revoke", "ana", "--data-dir", str(platform["data"]), timeout=60)
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.get(url, headers=headers, timeout=30)
    assert refused.status_code == 401


def test_second_up_refuses_while_running(platform) -> None:
    again = _cli("up", "--detach", *platform["common"], timeout=60)
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_replicas_on_embedded_stores_are_refused_with_the_reason(tmp_path: Path) -> None:
    base = free_port_block()
    up = _cli("up", "--detach", "--replicas", "serving=2", "--data-dir", str(tmp_path),
              "--base-port", str(base), timeout=60)
    assert up.returncode == 2
    assert "needs PostgreSQL" in up.stderr
    assert "SQLite and DuckDB files" in up.stderr
    assert not (tmp_path / "platform.json").exists()
    bad = _cli("up", "--replicas", "gateway=2", "--data-dir", str(tmp_path), timeout=60)
    assert bad.returncode == 2 and "the gateway runs once" in bad.stderr


def test_down_stops_every_process(tmp_path_factory: pytest.TempPathFactory, platform) -> None:
    state = json.loads((platform["data"] / "platform.json").read_text())
    down = _cli("down", *platform["common"])
    assert down.returncode == 0
    for pid in [*state["pids"].values(), state["supervisor_pid"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # nothing left in any part's session: the registry's MLflow server included
    from modelplane.cli.supervisor import session_members

    assert [session_members(pid) for pid in state["pids"].values()] == [[]] * len(state["pids"])
    status = _cli("status", "--json", *platform["common"])
    assert status.returncode == 1
    assert all(s["status"] == "UNREACHABLE"
               for s in json.loads(status.stdout)["services"].values())


def test_a_restart_keeps_the_identities_and_does_not_print_the_admin_key(platform) -> None:
    data: Path = platform["data"]
    admin = (data / "admin.key").read_text().strip()
    before = {p.name: p.read_text() for p in (data / "keys").iterdir()}
    _cli("down", *platform["common"])  # (the test before stopped it already)
    up = _cli("up", "--detach", "--timeout", "180", *platform["common"])
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert admin not in up.stdout and admin not in up.stderr
        assert str(data / "admin.key") in up.stdout  # where it is, not what it is
        assert {p.name: p.read_text() for p in (data / "keys").iterdir()} == before
        report = json.loads(_cli("status", "--json", *platform["common"]).stdout)
        assert report["api_key"] == admin
    finally:
        _cli("down", *platform["common"])
