"""The running parts of a service, one shape for all: ``ServiceRuntime``.

A service's ``runtime.py`` derives from :class:`ServiceRuntime` and wires its
settings into stores, adapters and its domain object in :meth:`~ServiceRuntime.build`.
The base owns what every service needs around that, written once:

- ``current()``: the domain object, or ``UNAVAILABLE`` with reason ``STARTING``
  until ``build`` has returned (the servicer calls it per request, so a call that
  arrives while the server is still starting is refused with a status a client
  retries, never answered half-wired);
- ``start()`` / ``stop()``: the kit server's ``on_start`` / ``on_stop`` hooks;
  ``stop`` runs once (a second call does nothing) and releases, in this order,
  the side HTTP servers, the background tasks (cancelled), the subclass's own
  parts (:meth:`~ServiceRuntime.close`, then what it registered with
  :meth:`~ServiceRuntime.closing`, newest first) and the channels to peers, last
  because those may still wait for calls that use them;
- :meth:`~ServiceRuntime.channel` / :meth:`~ServiceRuntime.spawn` /
  :meth:`~ServiceRuntime.serve_http` / :meth:`~ServiceRuntime.closing`: a peer
  channel, a background task, an ASGI app on a :class:`SideServer`, and any other
  part ``build`` opens (a store, an engine, a child process), each released by
  ``stop``. When ``build`` fails (or a stop abandons it), what these made so far
  is released at once, in the same order (without ``close``, which may assume a
  finished build): the kit server calls ``on_stop`` only after a finished start,
  so a part ``build`` opens without registering it leaks when a later step fails.

:class:`SideServer` is the quiet uvicorn beside the gRPC port (a dashboard, a
REST endpoint): no signal handlers of its own (the kit owns SIGTERM/SIGINT), no
access log, no lifespan; a bind error fails its start. It needs ``uvicorn``,
which the services that serve HTTP depend on (imported only when one starts).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import grpc

from modelplane.kit.clients import channel as make_channel
from modelplane.kit.errors import Unavailable
from modelplane.kit.settings import ServiceSettings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("modelplane.kit.runtime")

T = TypeVar("T")
#: an ASGI application (Starlette, or any ``async (scope, receive, send)`` callable)
AsgiApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]


def _quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the kit owns SIGTERM/SIGINT."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return QuietServer(config)


class SideServer:
    """An ASGI app on its own quiet uvicorn server, in the service's event loop.

    ``addr`` is ``host:port`` (``[::1]:8080`` for IPv6; port 0 picks a free one,
    read back from :attr:`port` once started; an empty host is 127.0.0.1).
    """

    def __init__(self, app: AsgiApp, addr: str, label: str, *,
                 stop_seconds: float = 5.0) -> None:
        host, _, port = addr.rpartition(":")
        self.app = app
        self.host = host.strip("[]") or "127.0.0.1"
        self.label = label
        #: how long ``stop`` waits for open connections before it cancels the server
        self.stop_seconds = stop_seconds
        self._requested_port = int(port)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        #: the bound port (0 until started)
        self.port = 0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Serve, and return once the port is bound; a bind error is raised here."""
        import uvicorn

        config = uvicorn.Config(self.app, host=self.host, port=self._requested_port,
                                log_level="warning", access_log=False, lifespan="off")
        server = _quiet_server(config)
        self._server = server
        self._task = asyncio.create_task(self._serve(server), name=f"http-{self.label}")
        while not server.started:
            if self._task.done():
                self._task.result()  # the bind error
                raise OSError(f"the {self.label} HTTP server stopped before it started")
            await asyncio.sleep(0.02)
        self.port = int(server.servers[0].sockets[0].getsockname()[1])
        log.info("%s on http://%s/", self.label, self.address)

    async def _serve(self, server: uvicorn.Server) -> None:
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when it cannot bind; here that is a failed start
            raise OSError(f"the {self.label} HTTP server could not listen on "
                          f"{self.host}:{self._requested_port} (see the log above)") from exc

    async def stop(self) -> None:
        """Stop accepting, let open requests finish (up to ``stop_seconds``); idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        if self._server is not None:
            self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_seconds)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:  # it failed while running; stopping is all that is left
            log.warning("%s HTTP server ended with an error", self.label, exc_info=True)


class ServiceRuntime(abc.ABC, Generic[T]):
    """The wiring of one service around its domain object ``T`` (see the module doc).

    A subclass implements :meth:`build` (and :meth:`close` for what it opened
    itself); the kit server gets ``start`` and ``stop`` as its hooks.
    """

    def __init__(self, name: str) -> None:
        #: the service's name, as in "the <name> is still starting"
        self.name = name
        self._current: T | None = None
        self._channels: list[grpc.aio.Channel] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._side_servers: list[SideServer] = []
        #: (what, its closer) registered by ``closing``, oldest first
        self._closers: list[tuple[str, Callable[[], object]]] = []
        self._stopped = False

    # ---------------------------------------------------------------- the domain object

    def current(self) -> T:
        """The domain object; ``UNAVAILABLE``/``STARTING`` until ``build`` has returned."""
        if self._current is None:
            raise Unavailable(f"the {self.name} is still starting", reason="STARTING")
        return self._current

    @property
    def started(self) -> bool:
        return self._current is not None

    @abc.abstractmethod
    async def build(self) -> T:
        """Settings -> stores -> adapters -> the domain object (in the server's loop)."""

    async def close(self) -> None:  # a hook: most runtimes have nothing else of their own
        """Release what ``build`` opened itself (stores, engines), after the side servers
        and background tasks have stopped and before the channels close."""

    # ---------------------------------------------------------------- the kit hooks

    async def start(self) -> None:
        """``on_start``: build the domain object; on failure release what was made."""
        if self._stopped:
            raise RuntimeError(f"the {self.name} runtime was stopped; make a new one")
        try:
            current = await self.build()
        except BaseException:
            await self._release_owned()
            raise
        self._current = current

    async def stop(self) -> None:
        """``on_stop``: side servers, tasks, :meth:`close`, the registered closers,
        channels; runs once."""
        if self._stopped:
            return
        self._stopped = True
        await self._stop_side_servers()
        await self._cancel_tasks()
        try:
            await self.close()
        finally:
            try:
                await self._run_closers()
            finally:
                await self._close_channels()

    # ---------------------------------------------------------------- what the base owns

    def channel(self, target: str, settings: ServiceSettings) -> grpc.aio.Channel:
        """A channel to a peer (``kit.clients.channel``), closed by ``stop`` (and by a
        failed start). Make it in the loop the service runs in: in ``build``, or in the
        constructor of a runtime made inside that loop (an aio channel belongs to the
        loop it was made on)."""
        ch = make_channel(target, settings)
        self._channels.append(ch)
        return ch

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None
              ) -> asyncio.Task[Any]:
        """A background task for the life of the service, cancelled by ``stop``."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)
        return task

    async def serve_http(self, app: AsgiApp, addr: str, label: str) -> SideServer:
        """``app`` on a started :class:`SideServer` at ``addr``, stopped by ``stop``."""
        server = SideServer(app, addr, label)
        self._side_servers.append(server)
        await server.start()
        return server

    def closing(self, close: Callable[[], object], what: str) -> None:
        """Register the closer of a part ``build`` has just opened (a store, an
        engine, a child process): ``stop`` calls it, newest first, after
        :meth:`close`; a failed ``build`` calls it at once. ``close`` may return an
        awaitable (awaited); a blocking one belongs in ``asyncio.to_thread``. A
        closer that fails is logged and the others still run."""
        self._closers.append((what, close))

    async def _run_closers(self) -> None:
        closers, self._closers = self._closers, []
        for what, close in reversed(closers):
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one part failing to close must not leak the others
                log.warning("closing %s of the %s failed", what, self.name, exc_info=True)

    async def _release_owned(self) -> None:
        await self._stop_side_servers()
        await self._cancel_tasks()
        try:
            await self._run_closers()
        finally:
            await self._close_channels()

    async def _stop_side_servers(self) -> None:
        servers, self._side_servers = self._side_servers, []
        for server in servers:
            await server.stop()

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _close_channels(self) -> None:
        channels, self._channels = self._channels, []
        for ch in channels:
            with contextlib.suppress(Exception):
                await ch.close()
