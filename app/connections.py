"""The webhook server's guard against connections that hold it without asking for anything.

aiohttp reads a request's headers and body without a deadline of its own (its keep-alive
timer, 3,630 s in 3.14, is the only one), and accepts as many connections as the process has
file descriptors. An audit held 1,000 connections that never finished a request: they stayed
open, /healthz and every webhook timed out once the descriptors ran out, and asyncio logged
"socket.accept() out of system resource" until the log had grown 97 MB in 40 s. So:

- **a deadline for the headers**: a new connection must deliver a complete request's
  headers within ``header_timeout``, and one that has been answered its next request within
  ``keepalive_timeout``; otherwise it is closed (:class:`ConnectionGuard`, wrapping aiohttp's
  protocol). Telegram and load balancers keep connections open between deliveries: they
  get longer, and at the cap they are the first to make room anyway;
- **a deadline for the body**: once the headers are in, the body must arrive within
  ``body_timeout`` (:func:`read_body`, in the guard's middleware) -- 408 and the connection
  closed;
- **a cap on connections**: at ``max_connections`` the oldest *idle* connection (one that has
  not delivered a complete request) is closed to make room, so a flood of idle connections
  never locks out a webhook or /healthz; when every connection is busy with a request, the
  newcomer is closed at once. The cap stays below the process's descriptor limit
  (:func:`connection_cap`), so accept() itself never runs out;
- **storms logged once per interval**, with a count, never once per connection
  (:class:`bot.logs.OncePerInterval` on these loggers and on asyncio's).

Behind the reverse proxy of docs/deploy/ (which has its own deadlines and limits) none of
this should ever trigger; it is what keeps the bot up when the proxy is missing or
misconfigured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.httplimits import HttpLimits
from bot.logs import OncePerInterval

#: Descriptors kept free for everything else a worker opens (database, outgoing HTTPS to the
#: platforms, log files): the cap is at most the soft limit minus this.
RESERVED_FDS = 64
#: Connections the kernel queues before the server accepts them (the system may lower it:
#: net.core.somaxconn, 4,096 on current Linux).
BACKLOG = 1024
#: Connections accepted in one go when the listening socket is ready. asyncio's accept loop
#: takes as many as the backlog it was given before the guard sees any: with 1,024, 600 idle
#: connections queued while the server was busy were accepted at once, past the descriptor
#: limit ("socket.accept() out of system resource", then no accept for 1 s: /healthz 1.8-2.9 s
#: in bench/faults.py). Well under RESERVED_FDS; the kernel's queue stays BACKLOG long.
ACCEPT_BATCH = 16
#: How often a storm of closed connections is told in the log.
STORM_LOG_EVERY = 60.0

log = logging.getLogger(__name__)
log.addFilter(OncePerInterval(STORM_LOG_EVERY))


def connection_cap(wanted: int, *, reserved: int = RESERVED_FDS) -> int:
    """``wanted``, lowered to stay ``reserved`` descriptors under the process's soft limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - reserved))


class _Guarded(asyncio.Protocol):
    """One connection: aiohttp's protocol, under the guard's deadline and cap."""

    __slots__ = ("admitted", "busy", "deadline", "guard", "inner", "transport")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol):
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.busy = 0  # requests whose headers are in and whose answer is not yet sent
        #: When an idle connection is closed (loop time): see ConnectionGuard.sweep.
        self.deadline = 0.0
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.guard.admit(self):
            transport.abort()  # no aiohttp state was made for it: nothing else to undo
            return
        self.admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.admitted:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class ConnectionGuard:
    """The protocol factory the listening socket uses: aiohttp's, wrapped (see the module
    docstring). Its :attr:`middleware` tells it when a request's headers are in and when its
    answer is out (and reads the body within its deadline); :meth:`sweep`, a few times per
    header deadline, closes the idle connections whose deadline has passed -- a time stamp
    per request rather than a timer, which costs a webhook nothing measurable."""

    def __init__(self, limits: HttpLimits):
        #: aiohttp's protocol factory, the runner's server (set by :class:`GuardedSite`).
        self.factory: Callable[[], asyncio.Protocol] | None = None
        self.limits = limits
        self.cap = connection_cap(limits.max_connections)
        #: Open connections, and among them the idle ones (longest idle first).
        self.open: set[_Guarded] = set()
        self._idle: OrderedDict[_Guarded, None] = OrderedDict()
        self._by_transport: dict[asyncio.BaseTransport, _Guarded] = {}
        #: Counts for the storm log (and the tests).
        self.closed_idle = 0
        self.evicted = 0
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        assert self.factory is not None, "serve it through a GuardedSite"
        return _Guarded(self, self.factory())

    # --- bookkeeping ----------------------------------------------------------------------

    def admit(self, conn: _Guarded) -> bool:
        """Make room for a new connection (closing the longest idle one at the cap); False
        when every open connection is busy with a request."""
        if len(self.open) >= self.cap:
            if not self._idle:
                self.refused += 1
                self.tell()
                return False
            oldest, _ = self._idle.popitem(last=False)
            self.forget(oldest)  # counted out now: its descriptor is freed on the next turn
            oldest.close()
            self.evicted += 1
            self.tell()
        assert conn.transport is not None
        self.open.add(conn)
        self._by_transport[conn.transport] = conn
        self._wait(conn, self.limits.header_timeout)
        return True

    def _wait(self, conn: _Guarded, timeout: float) -> None:
        """``conn`` is idle: its next request's headers are due within ``timeout``."""
        conn.deadline = asyncio.get_running_loop().time() + timeout
        self._idle[conn] = None  # appended: the longest idle stay first

    def forget(self, conn: _Guarded) -> None:
        self.open.discard(conn)
        self._idle.pop(conn, None)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)

    def sweep(self) -> None:
        """Close every idle connection past its deadline."""
        now = asyncio.get_running_loop().time()
        late = [conn for conn in self._idle if conn.deadline <= now]
        for conn in late:
            self.forget(conn)
            conn.close()
        if late:
            self.closed_idle += len(late)
            self.tell()

    async def sweeping(self) -> None:
        """:meth:`sweep` a few times per deadline, until cancelled."""
        shortest = min(self.limits.header_timeout, self.limits.keepalive_timeout)
        every = min(1.0, max(0.02, shortest / 5))
        while True:
            await asyncio.sleep(every)
            self.sweep()

    def tell(self) -> None:
        """One line per interval while connections are being closed (the filter holds back
        the rest and counts them)."""
        log.warning(
            "http: closing connections that deliver no request (so far: %d idle past the "
            "deadline, %d closed to make room, %d refused; cap %d)",
            self.closed_idle,
            self.evicted,
            self.refused,
            self.cap,
        )

    # --- the request's side ---------------------------------------------------------------

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """A request's headers are in: its connection is busy (no deadline) until the
        answer; then it is idle again, with the keep-alive deadline for the next request.
        The body is read here, within its own deadline (:func:`read_body`)."""
        conn = self._by_transport.get(request.transport) if request.transport else None
        if conn is None:
            return await read_body(request, handler, self.limits.body_timeout)
        conn.busy += 1
        self._idle.pop(conn, None)
        try:
            return await read_body(request, handler, self.limits.body_timeout)
        finally:
            conn.busy -= 1
            if conn.busy == 0 and conn in self.open:
                self._wait(conn, self.limits.keepalive_timeout)


async def read_body(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    seconds: float,
) -> web.StreamResponse:
    """``handler``'s answer, once the request's body has been read within ``seconds``
    (408, and the connection closed, otherwise)."""
    if request.body_exists:
        try:
            async with asyncio.timeout(seconds):
                await request.read()
        except TimeoutError:
            log.warning("http: a request body did not arrive within %.0f s", seconds)
            response = web.Response(status=408, text="request body timeout")
            response.force_close()
            return response
    return await handler(request)


def body_deadline(timeout: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware reading each request's body within ``timeout`` seconds, for an app
    served without a guard (the tests' servers); the guard's middleware does it otherwise."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        return await read_body(request, handler, timeout)

    return middleware


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through ``guard`` (whose middleware the application
    must have: see app/server.py)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        guard: ConnectionGuard,
        *,
        reuse_port: bool = False,
    ):
        super().__init__(runner)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self.guard = guard
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self.guard.factory = self._runner.server
        sock = _listening_socket(self._host, self._port, reuse_port=self._reuse_port)
        self._server = await asyncio.get_running_loop().create_server(
            self.guard, sock=sock, backlog=ACCEPT_BATCH
        )
        # asyncio listened with ACCEPT_BATCH; a burst of connections must wait in the
        # kernel's queue rather than be dropped (a dropped SYN is retried a second later).
        sock.listen(BACKLOG)
        self._sweeper = asyncio.create_task(self.guard.sweeping())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().stop()

    @property
    def port(self) -> int:
        """The port bound (when 0 was asked for, the one the system chose)."""
        assert isinstance(self._server, asyncio.Server)
        return int(self._server.sockets[0].getsockname()[1])


def quiet_storms() -> None:
    """asyncio's and aiohttp's messages that repeat per connection, once per interval."""
    for name in ("asyncio", "aiohttp.server", "aiohttp.web"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, OncePerInterval) for f in logger.filters):
            logger.addFilter(OncePerInterval(STORM_LOG_EVERY))


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` (the first address it resolves to), listening."""
    family, _, _, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return socket.create_server(address[:2], family=family, backlog=BACKLOG, reuse_port=reuse_port)
