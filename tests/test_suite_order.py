"""The suite's own order (root ``conftest.py``): the long modules are collected first,
longest first, so the parallel workers start them at once; a renamed long module would
silently lose its place, so each one named must exist."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _long_modules() -> dict[str, int]:
    """The root conftest's LONG_MODULES, read from its source (executing the conftest again
    would redo its effects on this process's environment)."""
    tree = ast.parse((ROOT / "conftest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id == "LONG_MODULES" and node.value is not None:
            return dict(ast.literal_eval(node.value))
    raise AssertionError("conftest.py has no LONG_MODULES")


def test_every_long_module_named_exists() -> None:
    missing = [path for path in _long_modules() if not (ROOT / path).is_file()]
    assert not missing, f"LONG_MODULES names files that are not there: {missing}"


def test_long_modules_are_collected_first_longest_first() -> None:
    long = _long_modules()
    e2e, cli = "tests/test_lifecycle_e2e.py", "tests/test_platform_cli.py"
    assert long[e2e] > long[cli]
    # given in the opposite order, with a short module before both and one with more tests
    # than either after them
    args = ["tests/test_import_cycles.py", cli, e2e, "tests/test_deploy_manifests.py"]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
                          "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    files: list[str] = []
    for line in out.stdout.splitlines():
        path = line.split("::", 1)[0]
        if "::" in line and path not in files:
            files.append(path)
    assert files == [e2e, cli, "tests/test_deploy_manifests.py",
                     "tests/test_import_cycles.py"], out.stdout
