"""The kit's helpers for tests and benchmarks that start local processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from modelplane.kit.pytest_plugin import descendants, free_port


def test_free_port_can_be_bound_by_the_caller() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # raises if it were taken
    assert 0 < port < 65536


def test_descendants_finds_grandchildren_and_not_the_process_itself() -> None:
    # python -> sh -> sleep: the sleep is a grandchild of the python process
    code = ("import subprocess, sys; subprocess.Popen(['sh', '-c', 'sleep 30 & wait'])"
            ".wait()")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        found: list[int] = []
        while time.monotonic() < deadline:
            found = descendants(proc.pid)
            if len(found) >= 2:
                break
            time.sleep(0.05)
        assert proc.pid not in found
        assert len(found) == 2, found  # sh and its sleep
        names = sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in found)
        assert names == ["sh", "sleep"], names
    finally:
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        proc.kill()
        proc.wait()
