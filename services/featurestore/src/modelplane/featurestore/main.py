"""``modelplane-featurestore``: the featurestore gRPC server (ours and Feast's contract, one
port). The wiring, start and stop are in ``runtime.py``."""

from __future__ import annotations

import asyncio

from modelplane.featurestore.runtime import build_spec
from modelplane.kit.server import serve
from modelplane.kit.settings import ServiceSettings


def main() -> None:
    settings = ServiceSettings.from_env("featurestore")
    spec, _ = build_spec(settings)
    asyncio.run(serve(spec, settings))


if __name__ == "__main__":
    main()
