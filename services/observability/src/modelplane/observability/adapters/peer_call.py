"""One unary call to a peer, its failures as :class:`~modelplane.observability.lineage.PeerError`.

Lineage answers partially when a peer is down, refuses or does not know the
thing asked for: every failure becomes a reason in words (the status code and
the peer's message), never an error of the whole call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from modelplane.observability.lineage import PeerError

_T = TypeVar("_T")
#: seconds a lineage lookup waits for one peer
DEFAULT_TIMEOUT_S = 5.0


async def call_peer(method: Callable[..., Awaitable[_T]], request: Any, what: str,
                    timeout_s: float = DEFAULT_TIMEOUT_S) -> _T:
    try:
        return await method(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as err:
        code = err.code().name if err.code() is not None else "UNKNOWN"
        raise PeerError(f"{what}: {code}: {err.details() or ''}".rstrip(": ")) from None
    except TimeoutError:
        raise PeerError(f"{what}: no answer in {timeout_s:g} s") from None


__all__ = ["DEFAULT_TIMEOUT_S", "call_peer"]
