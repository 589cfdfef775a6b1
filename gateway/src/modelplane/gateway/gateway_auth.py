"""API-key check at the edge (the services check again: defence in depth).

Same keys file, same roles and same per-method rule as the services (the
kit's ``role_for_method``: the ``modelplane.api.v1.access`` option, else GET =
read, anything else = write), so the gateway never lets through what a
service would refuse, and refuses early without a round trip.
"""

from __future__ import annotations

from pathlib import Path

from google.rpc import code_pb2, status_pb2

from modelplane.gateway.catalog import RpcMethod
from modelplane.gateway.status_mapping import make_status
from modelplane.kit.auth import ApiKeyStore, Role, bearer_token, role_for_method
from modelplane.kit.errors import Unauthenticated


class GatewayAuth:
    def __init__(self, keys_file: Path | None = None, store: ApiKeyStore | None = None) -> None:
        self._store = store or ApiKeyStore(keys_file)
        self._roles: dict[int, Role] = {}

    def required(self, rpc: RpcMethod) -> Role:
        role = self._roles.get(id(rpc))
        if role is None:
            role = self._roles[id(rpc)] = role_for_method(rpc.descriptor)
        return role

    def check(self, rpc: RpcMethod, authorization: str | None) -> status_pb2.Status | None:
        """None when the call may proceed, else the UNAUTHENTICATED/PERMISSION_DENIED status."""
        return self.check_role(self.required(rpc), authorization, rpc.path)

    def check_role(self, needed: Role, authorization: str | None,
                   what: str) -> status_pb2.Status | None:
        """The same check for a route that is not an RPC of the catalog (``what`` names it)."""
        token = bearer_token({"authorization": authorization} if authorization else None)
        if token is None:
            return make_status(
                code_pb2.UNAUTHENTICATED,
                "missing API key: send the header 'Authorization: Bearer <key>'",
                reason="API_KEY_MISSING", metadata={"method": what})
        try:
            principal = self._store.authenticate(token)
        except Unauthenticated as exc:  # unknown or expired: the message says which
            return make_status(code_pb2.UNAUTHENTICATED, exc.message, reason=exc.reason,
                               metadata={**exc.metadata, "method": what})
        if principal.role < needed:
            return make_status(
                code_pb2.PERMISSION_DENIED,
                f"key {principal.name!r} has role {principal.role.name.lower()}; "
                f"{what} needs {needed.name.lower()}",
                reason="ROLE_TOO_LOW",
                metadata={"method": what, "required_role": needed.name.lower(),
                          "role": principal.role.name.lower()})
        return None
