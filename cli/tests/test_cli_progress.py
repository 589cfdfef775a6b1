"""What a person waiting for `modelplane up` sees of each process."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from modelplane.cli.health import status_report
from modelplane.cli.main import _show_startup, startup_state
from modelplane.cli.platform import Platform
from modelplane.kit.progress import ProgressBoard


def test_each_process_is_starting_then_initialising_then_serving() -> None:
    assert startup_state("UNREACHABLE", {"state": "running"}) == "starting"
    assert startup_state("NOT_SERVING", {"state": "running"}) == "initialising"
    assert startup_state("SERVING", {"state": "running"}) == "SERVING"
    # the supervisor's view wins: a process waiting to be restarted is not "starting"
    assert startup_state("UNREACHABLE", {"state": "backoff"}) == "backoff"
    assert startup_state("SERVING", {"state": "crash-loop"}) == "crash-loop"


def _report(platform: Platform, health: dict[str, str]) -> dict[str, object]:
    """``status_report``'s shape with chosen health (nothing listens in this test)."""
    report = status_report(platform)
    services = report["services"]
    assert isinstance(services, dict)
    for component, summary in services.items():
        for entry in summary.get("replicas") or [summary]:
            entry["status"] = "UNREACHABLE"
        summary["status"] = health.get(component, "UNREACHABLE")
        if "replicas" in summary:
            summary["replicas"][1]["status"] = health.get(f"{component}-2", "UNREACHABLE")
            summary["replicas"][0]["status"] = summary["status"]
    return report


def test_a_terminal_shows_every_process_replicas_included_with_its_state(tmp_path: Path) -> None:
    platform = Platform(data_dir=tmp_path, base_port=1, replicas={"serving": 2},
                        instances={"observability": {"state": "backoff", "restarts": 2}})
    screen = io.StringIO()
    with ProgressBoard(console=Console(file=screen, force_terminal=True, width=100)) as board:
        for name, _, _ in platform.instance_names():
            board.add(name, "starting")
        _show_startup(board, platform, _report(platform, {
            "featurestore": "SERVING", "registry": "NOT_SERVING", "serving": "SERVING"}))
    text = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())
    rows = [line.split() for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", text).splitlines()
            if line.strip()]
    last = {row[1]: row[2:] for row in rows[-7:]}  # the last frame: one row per process
    assert last["featurestore"][0] == "SERVING"
    assert last["registry"][0] == "initialising"
    assert last["serving"][0] == "SERVING" and last["serving-2"][0] == "starting"
    assert last["observability"][0] == "backoff" and last["observability"][-2:] == ["restarts", "2"]
    assert last["validator"][0] == "starting" and last["gateway"][0] == "starting"
