"""Bad input never reaches a 500: 400 with a google.rpc.BadRequest naming the field."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _violations(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 3
    bad = [d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert bad, body
    return {v["field"]: v["description"] for v in bad[0]["field_violations"]}


async def test_malformed_json_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/shelves/s/widgets/w:score", content=b'{"features": [1,')
    found = _violations(r)
    assert list(found) == ["body"] and "malformed JSON" in found["body"]
    assert r.json()["details"][0]["reason"] == "MALFORMED_JSON"


async def test_malformed_json_in_a_body_field_names_that_field(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/shelves/s/widgets", content=b"{nope")
    assert list(_violations(r)) == ["widget"]


async def test_unknown_fields_are_named_with_their_path(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/shelves/s/widgets",
                          json={"name": "x", "size": {"width": 1, "depth": 2}, "colour": 1})
    found = _violations(r)
    assert set(found) == {"widget.size.depth", "widget.colour"}
    assert r.json()["details"][0]["reason"] == "UNKNOWN_FIELD"


@pytest.mark.parametrize(("body", "field"), [
    ({"count": "many"}, "widget.count"),
    ({"count": 1.5}, "widget.count"),
    ({"count": 2**40}, "widget.count"),
    ({"big": "12x"}, "widget.big"),
    ({"weight": "heavy"}, "widget.weight"),
    ({"active": "yes"}, "widget.active"),
    ({"color": "COLOR_GREEN"}, "widget.color"),
    ({"tags": "a"}, "widget.tags"),
    ({"tags": ["a", 3]}, "widget.tags[1]"),
    ({"labels": ["a"]}, "widget.labels"),
    ({"labels": {"k": 1}}, "widget.labels['k']"),
    ({"parts": [{"width": 1}, {"width": "w"}]}, "widget.parts[1].width"),
    ({"size": 3}, "widget.size"),
    ({"create_time": "yesterday"}, "widget.create_time"),
    ({"ttl": 5}, "widget.ttl"),
    ({"blob": 5}, "widget.blob"),
    ({"url": "u", "blob": "AAAA"}, "widget.blob"),
    ({"parts_by_slot": {"x": {}}}, "widget.parts_by_slot['x']"),
])
async def test_wrong_types_are_400_naming_the_field(client: httpx.AsyncClient,
                                                    body: dict[str, Any], field: str) -> None:
    r = await client.post("/v1/shelves/s/widgets", json=body)
    assert field in _violations(r)


async def test_body_that_is_not_an_object(client: httpx.AsyncClient) -> None:
    assert "body" in _violations(await client.post("/v1/shelves/s/widgets/w:score", json=[1]))
    assert "widget" in _violations(await client.post("/v1/shelves/s/widgets", json="w"))


async def test_bad_query_and_path_values(client: httpx.AsyncClient) -> None:
    assert "page_size" in _violations(await client.get("/v1/widgets", params={"page_size": "x"}))
    assert "page_size" in _violations(await client.get("/v1/widgets/pages/ten"))
    assert "active_only" in _violations(await client.get("/v1/widgets",
                                                         params={"active_only": "maybe"}))
    assert "colors[0]" in _violations(await client.get("/v1/widgets", params={"colors": "PINK"}))
    # '³' is a digit to str.isdigit() but not to int(): still a 400, not a 500
    assert "colors[0]" in _violations(await client.get("/v1/widgets", params={"colors": "³"}))
    assert "since" in _violations(await client.get("/v1/widgets", params={"since": "soon"}))
    assert "nope" in _violations(await client.get("/v1/widgets", params={"nope": "1"}))
    assert "filter.nope" in _violations(await client.get("/v1/widgets",
                                                         params={"filter.nope": "1"}))
    # A field bound by the path cannot come from the query too.
    assert "shelf" in _violations(await client.get("/v1/shelves/s/widgets",
                                                   params={"shelf": "t"}))
    # A message field cannot come from a query value.
    assert "filter" in _violations(await client.get("/v1/widgets", params={"filter": "x"}))
    # With body "*", everything is in the body.
    assert "x" in _violations(await client.post("/v1/shelves/s/widgets/w:score?x=1", json={}))
    r = await client.get("/v1/widgets", headers={"grpc-timeout": "soon"})
    assert "grpc-timeout" in _violations(r)
    r = await client.get("/v1/widgets", headers={"grpc-timeout": "²S".encode("latin-1")})
    assert "grpc-timeout" in _violations(r)


async def test_oversized_body_declared_by_content_length(client: httpx.AsyncClient,
                                                         stack: Any) -> None:
    before = len(stack.backend.calls)
    big = json.dumps({"features": [1.0] * 20000}).encode()
    assert len(big) > 65536
    r = await client.post("/v1/shelves/s/widgets/w:score", content=big)
    found = _violations(r)
    assert "65536" in found["body"]
    assert r.json()["details"][0]["reason"] == "REQUEST_TOO_LARGE"
    assert len(stack.backend.calls) == before


async def test_oversized_chunked_body(stack: Any) -> None:
    async def chunks() -> Any:
        for _ in range(40):
            yield b" " * 4096

    async with httpx.AsyncClient(base_url=stack.url) as http:
        r = await http.post("/v1/shelves/s/widgets/w:score", content=chunks())
    assert r.status_code == 400
    assert r.json()["details"][0]["reason"] == "REQUEST_TOO_LARGE"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["name", "count", "big", "weight", "active", "color",
                                       "tags", "labels", "size", "parts", "ttl", "create_time",
                                       "extra", "url", "blob", "limit", "parts_by_slot", "x"]),
                      children, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=json_values, query=st.lists(st.tuples(
    st.sampled_from(["widget_id", "widget.count", "nope", "widget", "shelf"]),
    st.text(max_size=5)), max_size=2))
async def test_random_bodies_and_queries_never_cause_a_server_error(
        client: httpx.AsyncClient, body: Any, query: list[tuple[str, str]]) -> None:
    r = await client.post("/v1/shelves/s/widgets", params=query, json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["details"]


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"extra":' + b'{"a":' * 3000 + b"1" + b"}" * 3001,
])
async def test_deeply_nested_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    r = await client.post("/v1/shelves/s/widgets", content=body)
    assert r.status_code == 400, r.text[:300]


async def test_out_of_range_float_literal_is_400_naming_the_field(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/shelves/s/widgets/w:score", content=b'{"features": [1, 1e400]}')
    assert "features[1]" in _violations(r)


@pytest.mark.parametrize(("header", "value"), [
    ("grpc-metadata-x", "\xe9".encode("latin-1")),
    ("x-request-id", "caf\xe9".encode("latin-1")),
    ("grpc-metadata-x!", b"1"),
    ("grpc-metadata-grpc-timeout", b"1S"),
    ("grpc-metadata-x-bin", b"AAAA"),
    ("authorization", b"Bearer " + b"k" * 20000),
    ("grpc-metadata-x", b"v" * 7000),
    ("x-request-id", b"r" * 300),
])
async def test_headers_grpc_cannot_carry_are_400(client: httpx.AsyncClient, header: str,
                                                 value: bytes) -> None:
    r = await client.post("/v1/echo", json={}, headers={header: value})
    assert header in _violations(r)
    assert r.json()["details"][0]["reason"] in ("INVALID_HEADER", "HEADER_TOO_LARGE")


segments = st.one_of(
    st.sampled_from(["v1", "shelves", "widgets", "files", "pages", "s", "w:score", "x:purge",
                     "widgets:watch", "widgets:import", "echo", "%2F", "%ZZ", "%C3%A9", ":", ""]),
    st.text(alphabet="abc019%:._~-", min_size=1, max_size=6))


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(["GET", "POST", "PATCH", "DELETE", "PUT"]),
       path=st.lists(segments, min_size=1, max_size=6),
       query=st.text(alphabet="abcz_.=&%1", max_size=12))
async def test_random_paths_and_queries_never_cause_a_server_error(
        client: httpx.AsyncClient, method: str, path: list[str], query: str) -> None:
    url = "/" + "/".join(path)
    if url.startswith("//"):  # would be read as a URL authority by the client
        url = "/v1" + url
    url += f"?{query}" if query else ""
    r = await client.request(method, url, content=b"{}")
    assert r.status_code < 500, (url, r.status_code, r.text[:300])
    assert r.headers["content-type"] in ("application/json", "application/x-ndjson")


async def test_a_gzip_body_is_not_inflated_so_the_byte_limit_is_the_whole_story(
        client: httpx.AsyncClient, stack: Any) -> None:
    """The gateway never inflates a request body (issue #13: no Content-Encoding support
    on the transcoded routes or on /v2): MODELPLANE_GATEWAY_MAX_BODY_BYTES counts the
    bytes that arrive, and that is all the memory a body takes. A gzip body whose
    inflated form is valid JSON within the limit, and a gzip bomb, are both refused as
    not JSON, and the backend is never called."""
    import gzip

    calls = len(stack.backend.calls)
    small = gzip.compress(json.dumps({"features": [1.0] * 1000}).encode())
    bomb = gzip.compress(b'{"features": [' + b"1," * (25 * 1024 * 1024) + b"1]}")  # 50 MiB
    assert len(bomb) < 65536  # under the stack's limit on the wire
    for body in (small, bomb):
        r = await client.post("/v1/shelves/s/widgets/w:score", content=body,
                              headers={"content-encoding": "gzip",
                                       "content-type": "application/json"})
        assert r.json()["details"][0]["reason"] == "MALFORMED_JSON", r.text
        assert "body" in _violations(r)
    assert len(stack.backend.calls) == calls
