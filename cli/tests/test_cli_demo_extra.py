"""`modelplane demo` without the CLI's `demo` extra: one line naming the extra, no traceback,
and `up --demo` refuses before it starts anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _cli_without(modules: tuple[str, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter where ``modules`` cannot be imported (as if the
    extra were not installed; ``sys.modules[name] = None`` is what Python reads as absent)."""
    code = (f"import sys\nfor m in {modules!r}: sys.modules[m] = None\n"
            "from modelplane.cli.main import main\n"
            f"raise SystemExit(main({list(args)!r}))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


def test_demo_without_its_extra_says_which_extra_in_one_line(tmp_path: Path) -> None:
    r = _cli_without(("sklearn", "mlflow"), "demo", "--data-dir", str(tmp_path))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "`modelplane demo` needs the CLI's demo extra (missing: sklearn, mlflow): "
        "pip install 'modelplane-cli[demo]'"]


def test_up_with_demo_without_the_extra_refuses_before_starting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = _cli_without(("sklearn",), "up", "--demo", "--detach", "--data-dir", str(data))
    assert r.returncode == 2
    assert "pip install 'modelplane-cli[demo]'" in r.stderr and "Traceback" not in r.stderr
    assert not data.exists()  # nothing was started, no keys or databases created
