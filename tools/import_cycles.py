"""Find import cycles among the modules of each modelplane package, statically.

Every ``import`` and ``from ... import`` counts wherever it is written: at the
top, under ``if TYPE_CHECKING:`` and inside a function. A cycle of any of them
means a function or type lives in the wrong module (issue #16), even when the
lazy import keeps Python from failing at import time.

Packages are the workspace's source trees (kit, gateway, cli, each service,
contracts excepted: generated). Prints each cycle as ``a -> b -> a`` with the
file and line of every edge, and exits 1 when there is one.

    uv run python tools/import_cycles.py            # every package
    uv run python tools/import_cycles.py kit/src    # the packages under a path
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: source roots of the workspace's hand-written packages
SOURCE_ROOTS = ("kit/src", "gateway/src", "cli/src", "services/*/src")
#: cycles known and left on purpose, by their exact set of modules (a module that
#: joins one makes it a new cycle), with the reason
ALLOWED: dict[frozenset[str], str] = {}


def package_dirs(roots: list[Path]) -> list[Path]:
    """``src/modelplane/<pkg>`` directories under the given source roots."""
    out = []
    for root in roots:
        ns = root / "modelplane"
        if ns.is_dir():
            # services are namespace packages (their contracts' v1 lives in protos/)
            out += sorted(p for p in ns.iterdir() if p.is_dir() and any(p.rglob("*.py")))
    return out


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.Module, name: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module name an import statement of ``name`` may refer to, with its line.
    ``from a import b`` yields ``a`` and ``a.b`` (b may be a submodule)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:
                yield f"{target}.{alias.name}", node.lineno


def graph(pkg: Path) -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    """Edges module -> {imported module of the same package: line}."""
    src = pkg.parent.parent
    files = {module_name(p, src): p for p in sorted(pkg.rglob("*.py"))}
    edges: dict[str, dict[str, int]] = {m: {} for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, line in imported(tree, mod, path.name == "__init__.py"):
            # an import of a.b.c runs a/__init__ and a/b/__init__ too, but those are
            # the package's public face; the edge that matters is to the module named
            if target in files and target != mod:
                edges[mod].setdefault(target, line)
    return edges, files


def components(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comps


def shortest_cycle(edges: dict[str, dict[str, int]], comp: list[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v]):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if w in members and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def main(argv: list[str]) -> int:
    roots = ([Path(a).resolve() for a in argv] if argv else
             sorted(p for pattern in SOURCE_ROOTS for p in ROOT.glob(pattern)))
    found = 0
    for pkg in package_dirs(roots):
        edges, files = graph(pkg)
        for comp in components(edges):
            cycle = shortest_cycle(edges, comp)
            reason = ALLOWED.get(frozenset(comp))
            print(f"import cycle in modelplane.{pkg.name}: {' -> '.join(cycle)}"
                  + (f" (allowed: {reason})" if reason else ""))
            for a, b in itertools.pairwise(cycle):
                rel = files[a].relative_to(ROOT) if files[a].is_relative_to(ROOT) else files[a]
                print(f"  {rel}:{edges[a][b]}: imports {b}")
            if len(comp) > len(cycle) - 1:
                print(f"  (and through {', '.join(sorted(set(comp) - set(cycle)))})")
            found += reason is None
    if found:
        print(f"{found} import cycle(s); move the function or type to where it belongs")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
