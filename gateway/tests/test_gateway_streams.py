"""Server streams as newline-delimited JSON; client streams from a JSON array or NDJSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_server_stream_is_ndjson_with_one_result_per_message(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/widgets:watch", params={"count": 3})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = _lines(r.text)
    assert [line["result"]["sequence"] for line in lines] == [0, 1, 2]
    assert lines[2]["result"]["widget"]["name"] == "w2"


async def test_server_stream_failing_midway_ends_with_an_error_line(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/widgets:watch", params={"count": 5, "fail_after": 2})
    assert r.status_code == 200
    lines = _lines(r.text)
    assert [list(line) for line in lines] == [["result"], ["result"], ["error"]]
    error = lines[-1]["error"]
    assert error["code"] == 14 and error["message"] == "widget feed went away"
    assert error["details"][0]["reason"] == "FEED_DOWN"


async def test_server_stream_failing_before_the_first_message_gets_an_http_status(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/widgets:watch", params={"count": 5, "fail_after": -1})
    assert r.status_code == 400
    assert r.json()["code"] == 9 and r.json()["details"][0]["reason"] == "NOTHING_TO_WATCH"


async def test_empty_server_stream_is_an_empty_200(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/widgets:watch", params={"count": 0})
    assert r.status_code == 200 and r.text == ""


async def test_server_stream_is_delivered_incrementally(stack: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http, \
            http.stream("GET", "/v1/widgets:watch", params={"count": 2, "linger": 30}) as r:
        lines = r.aiter_lines()
        first = json.loads(await asyncio.wait_for(lines.__anext__(), 5))
        second = json.loads(await asyncio.wait_for(lines.__anext__(), 5))
        # Both events arrived while the backend still holds the stream open.
        assert first["result"]["sequence"] == 0 and second["result"]["sequence"] == 1


async def test_client_stream_from_a_json_array(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/widgets:import",
                          json=[{"name": "a"}, {"name": "b", "count": 2}, {"name": "c"}])
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 3, "names": ["a", "b", "c"]}


async def test_client_stream_from_ndjson(client: httpx.AsyncClient) -> None:
    body = b'{"name": "x"}\n\n{"displayName": "y", "name": "y"}\n'
    r = await client.post("/v1/widgets:import", content=body,
                          headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert r.json()["names"] == ["x", "y"]


async def test_client_stream_with_a_bad_element_names_its_index(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/widgets:import", json=[{"name": "a"}, {"name": "b", "count": "x"}])
    assert r.status_code == 400
    violation = r.json()["details"][1]["field_violations"][0]
    assert violation["field"] == "body[1].count"


async def test_client_going_away_cancels_the_service_stream(stack: Any, caplog: Any) -> None:
    before = stack.backend.cancelled_streams
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as http, \
            http.stream("GET", "/v1/widgets:watch", params={"count": 1, "linger": 30}) as r:
        lines = r.aiter_lines()
        assert json.loads(await asyncio.wait_for(lines.__anext__(), 5))["result"]
    # The HTTP connection is closed; the gateway notices and cancels the gRPC stream.
    for _ in range(100):
        if stack.backend.cancelled_streams > before:
            break
        await asyncio.sleep(0.05)
    assert stack.backend.cancelled_streams == before + 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
