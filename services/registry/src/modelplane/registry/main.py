"""Entry point: ``modelplane-registry`` / ``python -m modelplane.registry.main``.

The wiring, its start order and stop are in ``runtime.py``.
"""

from __future__ import annotations

import asyncio
import os

from modelplane.kit.server import serve
from modelplane.kit.settings import ServiceSettings
from modelplane.registry.runtime import build
from modelplane.registry.settings import RegistrySettings


def main() -> None:
    settings = RegistrySettings.from_service(ServiceSettings.from_env("registry"))
    # MLflow's store code opens default-URI clients here and there; in the registry's own
    # process the default is the backend store it owns.
    os.environ["MLFLOW_TRACKING_URI"] = settings.backend_store_uri
    os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
    spec, _ = build(settings)
    asyncio.run(serve(spec, settings.service))


if __name__ == "__main__":
    main()
