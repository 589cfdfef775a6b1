"""Page sizes and page tokens: one format, one reason for every bad token."""

from __future__ import annotations

import base64
import json

import pytest

from modelplane.kit.errors import InvalidArgument
from modelplane.kit.paging import (
    DEFAULT_PAGE_SIZE,
    INVALID_PAGE_SIZE,
    INVALID_PAGE_TOKEN,
    MAX_PAGE_SIZE,
    decode_offset,
    decode_page_token,
    encode_page_token,
    page_of,
    page_size,
)


def test_page_size_defaults_caps_and_refuses_negative() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument) as err:
        page_size(-1)
    assert err.value.reason == INVALID_PAGE_SIZE
    assert err.value.field_violations[0].field == "page_size"


@pytest.mark.parametrize("position", [0, 42, "mlflow-token", ["2026-01-01T00:00:00", "id-9"]])
def test_a_token_round_trips_its_position(position: object) -> None:
    token = encode_page_token(position, {"kind": "runs", "model": "fraud"})
    assert token and "=" not in token
    back = decode_page_token(token, {"model": "fraud", "kind": "runs"}, shape=lambda p: p)
    assert back == position


def test_no_position_is_the_last_page_and_no_token_is_the_first() -> None:
    assert encode_page_token(None) == "" and encode_page_token("") == ""
    assert decode_page_token("", shape=int) is None
    assert decode_offset("") == 0


def test_a_token_replayed_with_other_filters_is_refused() -> None:
    token = encode_page_token(10, {"model": "a"})
    with pytest.raises(InvalidArgument, match="different query") as err:
        decode_offset(token, {"model": "b"})
    assert err.value.reason == INVALID_PAGE_TOKEN


@pytest.mark.parametrize("token", [
    "garbage!!",                                                   # not base64
    base64.urlsafe_b64encode(b"o:12").decode(),                    # an old featurestore token
    base64.urlsafe_b64encode(b"12").decode(),                      # an old offset token
    base64.urlsafe_b64encode(json.dumps({"q": "x"}).encode()).decode(),  # no position
    encode_page_token(-3),                                         # negative offset
    encode_page_token("seven"),                                    # wrong shape
    encode_page_token(True),                                       # a bool is not an offset
])
def test_every_bad_token_is_invalid_page_token_on_its_field(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_offset(token, field="filter.page_token")
    assert err.value.reason == INVALID_PAGE_TOKEN
    assert err.value.field_violations[0].field == "filter.page_token"


def test_registry_tokens_issued_before_the_kit_still_decode() -> None:
    # The registry's format (unpadded base64 of {"q": sha256(query)[:16], "p": position}).
    import hashlib

    query = {"kind": "models", "prefix": "", "tags": {}}
    fingerprint = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    old = base64.urlsafe_b64encode(json.dumps({"q": fingerprint, "p": "abc"}).encode())
    assert decode_page_token(old.decode().rstrip("="), query, shape=str) == "abc"


def test_page_of_walks_an_in_memory_list_to_the_end() -> None:
    items = list(range(7))
    seen: list[int] = []
    token = ""
    while True:
        page, token = page_of(items, 3, token, {"kind": "numbers"})
        seen += page
        if not token:
            break
    assert seen == items
