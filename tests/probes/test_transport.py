"""The probes' own transport: TLS timing, and answers that are not HTTP at all."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from probes import ProbeTarget
from probes.http import probe_http
from probes.transport import TimedTransport
from sandbox.servers import bind_loopback


@pytest.fixture
async def tls_server(tmp_path) -> AsyncIterator[tuple[int, ssl.SSLContext]]:  # type: ignore[no-untyped-def]
    """A real uvicorn server speaking TLS with a certificate for 127.0.0.1 from a throwaway CA."""
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    app = Starlette(routes=[Route("/health", lambda request: PlainTextResponse("ok"))])
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)
    )
    server = uvicorn.Server(config)
    sock = bind_loopback()
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    yield sock.getsockname()[1], client_context
    server.should_exit = True
    await task
    sock.close()


async def test_https_probe_reports_connect_tls_and_first_byte(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, trusted = tls_server
    async with httpx.AsyncClient(transport=TimedTransport(trusted)) as client:
        outcome = await probe_http(ProbeTarget(name="s", kind="http", url=f"https://127.0.0.1:{port}/health"), client)
    assert outcome.ok and outcome.status_code == 200
    assert {"connect_ms", "tls_ms", "ttfb_ms", "total_ms"} <= set(outcome.timings)
    assert outcome.timings["connect_ms"] + outcome.timings["tls_ms"] <= outcome.timings["ttfb_ms"]


async def test_untrusted_certificate_is_down_with_a_tls_reason(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, _trusted = tls_server
    async with httpx.AsyncClient(transport=TimedTransport()) as client:  # the system CAs do not know ours
        outcome = await probe_http(ProbeTarget(name="s", kind="http", url=f"https://127.0.0.1:{port}/health"), client)
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("TLS error: CERTIFICATE_VERIFY_FAILED")


@pytest.fixture
async def garbage_server() -> AsyncIterator[int]:
    """Answers every connection with bytes that are not HTTP, or closes it without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if b"/garbage" in request:
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_an_answer_that_is_not_http_is_down(garbage_server: int) -> None:
    async with httpx.AsyncClient(transport=TimedTransport()) as client:
        garbage = await probe_http(
            ProbeTarget(name="s", kind="http", url=f"http://127.0.0.1:{garbage_server}/garbage"), client
        )
        silent = await probe_http(
            ProbeTarget(name="s", kind="http", url=f"http://127.0.0.1:{garbage_server}/close"), client
        )
    assert not garbage.ok and garbage.error is not None and "not an HTTP/1.1 answer" in garbage.error
    assert not silent.ok and silent.error is not None
    assert "closed the connection without answering" in silent.error
