"""Entry point: ``modelplane-observability`` runs the gRPC service and its dashboard.

The wiring, start and stop are in ``runtime.py``.
"""

from __future__ import annotations

import asyncio

from modelplane.kit.server import serve
from modelplane.observability.runtime import build
from modelplane.observability.settings import ObservabilitySettings


def main() -> None:
    settings = ObservabilitySettings.from_env()
    spec, _ = build(settings)
    asyncio.run(serve(spec, settings.service))


if __name__ == "__main__":
    main()
