"""The benchmarks' handling of the local processes they start: a free port to give
one (the kit's test helper), the CPU seconds it used (from ``/proc``, Linux) and
stopping it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from modelplane.kit.pytest_plugin import free_port

__all__ = ["cpu_seconds", "free_port", "stop"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (its threads included,
    not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
