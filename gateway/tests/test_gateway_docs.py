"""``/docs``: the Swagger UI reference, served with its assets by the gateway (no
CDN), driven in headless Chromium over the DevTools protocol: it lists every
service's operations, and "Try it out" with a key pasted into "Authorize" reaches
a real gRPC backend through the gateway."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from modelplane.gateway.app import create_app
from modelplane.gateway.catalog import Catalog, discover_contract_modules
from modelplane.kit.auth import Role, add_key

from .conftest import GatewayServer, gateway_settings

SERVICES = ("FeatureStoreService", "ModelRegistryService", "ValidatorService",
            "ServingService", "ObservabilityService")

chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                              reason="needs Debian's chromium (apt-get install -y chromium)")


@pytest.fixture(scope="module")
async def docs_gateway(stack: Any, tmp_path_factory: pytest.TempPathFactory
                       ) -> AsyncIterator[tuple[str, str]]:
    """Every installed contract (the five services) plus the test contract, whose
    backend is running, behind a gateway that checks keys."""
    keys_file: Path = tmp_path_factory.mktemp("docs-keys") / "api_keys.json"
    key = add_key(keys_file, "reader", Role.READER)
    files = [m.DESCRIPTOR for m in discover_contract_modules()] + [stack.contract.pb2.DESCRIPTOR]
    settings = gateway_settings(stack.backend_address, MODELPLANE_AUTH="on",
                                MODELPLANE_API_KEYS_FILE=str(keys_file))
    async with GatewayServer(create_app(settings, Catalog.from_files(files))) as gw:
        yield gw.url, key


async def test_docs_page_and_assets_are_served_without_a_key_and_without_a_cdn(
        docs_gateway: tuple[str, str]) -> None:
    url, _ = docs_gateway
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "http://" not in page.text and "https://" not in page.text  # nothing remote
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
            r = await http.get(f"/docs/assets/{asset}")
            assert r.status_code == 200 and len(r.content) > 200, asset
        assert (await http.get("/docs/assets/nope.js")).status_code == 404
        # the page is open, the API behind it is not
        assert (await http.get("/v1/widgets")).status_code == 401


class DevTools:
    """A tiny Chrome DevTools Protocol client: one page target, commands by id."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg["result"]  # type: ignore[no-any-return]

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")


@contextlib.asynccontextmanager
async def headless_chromium(profile: Path) -> AsyncIterator[DevTools]:
    proc = await asyncio.create_subprocess_exec(
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", "--window-size=1280,1400",
         f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "--remote-allow-origins=*", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# Typing into React inputs: the value setter of the prototype, then an input event.
_TYPE = """(sel, text) => {{
  const el = document.querySelector(sel);
  if (!el) return false;
  const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  set.call(el, text);
  el.dispatchEvent(new Event('input', {{bubbles: true}}));
  el.dispatchEvent(new Event('change', {{bubbles: true}}));
  return true;
}}"""


def _click(selector: str) -> str:
    return (f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" if (!el) return false; el.click(); return true; }})()")


@chromium
async def test_docs_list_every_service_and_try_it_out_with_a_key(
        docs_gateway: tuple[str, str], tmp_path: Path) -> None:
    url, key = docs_gateway
    async with httpx.AsyncClient(base_url=url) as http:
        document = (await http.get("/openapi.json")).json()
    expected = collections.Counter(op["tags"][0] for item in document["paths"].values()
                                   for op in item.values())
    assert all(expected[s] > 0 for s in SERVICES)

    with tempfile.TemporaryDirectory(dir=tmp_path) as profile:
        async with headless_chromium(Path(profile)) as page:
            await page.call("Page.enable")
            await page.call("Page.navigate", url=f"{url}/docs")
            await page.wait_for("document.querySelectorAll('.opblock').length > 0")
            # operations rendered per tag (each tag section holds its opblocks)
            counts = json.loads(await page.js("""JSON.stringify(Object.fromEntries(
                [...document.querySelectorAll('.opblock-tag-section')].map(s => [
                  s.querySelector('.opblock-tag').getAttribute('data-tag'),
                  s.querySelectorAll('.opblock').length])))"""))
            for service in SERVICES:
                assert counts.get(service) == expected[service], (service, counts)
            assert sum(counts.values()) == sum(expected.values())

            # Authorize: paste the key into the bearer field
            assert await page.js(_click(".auth-wrapper .authorize"))
            await page.wait_for("!!document.querySelector('.auth-container input')")
            assert await page.js(f"({_TYPE.format()})('.auth-container input', "
                                 f"{json.dumps(key)})")
            assert await page.js(_click(".auth-btn-wrapper button[type=submit]"))
            await page.wait_for("!!document.querySelector('.auth-btn-wrapper .btn-done')")
            assert await page.js(_click(".auth-btn-wrapper .btn-done"))

            # Try it out: GET /v1/widgets (ListWidgets on the running test backend)
            op = "#operations-WidgetService-WidgetService_ListWidgets_1"
            await page.wait_for(f"!!document.querySelector('{op}')")
            assert await page.js(_click(f"{op} .opblock-summary-control"))
            await page.wait_for(f"!!document.querySelector('{op} .try-out__btn')")
            assert await page.js(_click(f"{op} .try-out__btn"))
            await page.wait_for(f"!!document.querySelector('{op} .execute')")
            assert await page.js(_click(f"{op} .execute"))
            status = await page.wait_for(
                f"(document.querySelector('{op} .live-responses-table tbody .response-col_status')"
                f" || {{}}).textContent")
            body = await page.js(
                f"document.querySelector('{op} .live-responses-table tbody "
                f".response-col_description pre').textContent")
            curl = await page.js(f"document.querySelector('{op} .curl-command').textContent")
            await page.js(f"document.querySelector('{op}').scrollIntoView()")
            shot = await page.call("Page.captureScreenshot", format="png")

    assert status.strip().startswith("200"), (status, body)
    assert "widgets" in json.loads(body)
    assert f"Bearer {key}" in curl
    keep = os.environ.get("MODELPLANE_SCREENSHOT_DIR")
    if keep:
        import base64

        (Path(keep) / "gateway-docs.png").write_bytes(base64.b64decode(shot["data"]))
