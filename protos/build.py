"""Build tool for the contracts: generate Python stubs, check they are fresh, buf lint/breaking.

    uv run python protos/build.py generate          # write protos/src/modelplane/**/_pb2*.py
    uv run python protos/build.py check             # fail if generated code is stale
    uv run python protos/build.py lint              # buf lint (offline, via a descriptor image)
    uv run python protos/build.py breaking          # buf breaking against the committed baseline
    uv run python protos/build.py breaking REF      # buf breaking against git REF instead
    uv run python protos/build.py baseline          # accept the current API: rewrite the baseline

The API baseline, protos/baseline.binpb, is a descriptor image of the contracts
as last released. CI compares the working tree with it, so a breaking change
fails even after it is committed (comparing with `main` cannot: once merged,
main is the change). Update it on purpose, in its own commit, when a new API
is accepted (a release, or a deliberate break in a new package version).

buf comes from the npm package @bufbuild/buf; `lint`/`breaking` install it into
.tools/ on first use. The Buf registry is not reachable here, so both run on a
descriptor image built with grpc_tools.protoc, with googleapis-common-protos and
grpc_tools' bundled well-known types as include paths.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "src"
TOOLS = ROOT / ".tools"
BASELINE = HERE / "baseline.binpb"


def _include_paths() -> list[str]:
    import google.api  # googleapis-common-protos ships the .proto sources
    import grpc_tools

    site = Path(google.api.__path__[0]).parent.parent
    return [str(site), str(Path(grpc_tools.__file__).parent / "_proto")]


def proto_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "modelplane").rglob("*.proto"))


def _protoc(args: list[str]) -> None:
    from grpc_tools import protoc

    code = protoc.main(["grpc_tools.protoc", *args])
    if code != 0:
        raise SystemExit(f"protoc failed ({code}): {' '.join(args)}")


def generate(src_root: Path = HERE, out: Path = OUT) -> None:
    files = proto_files(src_root)
    incs = [f"-I{src_root}", *(f"-I{p}" for p in _include_paths())]
    out.mkdir(parents=True, exist_ok=True)
    # Remove stale generated files so a deleted .proto leaves nothing behind.
    for old in out.rglob("*_pb2*.py*"):
        old.unlink()
    _protoc([*incs, f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files])
    # py.typed markers for the generated packages (PEP 561).
    for pkg in {(out / f).parent for f in files}:
        (pkg / "py.typed").touch()


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(HERE, fresh)
        stale = []
        for path in sorted(fresh.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(fresh)
            current = OUT / rel
            if not current.exists() or not filecmp.cmp(path, current, shallow=False):
                stale.append(str(rel))
        committed = {p.relative_to(OUT) for p in OUT.rglob("*_pb2*.py*")}
        extra = sorted(str(p) for p in committed if not (fresh / p).exists())
    if stale or extra:
        print("generated code is stale; run `uv run python protos/build.py generate`",
              file=sys.stderr)
        for name in stale + extra:
            print(f"  {name}", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


def image(src_root: Path, out_file: Path, *, source_info: bool = True) -> None:
    incs = [f"-I{src_root}", *(f"-I{p}" for p in _include_paths())]
    info = ["--include_source_info"] if source_info else []
    _protoc([*incs, "--include_imports", *info,
             f"--descriptor_set_out={out_file}", *proto_files(src_root)])


def buf_binary() -> str:
    found = shutil.which("buf")
    if found:
        return found
    local = TOOLS / "node_modules" / ".bin" / "buf"
    if not local.exists():
        TOOLS.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(TOOLS), "@bufbuild/buf@1"],
                       check=True)
    return str(local)


def lint() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        img = Path(tmp) / "image.binpb"
        image(HERE, img)
        # Run from protos/ so buf.yaml (the lint configuration) applies.
        res = subprocess.run([buf_binary(), "lint", str(img), "--path", "modelplane"], cwd=HERE,
                         check=False)
    if res.returncode == 0:
        print("buf lint: clean")
    return res.returncode


def _buf_breaking(new_image: Path, against: Path, what: str) -> int:
    res = subprocess.run([buf_binary(), "breaking", str(new_image), "--against", str(against),
                          "--path", "modelplane"], cwd=HERE, check=False)
    if res.returncode == 0:
        print(f"buf breaking: no breaking change against {what}")
    return res.returncode


def baseline() -> int:
    """Rewrite protos/baseline.binpb from the working tree (no source info: smaller, and
    comment edits do not churn it)."""
    image(HERE, BASELINE, source_info=False)
    print(f"wrote {BASELINE.relative_to(ROOT)}; commit it with the API change it accepts")
    return 0


def breaking_baseline() -> int:
    if not BASELINE.exists():
        print(f"buf breaking: {BASELINE.relative_to(ROOT)} is missing; "
              "run `uv run python protos/build.py baseline`", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp) / "new.binpb"
        image(HERE, new)
        return _buf_breaking(new, BASELINE, f"the baseline ({BASELINE.relative_to(ROOT)})")


def breaking(ref: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "protos/modelplane"],
                                 cwd=ROOT, capture_output=True, text=True, check=False)
        if listing.returncode != 0 or not listing.stdout.strip():
            print(f"buf breaking: {ref} has no contracts yet; nothing to compare")
            return 0
        old_root = tmpd / "old"
        for name in listing.stdout.split():
            if not name.endswith(".proto"):
                continue
            blob = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=ROOT, check=True,
                                  capture_output=True).stdout
            dest = old_root / Path(name).relative_to("protos")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
        image(old_root, tmpd / "old.binpb")
        image(HERE, tmpd / "new.binpb")
        return _buf_breaking(tmpd / "new.binpb", tmpd / "old.binpb", ref)


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "generate"
    if cmd == "generate":
        generate()
        return 0
    if cmd == "check":
        return check()
    if cmd == "lint":
        return lint()
    if cmd == "breaking":
        ref = argv[1] if len(argv) > 1 else os.environ.get("MODELPLANE_BREAKING_REF", "")
        return breaking(ref) if ref else breaking_baseline()
    if cmd == "baseline":
        return baseline()
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
