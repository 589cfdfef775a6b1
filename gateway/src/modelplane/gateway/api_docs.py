"""``/docs``: an interactive API reference (Swagger UI) over ``/openapi.json``.

The Swagger UI files come from the ``swagger-ui-py`` wheel (its ``static/``
directory: Swagger UI 5.x, which reads OpenAPI 3.1) and are served by the
gateway itself under ``/docs/assets/``: the page never loads anything from a
CDN. The page, its assets and the document need no key; they hold no secret.
The "Authorize" button lets a person paste an API key, which Swagger UI then
sends as ``Authorization: Bearer <key>`` on "Try it out" calls, and those
calls meet the same checks as any other. The key is kept in the page's memory
only (``persistAuthorization`` is off: nothing written to localStorage).

A Content-Security-Policy allows scripts from the gateway only, so the page's
start-up code is a file (``init.js``), not an inline script.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

DOCS_PATH = "/docs"
ASSETS_PREFIX = "/docs/assets/"

# The files of Swagger UI's dist the page needs, and their media types.
_SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

_INIT_JS = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    displayOperationId: true,
    docExpansion: "list",
    filter: true,
    tryItOutEnabled: false,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""

_PAGE = b"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>modelplane API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style>body { margin: 0; background: #fafafa; }</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""

# Swagger UI puts inline styles on elements and shows data: images; scripts
# and connections stay on this origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass(frozen=True)
class DocsAsset:
    body: bytes
    media_type: str


def swagger_ui_dir() -> Path:
    """The ``static/`` directory of the installed ``swagger-ui-py`` (without importing
    it: its ``__init__`` pulls jinja2 and PyYAML in, which the gateway has no use for)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: /docs has no assets to serve")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class ApiDocs:
    """The page and its assets, read once at start-up and served from memory."""

    def __init__(self, static_dir: Path | None = None) -> None:
        root = static_dir or swagger_ui_dir()
        self.assets: dict[str, DocsAsset] = {
            name: DocsAsset((root / name).read_bytes(), media)
            for name, media in _SWAGGER_FILES.items()}
        self.assets["init.js"] = DocsAsset(_INIT_JS, "text/javascript; charset=utf-8")
        self.page = _PAGE
        self.headers = {"content-security-policy": _CSP, "x-content-type-options": "nosniff",
                        "referrer-policy": "no-referrer"}

    def asset(self, name: str) -> DocsAsset | None:
        return self.assets.get(name)
