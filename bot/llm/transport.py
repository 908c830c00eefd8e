"""An httpx client for long reply streams whose sockets are asyncio's own, not anyio's.

httpx reads through httpcore, and httpcore reads its sockets through anyio on asyncio. For a reply
stream, where every read brings one small event, that path is most of the bot's CPU (py-spy on the
bot at 300 streams; docs/benchmarks.md): each read opens an anyio cancel scope with its own timer,
goes through an exception-mapping context manager, and pauses and resumes the socket's reader, two
`epoll_ctl` calls. httpcore dropped its asyncio backend for anyio's and declined to bring it back
(encode/httpcore#930, closed "wontfix"); httpx2's native backend is an open pull request
(pydantic/httpx2#1170). So this module is the one place we write our own: httpcore's documented
`AsyncNetworkBackend` interface over asyncio's transports and protocols.

- A read returns what is buffered at once; only when nothing is does it wait, on a plain future
  with one `call_later` timer for its timeout.
- The protocol keeps reading while the caller is elsewhere, up to 256 KiB buffered (then it pauses
  the socket until the buffer is under 64 KiB), so a closed idle connection is known from state
  (`is_readable`, which httpcore's pool asks of every idle connection) without a `poll()`.
- A write hands the bytes to the transport and waits only while the transport says to
  (`pause_writing`), with the write timeout.
- Errors become httpcore's own (`ConnectError`, `ReadTimeout`, ...), which httpx maps as it always
  does, so callers see the same `httpx` exceptions as with the default backend.

`streaming_client` keeps httpx's default backend when the environment names a proxy: httpx only
reads proxy variables for a client it builds its own transport for.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import urllib.request
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore import (
    ConnectError,
    ConnectTimeout,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

HIGH_WATER = 256 * 1024
"""Buffered bytes at which the socket stops being read until the caller catches up."""
LOW_WATER = 64 * 1024
"""Buffered bytes under which a paused socket is read again."""


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None
        """Set while the transport has asked us to stop writing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        self._wake()
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def pause_writing(self) -> None:
        if self.writable is None or self.writable.done():
            self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            self.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.buffered -= len(chunk)
        if self.reading_paused and self.buffered < LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return chunk

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _wait(future: asyncio.Future[None], limit: float | None) -> None:
    """Await `future`, raising TimeoutError after `limit` seconds (None: no limit).

    One timer on the loop, not a task or a cancel scope: this runs for every read that waits."""
    if limit is None:
        await future
        return
    timer = asyncio.get_running_loop().call_later(limit, _expire, future)
    try:
        await future
    finally:
        timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: a transport and the protocol buffering for it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    # The `timeout` parameters below are httpcore's interface (ASYNC109 prefers asyncio.timeout).
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        protocol = self._protocol
        if not protocol.chunks and not protocol.eof and not protocol.lost:
            protocol.waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(protocol.waiter, timeout)
            except TimeoutError:
                raise ReadTimeout(f"no data for {timeout} s") from None
            finally:
                protocol.waiter = None
        if protocol.chunks:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""  # the peer closed the connection cleanly

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise WriteError("the connection is closed")
        self._transport.write(buffer)
        writable = protocol.writable
        if writable is not None and not writable.done():
            try:  # httpcore writes one buffer at a time per connection: no other waiter
                await _wait(writable, timeout)
            except TimeoutError:
                raise WriteTimeout(f"could not write for {timeout} s") from None
            if protocol.lost:
                raise WriteError("the connection was lost while writing")

    async def aclose(self) -> None:
        self._transport.close()
        # connection_lost, which closes the socket, runs on the loop's next turn: wait for it so
        # that a closed stream has really let its socket go.
        await asyncio.sleep(0)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.close()
            raise ConnectTimeout(f"no TLS handshake within {timeout} s") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # the connection closed during the handshake
            raise ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks this of an idle connection: anything arriving, or a close, means
            # the connection cannot take another request.
            protocol = self._protocol
            return bool(protocol.chunks) or protocol.eof or protocol.lost
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info in ("ssl_object", "socket"):
            return self._transport.get_extra_info(info)
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio's own transports."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        protocol = _Protocol()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise ConnectTimeout(f"could not connect to {host}:{port} within {timeout} s") from None
        except OSError as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from exc
        assert isinstance(transport, asyncio.Transport)
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def streaming_client(
    *, timeout: httpx.Timeout, limits: httpx.Limits, verify: ssl.SSLContext
) -> httpx.AsyncClient:
    """An httpx client whose connections use `AsyncioBackend`; httpx's own when a proxy is set."""
    if _proxied():
        return httpx.AsyncClient(timeout=timeout, limits=limits, verify=verify)
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    # httpx builds its connection pool without a way to name the network backend; the pool it
    # builds is replaced by the same pool with ours (httpx is pinned below 0.29 in pyproject).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=AsyncioBackend(),
    )
    return httpx.AsyncClient(timeout=timeout, transport=transport)


def _proxied() -> bool:
    """Whether the environment names a proxy (HTTP(S)_PROXY, ALL_PROXY), as httpx would read it."""
    found = urllib.request.getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))
