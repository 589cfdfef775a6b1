"""Find the HTTP binding of a request: method + path -> binding and path variables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import unquote

from modelplane.gateway.catalog import HttpBinding


def _literal_prefix(template: str) -> tuple[str, ...]:
    """Up to two leading literal segments of a template (verb stripped)."""
    out: list[str] = []
    for seg in template[1:].split("/")[:2]:
        if "{" in seg or "*" in seg:
            break
        out.append(seg.split(":", 1)[0])
        if ":" in seg:
            break
    return tuple(out)


class Router:
    """Bindings bucketed by HTTP method and leading literal segments.

    Within a bucket, templates are tried most specific first: those with a
    custom verb, then those with more literal segments (so
    ``/v1/models/{name}:resolve`` wins over ``/v1/models/{name}``).
    """

    def __init__(self, bindings: Iterable[HttpBinding]) -> None:
        buckets: dict[tuple[str, tuple[str, ...]], list[HttpBinding]] = defaultdict(list)
        self._methods: set[str] = set()
        for binding in bindings:
            buckets[(binding.http_method, _literal_prefix(binding.template.template))].append(
                binding)
            self._methods.add(binding.http_method)
        self._lists: dict[tuple[str, ...], list[HttpBinding]] = {}
        for (method, prefix) in list(buckets):
            for depth in range(len(prefix), -1, -1):
                key = (method, *prefix[:depth])
                if key in self._lists:
                    continue
                merged = [b for (m, p), items in buckets.items()
                          if m == method and len(p) <= depth and p == prefix[:len(p)]
                          for b in items]
                merged.sort(key=lambda b: b.template.specificity)
                self._lists[key] = merged

    def _candidates(self, method: str, path: str) -> list[HttpBinding]:
        segs = path[1:].split("/", 2)
        first = segs[0].split(":", 1)[0]
        if len(segs) > 1:
            second = segs[1].split(":", 1)[0]
            found = self._lists.get((method, first, second))
            if found is not None:
                return found
        found = self._lists.get((method, first))
        if found is not None:
            return found
        return self._lists.get((method,), [])

    def find(self, method: str, path: str) -> tuple[HttpBinding, dict[str, str]] | None:
        """The binding for a raw (percent-encoded) path.

        Multi-segment variables (``{name=models/*/versions/*}``) are matched on the raw
        path first; when that fails and the path has escapes, on the decoded path, so
        clients that percent-encode the slashes of a resource name (most OpenAPI
        clients do) reach the same route.
        """
        for binding in self._candidates(method, path):
            values = binding.template.match(path)
            if values is not None:
                return binding, values
        if "%2" in path or "%3" in path:  # an escaped '/' (%2F) or ':' (%3A)
            decoded = unquote(path)
            for binding in self._candidates(method, decoded):
                if any(v.multi_segment for v in binding.template.variables) or \
                        binding.template.verb:
                    values = binding.template.match(decoded, decoded=True)
                    if values is not None:
                        return binding, values
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods that do have a binding for ``path`` (for 405 answers)."""
        return sorted(m for m in self._methods if self.find(m, path) is not None)
