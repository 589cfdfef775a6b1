"""``google.api.http`` path templates: parse, match a request path, render for OpenAPI.

Grammar (google/api/http.proto)::

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

A variable without ``=`` matches one segment (``{name}`` = ``{name=*}``);
``**`` matches one segment or more, slashes included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote


class TemplateSyntaxError(ValueError):
    """A ``google.api.http`` path template that does not follow the grammar."""


@dataclass(frozen=True)
class PathVariable:
    field_path: str
    """Dotted proto field path the captured value is bound to (``deployment.name``)."""
    pattern: str
    """The variable's own segments, ``*`` when omitted (``models/*``)."""
    multi_segment: bool
    """True when the value may span several segments (contains ``/`` or ``**``)."""


@dataclass(frozen=True)
class PathTemplate:
    template: str
    variables: tuple[PathVariable, ...]
    verb: str
    literal_segments: int
    regex: re.Pattern[str]
    openapi_path: str
    """The template with each variable as ``{field_path}`` (OpenAPI path key; dots of nested
    fields become ``_``, since tools expand ``{a.b}`` as attribute access)."""

    def match(self, path: str, *, decoded: bool = False) -> dict[str, str] | None:
        """The variable values when ``path`` matches, else None. ``path`` is the raw
        (percent-encoded) path and values are decoded, unless ``decoded`` says it
        already is."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        if decoded:
            return dict(zip((v.field_path for v in self.variables), found.groups(), strict=True))
        return {var.field_path: unquote(value)
                for var, value in zip(self.variables, found.groups(), strict=True)}

    def value_pattern(self, var: PathVariable) -> str:
        """A regular expression for the values of ``var`` (for OpenAPI)."""
        regex, _ = _segments_regex(var.pattern.split("/"))
        return f"^{regex}$"

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key: templates with a verb, more literal segments, fewer ``**`` first."""
        deep = sum(1 for v in self.variables if "**" in v.pattern) + self.template.count("/**")
        return (0 if self.verb else 1, -self.literal_segments, deep)


_SEGMENT_PATTERN = {"*": "[^/]+", "**": ".+"}


def _segments_regex(segments: list[str]) -> tuple[str, int]:
    parts: list[str] = []
    literals = 0
    for seg in segments:
        if seg in _SEGMENT_PATTERN:
            parts.append(_SEGMENT_PATTERN[seg])
        elif not seg or any(c in seg for c in "{}*="):
            raise TemplateSyntaxError(f"bad segment {seg!r}")
        else:
            parts.append(re.escape(seg))
            literals += 1
    return "/".join(parts), literals


def _split_top_level(path: str) -> list[str]:
    """Split on '/' outside braces."""
    out: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in path:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise TemplateSyntaxError("unbalanced '}'")
        if ch == "/" and depth == 0:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise TemplateSyntaxError("unbalanced '{'")
    out.append("".join(current))
    return out


def openapi_parameter_name(field_path: str) -> str:
    """The OpenAPI path parameter name of a variable: ``deployment.name`` -> ``deployment_name``."""
    return field_path.replace(".", "_")


_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def parse_template(template: str) -> PathTemplate:
    if not template.startswith("/"):
        raise TemplateSyntaxError(f"{template!r}: a path template starts with '/'")
    body = template[1:]
    verb = ""
    last_slash = body.rfind("/")
    tail = body[last_slash + 1:]
    if ":" in tail and not ("{" in tail and tail.rfind(":") < tail.rfind("}")):
        cut = tail.rfind(":")
        verb = tail[cut + 1:]
        body = body[: last_slash + 1 + cut]
        if not verb:
            raise TemplateSyntaxError(f"{template!r}: empty verb")
    regex_parts: list[str] = []
    openapi_parts: list[str] = []
    variables: list[PathVariable] = []
    literals = 0
    for seg in _split_top_level(body):
        if seg.startswith("{"):
            if not seg.endswith("}"):
                raise TemplateSyntaxError(f"{template!r}: bad variable {seg!r}")
            inner = seg[1:-1]
            field_path, eq, pattern = inner.partition("=")
            if not _FIELD_PATH.fullmatch(field_path):
                raise TemplateSyntaxError(f"{template!r}: bad field path {field_path!r}")
            if eq and not pattern:
                raise TemplateSyntaxError(f"{template!r}: empty pattern for {field_path!r}")
            pattern = pattern or "*"
            sub_regex, sub_literals = _segments_regex(pattern.split("/"))
            literals += sub_literals
            variables.append(PathVariable(field_path, pattern,
                                          "/" in pattern or "**" in pattern))
            regex_parts.append(f"({sub_regex})")
            openapi_parts.append("{" + openapi_parameter_name(field_path) + "}")
        else:
            seg_regex, seg_literals = _segments_regex([seg])
            literals += seg_literals
            regex_parts.append(seg_regex)
            openapi_parts.append(seg)
    regex = "/" + "/".join(regex_parts) + (":" + re.escape(verb) if verb else "")
    openapi_path = "/" + "/".join(openapi_parts) + (":" + verb if verb else "")
    return PathTemplate(template=template, variables=tuple(variables), verb=verb,
                        literal_segments=literals, regex=re.compile(regex),
                        openapi_path=openapi_path)
