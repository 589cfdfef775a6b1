"""``modelplane-gateway``: serve the HTTP/JSON API on ``MODELPLANE_GATEWAY_ADDR``."""

from __future__ import annotations

import logging
import sys

from modelplane.gateway.settings import GatewaySettings, SettingsError

log = logging.getLogger("modelplane.gateway")


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from modelplane.gateway.app import create_app
    from modelplane.kit.telemetry import setup_logging, setup_tracing

    setup_logging("gateway")
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as exc:
        log.error("%s", exc)
        return 2
    setup_tracing("gateway")
    app = create_app(settings)
    host, port = settings.host_port
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is optional
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:  # pragma: no cover
        http = "h11"
    log.info("gateway listening on http://%s:%d (%d RPCs of %s)", host, port,
             len(app.catalog.methods), ", ".join(app.catalog.backends) or "no services")
    tls = settings.service
    config = uvicorn.Config(app, host=host, port=port, loop=loop, http=http, lifespan="on",
                            access_log=False, log_config=None, server_header=False,
                            timeout_graceful_shutdown=int(tls.grace_seconds),
                            # HTTPS with the same certificate as the services' gRPC TLS.
                            ssl_certfile=str(tls.tls_cert) if tls.tls_cert else None,
                            ssl_keyfile=str(tls.tls_key) if tls.tls_key else None)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
