"""modelplane gateway: HTTP/JSON <-> gRPC transcoding from the contracts' ``google.api.http``
annotations, an OpenAPI document from the same descriptors, errors as ``google.rpc.Status``.

    from modelplane.gateway import create_app, GatewaySettings, Catalog
"""

from modelplane.gateway.app import GatewayApp, create_app
from modelplane.gateway.catalog import Catalog
from modelplane.gateway.settings import GatewaySettings

__all__ = ["Catalog", "GatewayApp", "GatewaySettings", "create_app"]
