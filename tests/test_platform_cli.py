"""`modelplane up --detach` / `status --json` / `down`, as a user runs them."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelplane.kit.pytest_plugin import free_port_block

SERVICES = ("featurestore", "registry", "validator", "serving", "observability")


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
    up = _cli("up", "--detach", "--timeout", "180", *common)
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
    assert set(report) == {"services", "mlflow", "api_key"}
    assert set(report["services"]) == {*SERVICES, "gateway"}
    for offset, name in enumerate(SERVICES, start=1):
        assert report["services"][name] == {"grpc": f"127.0.0.1:{base + offset}",
                                            "status": "SERVING"}
    assert report["services"]["gateway"] == {"http": f"http://127.0.0.1:{base}",
                                             "status": "SERVING"}
    assert report["mlflow"] == {"tracking_uri": f"http://127.0.0.1:{base + 10}"}


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


def test_second_up_refuses_while_running(platform) -> None:
    again = _cli("up", "--detach", *platform["common"], timeout=60)
    assert again.returncode == 1
    assert "already running" in again.stderr


def test_down_stops_every_process(tmp_path_factory: pytest.TempPathFactory, platform) -> None:
    state = json.loads((platform["data"] / "platform.json").read_text())
    down = _cli("down", *platform["common"])
    assert down.returncode == 0
    for pid in state["pids"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    status = _cli("status", "--json", *platform["common"])
    assert status.returncode == 1
    assert all(s["status"] == "UNREACHABLE"
               for s in json.loads(status.stdout)["services"].values())
