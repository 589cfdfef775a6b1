"""Entry point: ``modelplane-observability`` runs the gRPC service and its dashboard.

``build`` puts the servicer (``api.py``) and the runtime's start and stop
(``runtime.py``: the wiring) into the kit server's spec; it lives here, above
both, because the servicer reads the runtime's parts.
"""

from __future__ import annotations

import asyncio

from modelplane.kit.server import Servicer, ServiceSpec, serve
from modelplane.observability.api import ObservabilityServicer
from modelplane.observability.runtime import ObservabilityRuntime
from modelplane.observability.settings import ObservabilitySettings
from modelplane.observability.v1 import observability_pb2_grpc as pb_grpc

SERVICE_NAME = "modelplane.observability.v1.ObservabilityService"


def build(settings: ObservabilitySettings, runtime: ObservabilityRuntime | None = None
          ) -> tuple[ServiceSpec, ObservabilityRuntime]:
    rt = runtime or ObservabilityRuntime(settings)
    spec = ServiceSpec(
        name="observability",
        servicers=[Servicer(pb_grpc.add_ObservabilityServiceServicer_to_server,
                            ObservabilityServicer(rt), SERVICE_NAME)],
        on_start=rt.start, on_stop=rt.stop)
    return spec, rt



def main() -> None:
    settings = ObservabilitySettings.from_env()
    spec, _ = build(settings)
    asyncio.run(serve(spec, settings.service))


if __name__ == "__main__":
    main()
