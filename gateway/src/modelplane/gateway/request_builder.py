"""HTTP request parts (path variables, query string, JSON body) -> protobuf request.

Everything the caller sends is checked here; anything wrong becomes a
:class:`BadInput` naming the offending field (proto field path, e.g.
``deployment.routes[2].weight``), which the gateway answers with 400 and a
``google.rpc.BadRequest``. Nothing the caller sends reaches a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from modelplane.gateway.catalog import HttpBinding

# Well-known types that have a scalar JSON form and may come from a path or query value.
_SCALAR_WKT = {
    "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
}
_BOOL_WKT = "google.protobuf.BoolValue"
_WKT_ANY_JSON = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
                 "google.protobuf.Any", "google.protobuf.Empty"}

_INT_TYPES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}


@dataclass(frozen=True)
class Violation:
    field: str
    description: str


class BadInput(Exception):
    """The caller's request cannot be turned into a protobuf message."""

    def __init__(self, message: str, violations: Iterable[Violation], *,
                 reason: str = "INVALID_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)
        self.reason = reason


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def field_by_json_key(desc: Descriptor, key: str) -> FieldDescriptor | None:
    """A field by its proto name or its JSON (lowerCamel) name."""
    fd = desc.fields_by_name.get(key)
    if fd is not None:
        return fd
    for candidate in desc.fields:
        if candidate.json_name == key:
            return candidate
    return None


def _is_map(fd: FieldDescriptor) -> bool:
    mt = fd.message_type
    return bool(mt is not None and mt.GetOptions().map_entry)


def _is_repeated(fd: FieldDescriptor) -> bool:
    return bool(fd.is_repeated)


# --------------------------------------------------------------------------- body


def parse_json(data: bytes, where: str) -> Any:
    """Parse a JSON document; malformed JSON becomes a violation on ``where``."""
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise BadInput("request body is not UTF-8 JSON",
                       [Violation(where, "body is not valid UTF-8")],
                       reason="MALFORMED_JSON") from None
    except RecursionError:
        raise BadInput("JSON body nested too deeply",
                       [Violation(where, "JSON nested too deeply")],
                       reason="MALFORMED_JSON") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       [Violation(where, f"malformed JSON: {exc.msg} at line {exc.lineno} "
                                         f"column {exc.colno}")],
                       reason="MALFORMED_JSON") from None


def parse_json_stream(data: bytes, where: str) -> list[Any]:
    """A client-streaming body: one JSON array, or newline-delimited JSON values."""
    text = data.strip()
    if not text:
        return []
    if text.startswith(b"["):
        value = parse_json(text, where)
        if not isinstance(value, list):  # pragma: no cover - '[' always parses to a list
            raise BadInput("expected a JSON array", [Violation(where, "expected a JSON array")])
        return value
    items = []
    for number, line in enumerate(text.split(b"\n"), start=1):
        if line.strip():
            items.append(parse_json(line, f"{where}[line {number}]"))
    return items


# --------------------------------------------------------------------------- scalar values


_ENUM_NUMBER = re.compile(r"-?[0-9]+")


def scalar_from_text(fd: FieldDescriptor, text: str, where: str) -> Any:
    """A path or query string value -> the JSON value json_format expects for ``fd``."""
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        full = fd.message_type.full_name
        if full not in _SCALAR_WKT:
            raise BadInput(f"{where}: a message field cannot be set from a URL value",
                           [Violation(where, f"{full} cannot be set from a URL value; "
                                             "send it in the JSON body")])
        if full == _BOOL_WKT:
            return _bool_from_text(text, where)
        return text
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return _bool_from_text(text, where)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        # ASCII digits only: str.isdigit() also accepts '³' and other digits int() refuses
        if _ENUM_NUMBER.fullmatch(text):
            return int(text)
        return text
    return text  # json_format parses numbers, bytes (base64) and strings from text


def _bool_from_text(text: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadInput(f"{where}: expected true or false",
                   [Violation(where, f"expected true or false, got {text!r}")])


# --------------------------------------------------------------------------- request building


def _walk_path(desc: Descriptor, dotted: str, where: str) -> list[FieldDescriptor]:
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = desc
    for part in dotted.split("."):
        if current is None or (fields and (_is_repeated(fields[-1]))):
            raise BadInput(f"unknown parameter {where!r}",
                           [Violation(where, f"{dotted!r} does not name a field of "
                                             f"{desc.full_name}")], reason="UNKNOWN_FIELD")
        fd = field_by_json_key(current, part)
        if fd is None:
            raise BadInput(f"unknown parameter {where!r}",
                           [Violation(where, f"{desc.full_name} has no field {dotted!r}")],
                           reason="UNKNOWN_FIELD")
        fields.append(fd)
        current = fd.message_type if fd.message_type is not None and \
            fd.message_type.full_name not in _SCALAR_WKT else None
    return fields


def _set_nested(payload: dict[str, Any], fields: list[FieldDescriptor], value: Any,
                where: str, *, append: bool = False) -> None:
    node = payload
    for fd in fields[:-1]:
        child = node.setdefault(fd.name, {})
        if not isinstance(child, dict):
            raise BadInput(f"{where}: conflicting values",
                           [Violation(where, "conflicts with another value for the same field")])
        node = child
    last = fields[-1].name
    if append:
        existing = node.setdefault(last, [])
        if not isinstance(existing, list):  # pragma: no cover - defensive
            raise BadInput(f"{where}: conflicting values",
                           [Violation(where, "conflicts with another value for the same field")])
        existing.append(value)
    else:
        node[last] = value


def _proto_path(fields: list[FieldDescriptor]) -> str:
    return ".".join(fd.name for fd in fields)


class RequestBuilder:
    """Builds the request message of one HTTP binding. Created once per binding."""

    def __init__(self, binding: HttpBinding) -> None:
        self.binding = binding
        self.request_desc: Descriptor = binding.method.request_class.DESCRIPTOR
        self.body_where = binding.body if binding.body not in ("", "*") else "body"
        self._body_fields = (_walk_path(self.request_desc, binding.body, binding.body)
                             if binding.body not in ("", "*") else [])
        self._path_fields = {var.field_path: _walk_path(self.request_desc, var.field_path,
                                                        var.field_path)
                             for var in binding.template.variables}
        self._bound = {var.field_path for var in binding.template.variables}
        if binding.body not in ("", "*"):
            self._bound.add(binding.body)
        self._field_masks = list(_field_mask_paths(self.request_desc))

    # ------------------------------------------------------------------ public

    def build(self, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
              body: bytes | None) -> Message:
        payload = self._payload(path_values, query, self._body_value(body))
        return self._to_message(payload)

    def build_stream(self, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
                     body: bytes | None) -> list[Message]:
        """Client streaming: every element of a JSON array / NDJSON body is one request."""
        items = parse_json_stream(body or b"", self.body_where)
        query = list(query)
        messages = []
        for index, item in enumerate(items):
            try:
                payload = self._payload(path_values, query, item)
                messages.append(self._to_message(payload))
            except BadInput as exc:
                prefix = f"{self.body_where}[{index}]"
                raise BadInput(f"{prefix}: {exc.message}",
                               [Violation(_join(prefix, v.field) if v.field != "body" else prefix,
                                          v.description) for v in exc.violations],
                               reason=exc.reason) from None
        return messages

    # ------------------------------------------------------------------ steps

    def _body_value(self, body: bytes | None) -> Any:
        if self.binding.body == "":
            return None
        if not body or not body.strip():
            return {} if self.binding.body == "*" else None
        return parse_json(body, self.body_where)

    def _payload(self, path_values: Mapping[str, str], query: Iterable[tuple[str, str]],
                 body_value: Any) -> dict[str, Any]:
        payload: dict[str, Any]
        if self.binding.body == "*":
            if not isinstance(body_value, dict):
                raise BadInput("the request body must be a JSON object",
                               [Violation("body", "expected a JSON object, got "
                                                  f"{_json_type(body_value)}")])
            payload = body_value
        else:
            payload = {}
            if body_value is not None:
                target = self._body_fields[-1]
                if target.message_type is not None and not _is_repeated(target) and \
                        target.message_type.full_name not in _SCALAR_WKT | _WKT_ANY_JSON and \
                        not isinstance(body_value, dict):
                    raise BadInput("the request body must be a JSON object",
                                   [Violation(self.body_where, "expected a JSON object, got "
                                                               f"{_json_type(body_value)}")])
                _set_nested(payload, self._body_fields, body_value, self.body_where)
        for key, text in query:
            self._apply_query(payload, key, text)
        for field_path, text in path_values.items():
            fields = self._path_fields[field_path]
            _set_nested(payload, fields, scalar_from_text(fields[-1], text, field_path),
                        field_path)
        return payload

    def _apply_query(self, payload: dict[str, Any], key: str, text: str) -> None:
        if self.binding.body == "*":
            raise BadInput(f"unexpected query parameter {key!r}",
                           [Violation(key, "this route takes every field in the JSON body; "
                                           "query parameters are not accepted")],
                           reason="UNKNOWN_FIELD")
        fields = _walk_path(self.request_desc, key, key)
        dotted = _proto_path(fields)
        for bound in self._bound:
            if dotted == bound or dotted.startswith(bound + "."):
                raise BadInput(f"query parameter {key!r} is bound by the path or body",
                               [Violation(key, f"{bound!r} is set by the "
                                               f"{'body' if bound == self.binding.body else 'path'}"
                                               "; it cannot also come from the query")])
        last = fields[-1]
        if _is_map(last):
            raise BadInput(f"map field {key!r} cannot be set from the query",
                           [Violation(key, "map fields cannot be set from a query parameter")])
        value = scalar_from_text(last, text, dotted)
        _set_nested(payload, fields, value, dotted, append=_is_repeated(last))

    def _to_message(self, payload: dict[str, Any]) -> Message:
        for path in self._field_masks:
            _normalise_field_mask(payload, path)
        message = self.binding.method.request_class()
        try:
            json_format.ParseDict(payload, message)
        except json_format.ParseError as exc:
            try:
                found = find_violations(payload, self.request_desc)
            except RecursionError:
                found = []
            if not found:
                found = [Violation(self.body_where, _first_line(str(exc)))]
            head = found[0]
            raise BadInput(f"{head.field}: {head.description}", found,
                           reason=_reason_of(found)) from None
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise BadInput(f"invalid request: {_first_line(str(exc))}",
                           [Violation(self.body_where, _first_line(str(exc)))]) from None
        return message


def _reason_of(violations: list[Violation]) -> str:
    if violations and violations[0].description.startswith("unknown field"):
        return "UNKNOWN_FIELD"
    return "INVALID_FIELD_VALUE"


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0][:500]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------- FieldMask input


def _field_mask_paths(desc: Descriptor, depth: int = 0) -> Iterable[tuple[str, ...]]:
    """Paths (proto names) from the request root to singular FieldMask fields."""
    if depth > 3:
        return
    for fd in desc.fields:
        mt = fd.message_type
        if mt is None or _is_repeated(fd):
            continue
        if mt.full_name == "google.protobuf.FieldMask":
            yield (fd.name,)
        elif not mt.full_name.startswith("google.protobuf."):
            for rest in _field_mask_paths(mt, depth + 1):
                yield (fd.name, *rest)


def _to_camel(path: str) -> str:
    out = []
    for part in path.split("."):
        head, *tail = part.split("_")
        out.append(head + "".join(t[:1].upper() + t[1:] for t in tail))
    return ".".join(out)


def _normalise_field_mask(payload: dict[str, Any], path: tuple[str, ...]) -> None:
    """Accept ``update_mask`` as "a_b,c.d_e" or ["a_b", ...] as well as the canonical
    lowerCamel "aB,c.dE" (json_format only takes the latter)."""
    node: Any = payload
    fd_names = path
    for name in fd_names[:-1]:
        if not isinstance(node, dict):
            return
        node = node.get(name, node.get(_to_camel(name)))
    if not isinstance(node, dict):
        return
    for key in (fd_names[-1], _to_camel(fd_names[-1])):
        value = node.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if isinstance(value, str):
            node[key] = ",".join(_to_camel(p.strip()) for p in value.split(",") if p.strip())


# --------------------------------------------------------------------------- error location


def find_violations(value: Any, desc: Descriptor, prefix: str = "",
                    limit: int = 20) -> list[Violation]:
    """Where a JSON value does not fit a message type. Run only after json_format failed,
    to name the offending fields precisely (json_format's own messages do not)."""
    out: list[Violation] = []
    _check_message(value, desc, prefix, out, limit)
    return out


def _check_message(value: Any, desc: Descriptor, prefix: str, out: list[Violation],
                   limit: int) -> None:
    full = desc.full_name
    if full in _SCALAR_WKT or full in _WKT_ANY_JSON:
        _check_with_json_format(value, desc, prefix or "body", out)
        return
    if not isinstance(value, dict):
        out.append(Violation(prefix or "body", f"expected a JSON object, got {_json_type(value)}"))
        return
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        if len(out) >= limit:
            return
        fd = field_by_json_key(desc, key) if isinstance(key, str) else None
        if fd is None:
            out.append(Violation(_join(prefix, str(key)), f"unknown field {key!r} in {full}"))
            continue
        where = _join(prefix, fd.name)
        if item is None:
            continue
        if fd.containing_oneof is not None:
            other = oneofs.get(fd.containing_oneof.name)
            if other is not None:
                out.append(Violation(where, f"only one of the oneof {fd.containing_oneof.name!r} "
                                            f"may be set; {other!r} is set too"))
                continue
            oneofs[fd.containing_oneof.name] = fd.name
        if _is_map(fd):
            if not isinstance(item, dict):
                out.append(Violation(where, f"expected a JSON object (map), got "
                                            f"{_json_type(item)}"))
                continue
            key_fd = fd.message_type.fields_by_name["key"]
            val_fd = fd.message_type.fields_by_name["value"]
            for map_key, map_value in item.items():
                sub = f"{where}[{map_key!r}]" if isinstance(map_key, str) else f"{where}[?]"
                if key_fd.type != FieldDescriptor.TYPE_STRING:
                    _check_scalar(map_key, key_fd, sub, out, map_key=True)
                _check_single(map_value, val_fd, sub, out, limit)
        elif _is_repeated(fd):
            if not isinstance(item, list):
                out.append(Violation(where, f"expected a JSON array, got {_json_type(item)}"))
                continue
            for index, element in enumerate(item):
                _check_single(element, fd, f"{where}[{index}]", out, limit)
        else:
            _check_single(item, fd, where, out, limit)


def _check_single(value: Any, fd: FieldDescriptor, where: str, out: list[Violation],
                  limit: int) -> None:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        if value is None and fd.message_type.full_name != "google.protobuf.Value":
            return
        _check_message(value, fd.message_type, where, out, limit)
    else:
        _check_scalar(value, fd, where, out)


def _check_with_json_format(value: Any, desc: Descriptor, where: str,
                            out: list[Violation]) -> None:
    from google.protobuf import message_factory

    try:
        json_format.ParseDict(value, message_factory.GetMessageClass(desc)())
    except (json_format.ParseError, ValueError, TypeError) as exc:
        out.append(Violation(where, f"invalid {desc.full_name}: {_first_line(str(exc))}"))


def _check_scalar(value: Any, fd: FieldDescriptor, where: str, out: list[Violation],
                  map_key: bool = False) -> None:
    t = fd.type
    if t == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            out.append(Violation(where, f"expected a string, got {_json_type(value)}"))
    elif t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool) and not (map_key and value in ("true", "false")):
            out.append(Violation(where, f"expected true or false, got {_json_type(value)}"))
    elif t in _INT_TYPES:
        low, high = _INT_TYPES[t]
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.strip()) if value.strip() == value else None
            except ValueError:
                number = None
        if number is None:
            out.append(Violation(where, f"expected an integer, got {_describe(value)}"))
        elif not low <= number <= high:
            out.append(Violation(where, f"{number} is out of range [{low}, {high}]"))
    elif t in _FLOAT_TYPES:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
        if isinstance(value, str):
            if value in ("NaN", "Infinity", "-Infinity"):
                ok = True
            else:
                try:
                    ok = math.isfinite(float(value))
                except ValueError:
                    ok = False
        if isinstance(value, float) and not math.isfinite(value):
            out.append(Violation(where, "number out of range; send \"Infinity\", "
                                        "\"-Infinity\" or \"NaN\" as strings"))
            return
        if not ok:
            out.append(Violation(where, f"expected a number, got {_describe(value)}"))
    elif t == FieldDescriptor.TYPE_BYTES:
        if not isinstance(value, str):
            out.append(Violation(where, f"expected base64 text, got {_json_type(value)}"))
        else:
            try:
                padded = value + "=" * (-len(value) % 4)
                base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError):
                out.append(Violation(where, "expected base64 text"))
    elif t == FieldDescriptor.TYPE_ENUM:
        enum = fd.enum_type
        if isinstance(value, str):
            if value not in enum.values_by_name:
                names = ", ".join(enum.values_by_name)
                out.append(Violation(where, f"{value!r} is not a {enum.full_name} value "
                                            f"(one of {names})"))
        elif isinstance(value, int) and not isinstance(value, bool):
            if not -(2**31) <= value < 2**31:
                out.append(Violation(where, f"{value} is out of range for an enum"))
        else:
            out.append(Violation(where, f"expected an enum name, got {_json_type(value)}"))


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, float):
        return f"the number {value}"
    return _json_type(value)
