"""tools/import_cycles.py, the CI check that no package's modules import each
other in a cycle: it finds type-only and relative cycles, and the tree has none
besides the allowed ones."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools/import_cycles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_cycles"] = module
    spec.loader.exec_module(module)
    return module


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    pkg = tmp_path / "src" / "modelplane" / "toy"
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "src"


def test_a_type_only_cycle_through_a_relative_import_fails(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    src = _package(tmp_path, {
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "b.py": "from modelplane.toy import c\n",
        "c.py": "def f():\n    from modelplane.toy.a import A\n",
        "d.py": "from modelplane.toy.a import A\n",  # imports into the cycle: not part of it
    })
    assert _tool().main([str(src)]) == 1
    out = capsys.readouterr().out
    assert "modelplane.toy.a -> modelplane.toy.b -> modelplane.toy.c -> modelplane.toy.a" in out
    assert "modelplane.toy.d" not in out


def test_a_package_without_cycles_passes(tmp_path: Path) -> None:
    src = _package(tmp_path, {"a.py": "from . import b\n", "b.py": "import json\n",
                              "sub/c.py": "from ..a import x\n"})
    assert _tool().main([str(src)]) == 0


def test_the_workspace_has_no_cycle_but_the_allowed_ones() -> None:
    assert _tool().main([]) == 0
