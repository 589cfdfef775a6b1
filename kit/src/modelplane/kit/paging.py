"""Page sizes and page tokens for every List RPC (AIP-158), one format and one reason.

A List request carries ``page_size`` (0 = the default, capped at the maximum,
negative = ``INVALID_PAGE_SIZE``) and ``page_token`` ("" = the first page); the
response's ``next_page_token`` is "" on the last page.

A token is opaque to callers. Inside, it is URL-safe base64 without padding of
the JSON object ``{"q": <query fingerprint>, "p": <position>}``:

- ``p`` is where the next page starts, in whatever JSON shape the list needs:
  an offset (``17``), a keyset (``["2026-01-01T00:00:00", "id-9"]``), an
  engine's own token (MLflow's), a name;
- ``q`` is a short hash of the query that produced the token (the filters and
  a ``kind`` naming the list), so a token replayed with other filters is refused
  instead of silently skipping or repeating rows.

Every bad token -- not base64, not ours, of another query, a position of the
wrong shape -- is ``InvalidArgument`` with reason ``INVALID_PAGE_TOKEN`` and a
``BadRequest`` field violation on the token's field. This is the registry's
earlier format, so its outstanding tokens stay valid; the other services'
earlier tokens (short-lived) are refused once and the caller starts again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from modelplane.kit.errors import FieldViolation, InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "INVALID_PAGE_SIZE",
    "INVALID_PAGE_TOKEN",
    "MAX_PAGE_SIZE",
    "decode_offset",
    "decode_page_token",
    "encode_page_token",
    "invalid_page_token",
    "page_of",
    "page_size",
]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"
INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE"

T = TypeVar("T")
Query = Mapping[str, Any]


def page_size(requested: int, *, default: int = DEFAULT_PAGE_SIZE,
              maximum: int = MAX_PAGE_SIZE, field: str = "page_size") -> int:
    """The number of items to return for a request's ``page_size``."""
    if requested < 0:
        description = f"must not be negative (got {requested})"
        raise InvalidArgument(f"{field}: {description}", reason=INVALID_PAGE_SIZE,
                              field_violations=[FieldViolation(field, description)])
    return min(requested or default, maximum)


def invalid_page_token(description: str = "not a page token this server issued",
                       field: str = "page_token") -> InvalidArgument:
    """The one error for a page token the server will not honour."""
    return InvalidArgument(f"{field}: {description}", reason=INVALID_PAGE_TOKEN,
                           field_violations=[FieldViolation(field, description)])


def _fingerprint(query: Query | None) -> str:
    raw = json.dumps(dict(query or {}), sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_page_token(position: Any, query: Query | None = None) -> str:
    """The token for the page starting at ``position``; "" when there is none (None or "")."""
    if position is None or position == "":
        return ""
    body = json.dumps({"q": _fingerprint(query), "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(token: str, query: Query | None = None, *,
                      shape: Callable[[Any], T], field: str = "page_token") -> T | None:
    """The position in ``token`` (None for ""), checked against ``query``.

    ``shape`` turns the JSON position into what the caller pages by, raising
    ``ValueError``/``TypeError``/``KeyError``/``IndexError`` if it has the wrong
    shape (e.g. ``int``, or ``lambda p: (str(p[0]), str(p[1]))``).
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        fingerprint, raw = body["q"], body["p"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid_page_token(field=field) from None
    if fingerprint != _fingerprint(query):
        raise invalid_page_token("the page token belongs to a different query (filters changed)",
                                 field)
    if raw is None:
        raise invalid_page_token(field=field)
    try:
        return shape(raw)
    except (ValueError, TypeError, KeyError, IndexError):
        raise invalid_page_token(field=field) from None


def _offset(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(raw)
    return raw


def decode_offset(token: str, query: Query | None = None, *, field: str = "page_token") -> int:
    """The offset in an offset token; 0 for the first page."""
    offset = decode_page_token(token, query, shape=_offset, field=field)
    return offset or 0


def page_of(items: Sequence[T], requested_size: int, token: str, query: Query | None = None, *,
            field: str = "page_token") -> tuple[list[T], str]:
    """One page of an in-memory list and the token of the next page ("" on the last)."""
    size = page_size(requested_size)
    offset = decode_offset(token, query, field=field)
    chunk = list(items[offset:offset + size])
    more = offset + size < len(items)
    return chunk, encode_page_token(offset + size if more else None, query)
