"""The asyncio network backend under the providers' httpx client, against raw servers on loopback.

Each server here is a few lines of asyncio speaking HTTP/1.1 bytes, so every test controls exactly
what arrives and when: pieces with gaps, a stall, a reset, a close between requests, a peer that
never reads, a TLS handshake that never comes.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpcore
import httpx
import pytest
import trustme

from bot.llm import transport
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.transport import AsyncioBackend, streaming_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=5)
TIMEOUT = httpx.Timeout(5)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server.accept, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server
        for writer in server.writers:
            writer.close()


class Server:
    """Counts connections and keeps their writers so the test can close them."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.port = 0
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.closed = asyncio.Event()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()

    def url(self, path: str = "/", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


async def request_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def chunked_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


async def read_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Takes the request and answers nothing."""
    await request_head(reader)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def client() -> httpx.AsyncClient:
    return streaming_client(timeout=TIMEOUT, limits=LIMITS, verify=ssl.create_default_context())


async def test_a_stream_arrives_piece_by_piece_and_exact() -> None:
    pieces = [b"data: %d\n\n" % i for i in range(50)]
    gate = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(chunked_head())
        for piece in pieces:
            writer.write(chunk(piece))
            await writer.drain()
            if piece == pieces[9]:
                await gate.wait()  # the client must see the first ten before the rest exist
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with serving(handler) as server, client() as http:
        seen = b""
        async with http.stream("GET", server.url()) as response:
            async for data in response.aiter_bytes():
                seen += data
                if seen == b"".join(pieces[:10]):
                    gate.set()
        assert seen == b"".join(pieces)
        assert gate.is_set()


async def test_a_kept_alive_connection_is_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(3):
            await request_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async with serving(handler) as server, client() as http:
        for _ in range(3):
            assert (await http.get(server.url())).text == "ok"
    assert server.connections == 1


async def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    """A server may close a kept-alive connection between requests; the pool must notice from
    the stream's state (`is_readable`) and open a new one, not fail the next request."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # no "Connection: close": the client believes it can reuse it

    async with serving(handler) as server, client() as http:
        assert (await http.get(server.url())).text == "ok"
        await server.closed.wait()
        for _ in range(20):  # let the FIN arrive on the client's side
            await asyncio.sleep(0)
        assert (await http.get(server.url())).text == "ok"
    assert server.connections == 2


async def test_a_stalled_stream_times_out_as_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(chunked_head() + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.Event().wait()

    stalling = streaming_client(
        timeout=httpx.Timeout(5, read=0.05), limits=LIMITS, verify=ssl.create_default_context()
    )
    async with (
        serving(handler) as server,
        stalling as http,
        http.stream("GET", server.url()) as response,
    ):
        reading = response.aiter_bytes()
        assert await anext(reading) == b"data: 1\n\n"
        with pytest.raises(httpx.ReadTimeout):
            await anext(reading)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # with a zero linger: RST, not FIN


@pytest.mark.parametrize(
    ("end", "error"),
    [
        (_reset, httpx.ReadError),  # a reset mid-stream
        (asyncio.StreamWriter.close, httpx.RemoteProtocolError),  # a clean close: not a success
    ],
)
async def test_a_stream_cut_mid_body_fails_as_httpx_would(
    end: Callable[[asyncio.StreamWriter], None], error: type[Exception]
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(chunked_head() + chunk(b"data: 1\n\n"))
        await writer.drain()
        end(writer)

    async with serving(handler) as server, client() as http:
        with pytest.raises(error):
            async with http.stream("GET", server.url()) as response:
                async for _ in response.aiter_bytes():
                    pass


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with serving(read_only) as server:
        port = server.port
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_cancelling_a_reader_closes_its_connection() -> None:
    """Stop on a reply cancels the task reading its stream: the socket must be let go."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(chunked_head() + chunk(b"data: 1\n\n"))
        await writer.drain()
        assert await reader.read() == b""  # returns when the client closes

    started = asyncio.Event()

    async def read_all(http: httpx.AsyncClient, url: str) -> None:
        async with http.stream("GET", url) as response:
            async for _ in response.aiter_bytes():
                started.set()

    async with serving(handler) as server, client() as http:
        task = asyncio.create_task(read_all(http, server.url()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed.wait(), 5)


async def test_a_fast_sender_is_paused_at_the_high_water_mark_and_nothing_is_lost() -> None:
    body = bytes(range(256)) * 8192  # 2 MiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(body)
        await writer.drain()
        writer.close()

    async with serving(handler) as server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port, timeout=5)
        protocol = stream._protocol  # type: ignore[attr-defined]
        for _ in range(10_000):  # until the buffer crosses the mark; no read meanwhile
            if protocol.reading_paused:
                break
            await asyncio.sleep(0)
        assert protocol.reading_paused
        for _ in range(200):  # a socket still being read would take in the whole 2 MiB here
            await asyncio.sleep(0)
        assert protocol.buffered <= transport.HIGH_WATER + 256 * 1024  # one recv past the mark
        received = bytearray()
        while data := await stream.read(65536, timeout=5):
            received += data
            assert len(data) <= 65536
        assert bytes(received) == body
        await stream.aclose()


async def test_a_peer_that_never_reads_makes_a_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async with serving(handler) as server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port, timeout=5)
        with pytest.raises(httpcore.WriteTimeout):
            for _ in range(64):  # the kernel's buffers take a few MiB before pushing back
                await stream.write(b"x" * (1 << 20), timeout=0.05)
        await stream.aclose()
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"late")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_pair(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    return server, trusting


async def test_tls_streams_through_the_backend(ca: trustme.CA) -> None:
    server_tls, trusting = tls_pair(ca)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await request_head(reader)
        writer.write(chunked_head() + chunk(b"data: secure\n\n") + b"0\r\n\r\n")
        await writer.drain()

    http = streaming_client(timeout=TIMEOUT, limits=LIMITS, verify=trusting)
    async with (
        serving(handler, tls=server_tls) as server,
        http,
        http.stream("GET", server.url(scheme="https", host="localhost")) as response,
    ):
        assert await response.aread() == b"data: secure\n\n"
        assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None


async def test_tls_with_the_wrong_name_is_a_connect_error(ca: trustme.CA) -> None:
    server_tls, trusting = tls_pair(ca)
    async with (
        serving(read_only, tls=server_tls) as server,
        streaming_client(timeout=TIMEOUT, limits=LIMITS, verify=trusting) as http,
    ):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(server.url(scheme="https", host="127.0.0.1"))


async def test_a_tls_handshake_that_never_comes_is_a_connect_timeout(ca: trustme.CA) -> None:
    _, trusting = tls_pair(ca)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()  # plain TCP: never answers the ClientHello

    slow = streaming_client(timeout=httpx.Timeout(5, connect=0.05), limits=LIMITS, verify=trusting)
    async with serving(silent) as server, slow as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(server.url(scheme="https", host="localhost"))


async def test_with_a_proxy_in_the_environment_requests_go_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """httpx reads proxy variables only for a client whose transport it builds itself; a proxied
    deployment keeps that rather than losing its proxy to the faster backend."""
    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await request_head(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")
        await writer.drain()

    async with serving(proxy) as server:
        monkeypatch.setenv("HTTP_PROXY", server.url())
        async with client() as http:
            response = await http.get("http://provider.invalid/v1/chat")
    assert response.text == "proxied"
    assert heads[0].startswith(b"GET http://provider.invalid/v1/chat HTTP/1.1")


def test_providers_stream_through_the_asyncio_backend() -> None:
    provider = OpenAICompatProvider("openai", "http://127.0.0.1:9/v1", "key")
    pool = provider._client._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool._network_backend, AsyncioBackend)
