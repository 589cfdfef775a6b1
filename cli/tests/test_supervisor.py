"""The supervisor's restart policy and process cleanup, on small real processes standing
in for the services (the platform-level tests are in ``tests/scale/``)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from modelplane.cli.platform import Platform
from modelplane.cli.supervisor import (
    BACKOFF,
    CRASH_LOOP,
    RUNNING,
    Instance,
    RestartPolicy,
    Supervisor,
    session_members,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

SLEEP = "import time; time.sleep(600)"
CRASH = "import sys, time; time.sleep(0.05); sys.exit(3)"
IGNORE_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
# like the registry: a child in its own process group (mlflow server), same session
WITH_CHILD = ("import os, subprocess, sys, time; "
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
              "preexec_fn=lambda: os.setpgid(0, 0)); time.sleep(600)")


def _supervisor(tmp_path: Path, scripts: dict[str, str], policy: RestartPolicy,
                messages: list[str], grace: float = 2.0) -> Supervisor:
    platform = Platform(data_dir=tmp_path, base_port=1)

    def command(component: str) -> list[str]:
        return [sys.executable, "-c", scripts.get(component, SLEEP)]

    return Supervisor(platform, dict(os.environ), policy, grace=grace, say=messages.append,
                      command=command)


def _poll_until(sup: Supervisor, done: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, [i.view() for i in sup.instances]
        if sup.poll():
            sup._save()
        time.sleep(0.02)


def _by_name(sup: Supervisor, name: str) -> Instance:
    return next(i for i in sup.instances if i.name == name)


def test_a_crash_is_restarted_with_backoff_and_the_others_are_untouched(tmp_path: Path) -> None:
    messages: list[str] = []
    policy = RestartPolicy(backoff_initial=0.3, backoff_max=10, loop_crashes=5, loop_window=60)
    sup = _supervisor(tmp_path, {}, policy, messages)
    sup.start_all()
    try:
        others = {i.name: i.proc.pid for i in sup.instances if i.name != "observability"}
        obs = _by_name(sup, "observability")
        first = obs.proc.pid
        os.kill(first, signal.SIGKILL)
        _poll_until(sup, lambda: obs.state == BACKOFF)
        assert obs.last_exit_code == -signal.SIGKILL
        assert "observability exited with code -9; restarting it in 0.3s" in messages[-1]
        waited = time.monotonic()
        _poll_until(sup, lambda: obs.state == RUNNING)
        assert time.monotonic() - waited >= 0.2  # after the backoff, not at once
        assert obs.proc.pid != first and obs.restarts == 1
        # a second crash in a row waits twice as long
        os.kill(obs.proc.pid, signal.SIGKILL)
        _poll_until(sup, lambda: obs.state == BACKOFF)
        assert "restarting it in 0.6s" in messages[-1]
        assert {i.name: i.proc.pid for i in sup.instances if i.name != "observability"} == others
        assert all(i.state == RUNNING for i in sup.instances if i.name != "observability")
        state = json.loads((tmp_path / "platform.json").read_text())
        assert state["instances"]["observability"]["restarts"] == 1
        assert state["instances"]["observability"]["last_exit_code"] == -9
        assert state["supervisor_pid"] == os.getpid()
    finally:
        sup.stop_all()


def test_a_crash_loop_stops_that_part_only_with_a_message(tmp_path: Path) -> None:
    messages: list[str] = []
    policy = RestartPolicy(backoff_initial=0.01, backoff_max=0.05, loop_crashes=5,
                           loop_window=60)
    sup = _supervisor(tmp_path, {"validator": CRASH}, policy, messages)
    sup.start_all()
    try:
        validator = _by_name(sup, "validator")
        _poll_until(sup, lambda: validator.state == CRASH_LOOP)
        assert validator.restarts == 4 and validator.last_exit_code == 3
        assert "validator exited 5 times within 60s (last exit code 3); not restarting it" \
            in messages[-1]
        time.sleep(0.3)
        assert not sup.poll() and validator.state == CRASH_LOOP  # stays stopped
        assert all(i.state == RUNNING and i.proc.poll() is None
                   for i in sup.instances if i.name != "validator")
    finally:
        sup.stop_all()


def test_stop_kills_whole_sessions_even_of_a_process_that_ignores_sigterm(
        tmp_path: Path) -> None:
    messages: list[str] = []
    sup = _supervisor(tmp_path, {"registry": WITH_CHILD, "gateway": IGNORE_TERM},
                      RestartPolicy(), messages, grace=1.0)
    sup.start_all()
    registry = _by_name(sup, "registry")
    deadline = time.monotonic() + 10
    while len(session_members(registry.proc.pid)) < 2:
        assert time.monotonic() < deadline, "the registry stand-in never started its child"
        time.sleep(0.05)
    sessions = [i.proc.pid for i in sup.instances]
    started = time.monotonic()
    sup.stop_all()
    assert time.monotonic() - started < 10
    assert [pid for sid in sessions for pid in session_members(sid)] == []
    assert not (tmp_path / "platform.json").exists()


def test_a_sigkilled_process_takes_its_children_along(tmp_path: Path) -> None:
    messages: list[str] = []
    sup = _supervisor(tmp_path, {"registry": WITH_CHILD}, RestartPolicy(backoff_initial=30),
                      messages)
    sup.start_all()
    try:
        registry = _by_name(sup, "registry")
        sid = registry.proc.pid
        deadline = time.monotonic() + 10
        while len(session_members(sid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(sid, signal.SIGKILL)
        _poll_until(sup, lambda: registry.state == BACKOFF)
        assert session_members(sid) == []  # the "mlflow server" did not outlive it
    finally:
        sup.stop_all()


def test_policy_from_the_environment() -> None:
    policy = RestartPolicy.from_env({"MODELPLANE_RESTART_BACKOFF": "0.5",
                                     "MODELPLANE_CRASH_LOOP": "3/30"})
    assert (policy.backoff_initial, policy.loop_crashes, policy.loop_window) == (0.5, 3, 30.0)
    assert RestartPolicy.from_env({}) == RestartPolicy()
