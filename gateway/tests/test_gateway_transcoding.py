"""HTTP -> gRPC transcoding through the real gateway and a real gRPC backend."""

from __future__ import annotations

import base64
from typing import Any

import httpx


async def test_get_binds_a_multi_segment_path_variable(client: httpx.AsyncClient,
                                                       stack: Any) -> None:
    r = await client.get("/v1/shelves/s1/widgets/w%201")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "shelves/s1/widgets/w 1"
    # proto3 JSON: int64 as string, enum by name, Timestamp RFC 3339, Duration "90s",
    # Struct as JSON, oneof member, unpopulated fields present.
    assert body["big"] == str(2**40)
    assert body["color"] == "COLOR_BLUE"
    assert body["create_time"] == "2023-11-14T22:13:20Z"
    assert body["ttl"] == "90s"
    assert body["extra"] == {"k": [1.0, "x"]}
    assert body["url"] == "https://example.test/w"
    assert body["active"] is False and body["parts"] == []
    request, _ = stack.backend.last("GetWidget")
    assert request.name == "shelves/s1/widgets/w 1"


async def test_query_parameters_fill_scalars_repeated_enums_nested_and_timestamps(
        client: httpx.AsyncClient, stack: Any) -> None:
    r = await client.get("/v1/shelves/s9/widgets", params=[
        ("page_size", "3"), ("pageToken", "t0"), ("colors", "COLOR_RED"), ("colors", "2"),
        ("filter.prefix", "ab"), ("filter.minCount", "7"), ("active_only", "true"),
        ("since", "2026-01-02T03:04:05Z")])
    assert r.status_code == 200, r.text
    assert len(r.json()["widgets"]) == 3 and r.json()["next_page_token"] == "next"
    request, _ = stack.backend.last("ListWidgets")
    pb2 = stack.contract.pb2
    assert request.shelf == "s9" and request.page_size == 3 and request.page_token == "t0"
    assert list(request.colors) == [pb2.COLOR_RED, pb2.COLOR_BLUE]
    assert request.filter.prefix == "ab" and request.filter.min_count == 7
    assert request.active_only is True
    assert request.since.seconds == 1767323045


async def test_additional_bindings_route_to_the_same_rpc(client: httpx.AsyncClient,
                                                         stack: Any) -> None:
    r = await client.get("/v1/widgets", params={"shelf": "q"})
    assert r.status_code == 200
    assert stack.backend.last("ListWidgets")[0].shelf == "q"
    r = await client.get("/v1/widgets/pages/4")
    assert r.status_code == 200 and len(r.json()["widgets"]) == 4


async def test_body_field_and_query_and_path_combine(client: httpx.AsyncClient,
                                                     stack: Any) -> None:
    widget = {"displayName": "Camel", "count": 4, "big": 5, "weight": "2.5",
              "labels": {"a": "b"}, "parts": [{"width": 1, "height": 2}],
              "parts_by_slot": {"3": {"width": 9}}, "blob": base64.b64encode(b"\x00\xff").decode(),
              "createTime": "2026-11-27T08:00:00.5Z", "ttl": "1.5s", "extra": {"x": None},
              "limit": 12, "color": 1}
    r = await client.post("/v1/shelves/s2/widgets", params={"widget_id": "w7"}, json=widget)
    assert r.status_code == 200, r.text
    request, _ = stack.backend.last("CreateWidget")
    assert request.shelf == "s2" and request.widget_id == "w7"
    w = request.widget
    assert (w.display_name, w.count, w.big, w.weight) == ("Camel", 4, 5, 2.5)
    assert dict(w.labels) == {"a": "b"} and w.parts[0].height == 2
    assert w.parts_by_slot[3].width == 9 and w.blob == b"\x00\xff"
    assert w.create_time.nanos == 500_000_000 and w.ttl.nanos == 500_000_000
    assert w.limit.value == 12 and w.color == stack.contract.pb2.COLOR_RED
    assert r.json()["name"] == "shelves/s2/widgets/w7"


async def test_patch_binds_a_nested_path_field_and_accepts_snake_case_update_mask(
        client: httpx.AsyncClient, stack: Any) -> None:
    r = await client.patch("/v1/shelves/s1/widgets/w2",
                           params={"update_mask": "display_name,size.width"},
                           json={"display_name": "renamed", "size": {"width": 3}})
    assert r.status_code == 200, r.text
    request, _ = stack.backend.last("UpdateWidget")
    assert request.widget.name == "shelves/s1/widgets/w2"
    assert list(request.update_mask.paths) == ["display_name", "size.width"]
    assert r.json()["display_name"] == "renamed"


async def test_body_star_with_custom_verb_and_map(client: httpx.AsyncClient,
                                                  stack: Any) -> None:
    r = await client.post("/v1/shelves/s1/widgets/w3:score",
                          json={"features": [1, 2.5], "named": {"x": 0.5}})
    assert r.status_code == 200, r.text
    assert r.json() == {"score": 4.0, "name": "shelves/s1/widgets/w3"}
    # The verb route wins over the plain resource route for the same prefix.
    assert stack.backend.last("ScoreWidget")[0].name == "shelves/s1/widgets/w3"


async def test_delete_with_query_flag_returns_empty_object(client: httpx.AsyncClient,
                                                           stack: Any) -> None:
    r = await client.delete("/v1/shelves/s1/widgets/w4", params={"force": "1"})
    assert r.status_code == 200 and r.json() == {}
    assert stack.backend.last("DeleteWidget")[0].force is True


async def test_response_body_returns_one_field_and_double_star_path(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/files/dir/sub/a.txt")
    assert r.status_code == 200
    assert r.json() == {"text": "content of dir/sub/a.txt", "size": 13}


async def test_custom_http_kind_binding(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/echo", json={"text": "hi"})
    assert r.status_code == 200 and r.json()["text"] == "hi"


async def test_unknown_route_is_404_and_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing/here")
    assert r.status_code == 404
    assert r.json()["details"][0]["reason"] == "ROUTE_NOT_FOUND"
    r = await client.put("/v1/shelves/s1/widgets")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "SERVING" and r.json()["services"] == ["gatewaytest"]


async def test_resource_names_with_encoded_slashes_reach_the_same_route(
        client: httpx.AsyncClient, stack: Any) -> None:
    # OpenAPI clients percent-encode path parameters, slashes included.
    r = await client.get("/v1/shelves%2Fs1%2Fwidgets%2Fw9")
    assert r.status_code == 200, r.text
    assert stack.backend.last("GetWidget")[0].name == "shelves/s1/widgets/w9"
    r = await client.post("/v1/shelves%2Fs1%2Fwidgets%2Fw9:score", json={"features": [1]})
    assert r.status_code == 200 and r.json()["name"] == "shelves/s1/widgets/w9"
