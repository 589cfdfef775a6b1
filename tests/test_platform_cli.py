"""`modelplane up --detach` / `status --json` / `down`, as a user runs them, and how `up`
supervises its parts, with real processes and real kills, on one platform for the module
(`up` is the costliest step: 43 s in clean-clone CI, 2-4 min on this shared machine at
load 5-16).

In order, on that one platform (embedded stores, fast restarts: ``MODELPLANE_RESTART_BACKOFF``
0.5 s, a crash loop at 5 exits within 120 s):

- what `up` reported and left behind: every part SERVING with no restart yet, the
  supervisor the parent of each, per-RPC metrics, the admin key, the private data dir,
  each service's own least-role identity, keys for people, a second `up` refused;
- with a tiny model deployed: SIGKILL of observability during 300 inference requests
  through the gateway (no client error, restarted, all 300 records reach the evaluation
  store), SIGKILL of serving mid-traffic (restarted, the other five parts SERVING
  throughout, every answered request's record reaches the store: serving's write-ahead
  prediction log);
- a crash-looping part is stopped alone, with a message, the rest keeps serving;
- SIGKILL of the registry takes its MLflow server and workers with it (its session is
  swept); `down` while the registry restarts stops every process and leaves none behind;
- `up` again keeps the identities and does not print the admin key.

These were two modules, each starting its own platform; one `up` and one `down` less is
about 45-50 s of the suite's work in CI (measured alone here: 415 s + 368 s as two modules,
585 s as one, load 5.5-12.7). Run alone:
``uv run pytest tests/test_platform_cli.py -s -n 0`` (prints each figure).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.kit.pytest_plugin import descendants, free_port_block

_spec = importlib.util.spec_from_file_location(
    "modelplane_scale_harness", Path(__file__).parent / "scale" / "platform_harness.py")
assert _spec is not None and _spec.loader is not None
h = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = h
_spec.loader.exec_module(h)

SERVICES = ("featurestore", "registry", "validator", "serving", "observability")
pytestmark = [
    pytest.mark.skipif(sys.platform != "linux",
                       reason="session sweep and PR_SET_PDEATHSIG are Linux only"),
    # the module's platform starts inside the first test's budget: cold `up` on a busy
    # 2-core machine took 257 s
    pytest.mark.timeout(900),
]


def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return h.cli(*args, timeout=timeout)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("platform")
    # fast restarts so the crash loop is reached within seconds: 0.5 s, 1 s, 2 s, 4 s
    env = {"MODELPLANE_RESTART_BACKOFF": "0.5", "MODELPLANE_CRASH_LOOP": "5/120"}
    started = time.monotonic()
    p = h.start(data, free_port_block(60), env=env)
    p.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    print(f"up --detach took {p.elapsed:.1f}s")  # type: ignore[attr-defined]
    try:
        assert p.up is not None and p.up.returncode == 0, p.up.stdout + p.up.stderr
        yield p
    finally:
        leftovers = h.stop(p)
        assert not leftovers, f"left behind by down: {leftovers}"


@pytest.fixture(scope="module")
def deployed(platform: Any) -> Any:
    """The platform with the tiny model deployed (READY) behind the gateway."""
    started = time.monotonic()
    h.deploy_tiny_model(platform)
    print(f"model deployed in {time.monotonic() - started:.1f}s")
    return platform


def test_up_detach_reports_every_part_serving(platform: Any) -> None:
    print(f"up --detach took {platform.elapsed:.1f}s")
    status = _cli("status", "--json", *platform.common)
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    base = platform.base
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
    out = platform.up.stdout
    assert "\r" not in out and "\x1b[" not in out
    for name in (*SERVICES, "gateway"):
        assert len(re.findall(rf"^{name}: SERVING \(\d+\.\d s\)$", out, re.MULTILINE)) == 1, out
    # `up --detach` left its supervisor behind, and it is the parent of every part
    state = json.loads((platform.data / "platform.json").read_text())
    supervisor = report["supervisor"]["pid"]
    assert report["supervisor"] == {"pid": state["supervisor_pid"], "running": True}
    for pid in state["pids"].values():
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert int(stat[stat.rfind(")") + 2:].split()[1]) == supervisor


def test_every_service_exports_per_rpc_metrics(platform: Any) -> None:
    import httpx

    base = platform.base
    for offset, name in enumerate(SERVICES):
        # the health checks `status` made are RPCs too
        body = httpx.get(f"http://127.0.0.1:{base + 16 + offset}/metrics", timeout=10).text
        assert (f'modelplane_rpc_requests_total{{code="OK",method="grpc.health.v1.Health/Check",'
                f'service="{name}"}}') in body, name
        assert "modelplane_rpc_duration_seconds_bucket" in body


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def test_first_up_creates_a_private_admin_key_and_prints_it(platform: Any) -> None:
    key_file: Path = platform.data / "admin.key"
    key = key_file.read_text().strip()
    assert key.startswith("mp_")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((platform.data / "api_keys.json").stat().st_mode) == 0o600
    assert key in platform.up.stdout
    assert key not in (platform.data / "api_keys.json").read_text()
    report = json.loads(_cli("status", "--json", *platform.common).stdout)
    assert report["api_key"] == key


def test_the_data_dir_is_private(platform: Any) -> None:
    assert stat.S_IMODE(platform.data.stat().st_mode) == 0o700


def test_each_service_runs_with_its_own_least_role_identity(platform: Any) -> None:
    data: Path = platform.data
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


def test_keys_for_people_take_effect_and_are_revoked_without_a_restart(platform: Any) -> None:
    url = f"http://127.0.0.1:{platform.base}/v1/models"
    created = _cli("keys", "create", "ana", "--role", "reader", "--expires", "1d",
                   "--data-dir", str(platform.data), timeout=60)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(url, headers=headers, timeout=30).status_code == 200
    listed = _cli("keys", "list", "--json", "--data-dir", str(platform.data), timeout=60)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["ana"]["kind"] == "person" and rows["serving"]["kind"] == "service"
    assert key not in listed.stdout
    revoked = _cli("keys", "revoke", "ana", "--data-dir", str(platform.data), timeout=60)
    assert revoked.returncode == 0, revoked.stderr
    refused = httpx.get(url, headers=headers, timeout=30)
    assert refused.status_code == 401


def test_second_up_refuses_while_running(platform: Any) -> None:
    again = _cli("up", "--detach", *platform.common, timeout=60)
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


# supervision: kills (each test leaves the platform serving for the next) -------------


def test_sigkill_of_observability_during_traffic_loses_nothing(deployed: Any) -> None:
    platform = deployed
    killed: list[int] = []

    def on_answer(count: int) -> None:
        if count == 60 and not killed:
            killed.append(platform.kill("observability"))

    started = time.monotonic()
    traffic = asyncio.run(h.send_traffic(platform, 300, concurrency=4, on_answer=on_answer))
    print(f"300 requests in {time.monotonic() - started:.1f}s with observability killed "
          f"after 60 (pid {killed})")
    assert killed, "observability was not killed mid-traffic"
    assert traffic.errors == [], traffic.errors[:5]
    assert len(traffic.ok) == 300
    back = platform.wait_restarted("observability", restarts=1)
    print(f"observability SERVING again {back:.1f}s after the traffic ended")
    view = platform.instance("observability")
    assert view["last_exit_code"] == -signal.SIGKILL
    records = h.wait_records(platform, 300)
    print(f"records in the store after the restart: {records} of 300")
    assert records == 300


def test_sigkill_of_serving_mid_traffic_restarts_it_alone(deployed: Any) -> None:
    platform = deployed
    before = h.observed_records(platform)
    restarts_before = int(platform.instance("serving")["restarts"])
    others = tuple(p for p in h.PARTS if p != "serving")
    killed: list[int] = []
    samples: list[dict[str, str]] = []
    done = threading.Event()

    def watch() -> None:
        samples.extend(h.health_samples(platform, others, done.is_set))

    def on_answer(count: int) -> None:
        if count == 100 and not killed:
            killed.append(platform.kill("serving"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        traffic = asyncio.run(h.send_traffic(platform, 300, concurrency=4, on_answer=on_answer,
                                             pace=0.01))
        assert killed
        back = platform.wait_restarted("serving", restarts=restarts_before + 1)
    finally:
        done.set()
        watcher.join(timeout=30)
    print(f"serving killed after 100 answers: {len(traffic.ok)} answered, "
          f"{len(traffic.errors)} failed; SERVING again {back:.1f}s after the traffic ended; "
          f"{len(samples)} health samples of the other parts")
    assert samples
    not_serving = [s for s in samples if any(v != "SERVING" for v in s.values())]
    assert not_serving == [], not_serving[:3]
    assert len(traffic.ok) >= 100
    # every answered request's record reaches the store (serving's write-ahead log)
    records = h.wait_records(platform, before + len(traffic.ok))
    lost = before + len(traffic.ok) - records
    print(f"records: {records - before} arrived of {len(traffic.ok)} answered (lost {lost})")
    assert lost <= 0


def test_a_crash_looping_part_is_stopped_alone_with_a_message(platform: Any) -> None:
    # SIGKILL the validator each time it comes back: 5 exits within 120 s is a crash loop
    name = "validator"
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = platform.instance(name)
        if view["state"] == "crash-loop":
            break
        pid = view.get("pid")
        if view["state"] == "running" and pid and pid not in seen:
            seen.add(pid)
            try:
                platform.kill(name)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    view = platform.instance(name)
    assert view["state"] == "crash-loop", view
    assert len(seen) == 5
    assert "5 times within 120s" in str(view["message"])
    time.sleep(3)  # nothing restarts it
    assert platform.instance(name)["state"] == "crash-loop"
    report = platform.status()
    assert report["services"][name]["state"] == "crash-loop"
    assert report["services"][name]["status"] == "UNREACHABLE"
    assert report["services"][name]["restarts"] == 4
    for part in h.PARTS:
        if part != name:
            assert report["services"][part]["status"] == "SERVING", (part, report)
    assert f"{name} exited 5 times within 120s" in platform.supervisor_log()
    assert report["supervisor"]["running"] is True


def test_sigkill_of_the_registry_takes_its_mlflow_server_with_it(platform: Any) -> None:
    pid = int(platform.instance("registry")["pid"])
    before = h.session_processes([pid])
    # the mlflow server (a `python -c` launcher) and its uvicorn worker, beside the registry
    others = [p for p in before if not p.startswith(f"{pid} ")]
    assert len(others) >= 2 and any("uvicorn" in p for p in others), before
    platform.kill("registry")
    deadline = time.monotonic() + 15
    while h.session_processes([pid]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert h.session_processes([pid]) == []
    # the registry is restarting now: the next test's `down` stops it mid-start, and must
    # still leave nothing behind (that test and the fixture check)
    deadline = time.monotonic() + 30
    while int(platform.instance("registry")["restarts"]) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert int(platform.instance("registry")["restarts"]) == 1


# the end of the platform: `down` (the registry restarting), then `up` again ------------


def test_down_stops_every_process(tmp_path_factory: pytest.TempPathFactory,
                                  platform: Any) -> None:
    state = json.loads((platform.data / "platform.json").read_text())
    down = _cli("down", *platform.common)
    assert down.returncode == 0
    for pid in [*state["pids"].values(), state["supervisor_pid"]]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    # nothing left in any part's session: the registry's MLflow server included
    from modelplane.cli.supervisor import session_members

    assert [session_members(pid) for pid in state["pids"].values()] == [[]] * len(state["pids"])
    status = _cli("status", "--json", *platform.common)
    assert status.returncode == 1
    assert all(s["status"] == "UNREACHABLE"
               for s in json.loads(status.stdout)["services"].values())


def test_a_restart_keeps_the_identities_and_does_not_print_the_admin_key(platform: Any) -> None:
    data: Path = platform.data
    admin = (data / "admin.key").read_text().strip()
    before = {p.name: p.read_text() for p in (data / "keys").iterdir()}
    _cli("down", *platform.common)  # (the test before stopped it already)
    up = _cli("up", "--detach", "--timeout", "180", *platform.common)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert admin not in up.stdout and admin not in up.stderr
        assert str(data / "admin.key") in up.stdout  # where it is, not what it is
        assert {p.name: p.read_text() for p in (data / "keys").iterdir()} == before
        report = json.loads(_cli("status", "--json", *platform.common).stdout)
        assert report["api_key"] == admin
    finally:
        _cli("down", *platform.common)
