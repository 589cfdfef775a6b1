"""The local platform's supervisor: starts every process, restarts what crashes.

``modelplane up`` runs it as a child process (``python -m
modelplane.cli.supervisor --data-dir DIR``), in the foreground or, with
``--detach``, in a session of its own that outlives ``up``; ``modelplane down``
sends it SIGTERM. It is single-threaded and owns ``platform.json``.

The restart policy is a container runtime's ``restartPolicy: Always``:

- any exit of a process (a crash, a SIGKILL, even exit code 0) restarts it after a
  backoff of ``backoff_initial`` seconds, doubled per consecutive crash up to
  ``backoff_max``; a run that lasted ``reset_after`` seconds forgets the earlier
  crashes' backoff. The other processes are not touched: they keep serving.
- a crash loop (``loop_crashes`` exits within ``loop_window`` seconds) stops
  restarting that one process, with a message in the supervisor's log and in
  ``modelplane status``; the rest of the platform keeps running.

Every process starts in a session of its own (``setsid``), so everything it
spawns (the registry's ``mlflow server`` and its uvicorn workers, BentoML's
workers) is found again by session id, even after the process itself was
SIGKILLed. When a process exits, or on stop (SIGTERM to the process, SIGKILL
after a grace), every process left in its session is killed: nothing is left
orphaned. Finding a session's members reads ``/proc`` (Linux); elsewhere the
process group is killed instead, which misses children that made their own
group. The services also get ``PR_SET_PDEATHSIG`` (SIGTERM; Linux only), so a
SIGKILL of the supervisor itself stops them instead of orphaning them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from modelplane.cli.platform import STATE_FILE, Platform

_PR_SET_PDEATHSIG = 1

#: what ``modelplane status`` shows per process
RUNNING, BACKOFF, CRASH_LOOP, STOPPED = "running", "backoff", "crash-loop", "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    reset_after: float = 60.0
    loop_crashes: int = 5
    loop_window: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RestartPolicy:
        """``MODELPLANE_RESTART_BACKOFF`` (seconds) and ``MODELPLANE_CRASH_LOOP`` (``5/120``)."""
        policy = cls()
        backoff = environ.get("MODELPLANE_RESTART_BACKOFF")
        if backoff:
            policy = cls(backoff_initial=float(backoff), backoff_max=policy.backoff_max)
        loop = environ.get("MODELPLANE_CRASH_LOOP")
        if loop:
            crashes, _, window = loop.partition("/")
            policy = RestartPolicy(policy.backoff_initial, policy.backoff_max, policy.reset_after,
                                   int(crashes), float(window or policy.loop_window))
        return policy


# processes ------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the parent dies (Linux; ignored elsewhere)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def session_members(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (from /proc; [] where there is none)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def signal_session(sid: int, sig: int) -> int:
    """Send ``sig`` to every process of session ``sid``; how many were there."""
    if not Path("/proc/self/stat").exists():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, sig)
            return 1
        return 0
    members = session_members(sid)
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return len(members)


def kill_session(sid: int, grace: float) -> None:
    """SIGTERM the session's leftovers, SIGKILL what is still there after ``grace``."""
    if not signal_session(sid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not session_members(sid):
            return
        time.sleep(0.05)
    signal_session(sid, signal.SIGKILL)


# the supervisor ---------------------------------------------------------------------


@dataclass
class Instance:
    name: str
    component: str
    replica: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    state: str = STOPPED
    restarts: int = 0
    last_exit_code: int | None = None
    message: str = ""
    started_at: float = 0.0
    restart_at: float = 0.0
    streak: int = 0
    crashes: deque[float] = field(default_factory=deque)

    def view(self) -> dict[str, object]:
        return {"component": self.component, "replica": self.replica,
                "pid": self.proc.pid if self.proc is not None else None,
                "state": self.state, "restarts": self.restarts,
                "last_exit_code": self.last_exit_code, "message": self.message}


def service_command(component: str) -> list[str]:
    return [sys.executable, "-m", f"modelplane.{component}.main"]


class Supervisor:
    def __init__(self, platform: Platform, env: Mapping[str, str],
                 policy: RestartPolicy | None = None, *, grace: float = 20.0,
                 say: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 command: Callable[[str], list[str]] = service_command) -> None:
        self.platform = platform
        self._command = command
        self.policy = policy or RestartPolicy.from_env(env)
        self.grace = grace
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._clock = clock
        self.instances = [Instance(name, component, replica,
                                   platform.instance_environment(env, component, replica))
                          for name, component, replica in platform.instance_names()]
        self._stopping = False

    # lifecycle -----------------------------------------------------------------------
    def start_all(self) -> None:
        for inst in self.instances:
            self._spawn(inst)
        self._save()

    def request_stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self._stopping = True

    def run(self, tick: float = 0.2) -> None:
        """Watch the processes until a stop is requested, then stop them all."""
        while not self._stopping:
            if self.poll():
                self._save()
            time.sleep(tick)
        self.stop_all()

    def poll(self) -> bool:
        """One round: note exits, restart what is due. True when something changed."""
        changed = False
        now = self._clock()
        for inst in self.instances:
            if inst.state == RUNNING and inst.proc is not None:
                code = inst.proc.poll()
                if code is not None:
                    self._exited(inst, code, now)
                    changed = True
            elif inst.state == BACKOFF and now >= inst.restart_at:
                inst.restarts += 1
                self._spawn(inst)
                changed = True
        return changed

    def stop_all(self) -> None:
        """SIGTERM every process, SIGKILL every session member left after the grace."""
        live = [i for i in self.instances if i.proc is not None and i.proc.poll() is None]
        for inst in live:
            assert inst.proc is not None
            with contextlib.suppress(ProcessLookupError):
                inst.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for inst in live:
            assert inst.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                inst.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for inst in self.instances:
            if inst.proc is None:
                continue
            # the leader may be gone while its children (MLflow's workers) still stop
            kill_session(inst.proc.pid, grace=max(0.5, min(5.0, deadline - time.monotonic())))
            with contextlib.suppress(subprocess.TimeoutExpired):
                inst.proc.wait(timeout=1)
            inst.state = STOPPED
        (self.platform.data_dir / STATE_FILE).unlink(missing_ok=True)

    # one process -----------------------------------------------------------------------
    def _spawn(self, inst: Instance) -> None:
        logs = self.platform.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{inst.name}.log", "ab") as log:
            inst.proc = subprocess.Popen(
                self._command(inst.component), env=inst.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509
        inst.state = RUNNING
        inst.started_at = self._clock()

    def _exited(self, inst: Instance, code: int, now: float) -> None:
        assert inst.proc is not None
        kill_session(inst.proc.pid, grace=2.0)  # e.g. the mlflow server of a killed registry
        inst.last_exit_code = code
        if now - inst.started_at >= self.policy.reset_after:
            inst.streak = 0
        inst.streak += 1
        inst.crashes.append(now)
        while inst.crashes and now - inst.crashes[0] > self.policy.loop_window:
            inst.crashes.popleft()
        tail = _log_tail(self.platform.data_dir / "logs" / f"{inst.name}.log")
        if len(inst.crashes) >= self.policy.loop_crashes:
            inst.state = CRASH_LOOP
            inst.message = (f"{inst.name} exited {len(inst.crashes)} times within "
                            f"{self.policy.loop_window:.0f}s (last exit code {code}); not "
                            f"restarting it. The rest of the platform keeps running. See "
                            f"logs/{inst.name}.log; `modelplane down` then `modelplane up` "
                            "after fixing it.")
            self._say(f"{inst.message}\nIts log ends with:\n{tail}")
            return
        delay = min(self.policy.backoff_max,
                    self.policy.backoff_initial * 2 ** (inst.streak - 1))
        inst.state = BACKOFF
        inst.restart_at = now + delay
        inst.message = f"exited with code {code}; restarting in {delay:.0f}s"
        self._say(f"{inst.name} exited with code {code}; restarting it in {delay:.1f}s "
                  f"(restart {inst.restarts + 1}); the other parts keep running. "
                  f"Its log ends with:\n{tail}")

    def _save(self) -> None:
        p = self.platform
        p.supervisor_pid = os.getpid()
        p.instances = {i.name: i.view() for i in self.instances}
        p.pids = {i.name: i.proc.pid for i in self.instances if i.proc is not None}
        p.save()


def _log_tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane-supervisor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--grace", type=float, default=20.0,
                        help="seconds between SIGTERM and SIGKILL on stop (default 20)")
    args = parser.parse_args(argv)
    platform = Platform.load(Path(args.data_dir))
    if platform is None:
        print(f"no {STATE_FILE} in {args.data_dir}: start the platform with `modelplane up`",
              file=sys.stderr)
        return 2
    supervisor = Supervisor(platform, os.environ, grace=args.grace)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.start_all()
    supervisor.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
