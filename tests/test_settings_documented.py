"""Every setting a service reads is in its README, and every setting a README's
table names is read by the code (issue #16: settings documented in one place,
checked by a test rather than kept in step by hand).

The code is scanned, not imported: ``env("NAME")`` on a service's settings (or a
reading helper called as ``helper(service, "NAME", ...)``) reads
``MODELPLANE_<SERVICE>_NAME``; a ``"MODELPLANE_..."`` literal names a variable
directly. A README documents a name by writing it in full, or, on a page that
says its prefix (``MODELPLANE_FEATURESTORE_*``), by its suffix in backticks. The
kit's shared settings (``MODELPLANE_DATA_DIR``, keys, TLS, ...) are documented in
``kit/README.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"featurestore": ROOT / "services/featurestore",
            "registry": ROOT / "services/registry",
            "validator": ROOT / "services/validator",
            "serving": ROOT / "services/serving",
            "observability": ROOT / "services/observability",
            "gateway": ROOT / "gateway"}
PREFIXES = tuple(f"MODELPLANE_{s.upper()}_" for s in SERVICES)
#: read by every service through the kit, documented once in kit/README.md
KIT_README = ROOT / "kit/README.md"
#: per-service names the kit builds (``MODELPLANE_<SERVICE>_...``), not read in a service
KIT_BUILT = ("_TARGET", "_ADDR", "_STORAGE_ROOTS", "_STORAGE_BUCKETS")


def _read_names(service: str, src: Path) -> set[str]:
    names: set[str] = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        names.update(f"MODELPLANE_{service.upper()}_{m}"
                     for m in re.findall(r'\benv\(\s*"([A-Z0-9_]+)"', text))
        # helpers that read a number: _number(service, "NAME", ...), _at_least_one(svc, ...)
        names.update(f"MODELPLANE_{service.upper()}_{m}"
                     for m in re.findall(r'\(\s*(?:service|svc)\s*,\s*"([A-Z0-9_]+)"', text))
        names.update(re.findall(r'"(MODELPLANE_[A-Z0-9_]+)"', text))
    return names


def _documented(name: str, service: str, readme: str) -> bool:
    if re.search(rf"\b{name}\b", readme):
        return True
    prefix = f"MODELPLANE_{service.upper()}_"
    if name.startswith(prefix) and prefix in readme:
        suffix = name.removeprefix(prefix)
        return f"`{suffix}`" in readme
    return False


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_setting_read_is_documented(service: str) -> None:
    root = SERVICES[service]
    readme = (root / "README.md").read_text()
    kit = KIT_README.read_text()
    missing = []
    for name in sorted(_read_names(service, root / "src")):
        if name.startswith(PREFIXES) and not name.startswith(f"MODELPLANE_{service.upper()}_"):
            # another service's address or listener, read to reach it: documented there
            owner = next(s for s in SERVICES if name.startswith(f"MODELPLANE_{s.upper()}_"))
            if _documented(name, owner, (SERVICES[owner] / "README.md").read_text()) or \
                    _documented(name, service, readme):
                continue
        elif _documented(name, service, readme) or _documented(name, "kit", kit):
            continue
        missing.append(name)
    assert missing == [], f"{service}: read but not in its README or kit/README.md: {missing}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_setting_in_a_readme_table_is_read(service: str) -> None:
    root = SERVICES[service]
    readme = (root / "README.md").read_text()
    read = _read_names(service, root / "src")
    prefix = f"MODELPLANE_{service.upper()}_"
    tabled = set(re.findall(rf"^\|\s*`({prefix}[A-Z0-9_]+)`", readme, re.MULTILINE))
    stale = sorted(n for n in tabled if n not in read and not n.endswith(KIT_BUILT))
    assert stale == [], f"{service}: documented in a settings table but never read: {stale}"
