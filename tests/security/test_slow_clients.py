"""Slow clients cannot hold the server: slowloris-style sockets on loopback against the server
as ``serve`` and ``run`` configure it (short deadlines set here so that every test ends within
a few seconds)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from enrichflow.api.app import create_app
from enrichflow.api.server import CallbackServer
from enrichflow.api.slow_clients import MAX_HEAD_BYTES
from security.conftest import make_settings
from webhooks.webhook_servers import free_port

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_CONNECTIONS = 40
SLACK = 1.5


@pytest.fixture
def server(engine: Engine) -> Iterator[tuple[str, int]]:
    settings = make_settings(
        header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT, max_connections=MAX_CONNECTIONS
    )
    port = free_port()
    with CallbackServer(create_app(engine, settings), "127.0.0.1", port):
        yield "127.0.0.1", port


def closed_by_server(sock: socket.socket, trickle: bytes, every: float, within: float) -> float:
    """Sends ``trickle`` one byte every ``every`` seconds until the server closes the socket;
    the seconds that took (fails after ``within``)."""
    start = time.monotonic()
    sock.settimeout(every)
    sent = 0
    while time.monotonic() - start < within:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        try:
            sock.send(trickle[sent % len(trickle) : sent % len(trickle) + 1])
            sent += 1
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
    raise AssertionError(f"the server kept a slow client for {within} s")


def test_slow_headers_are_cut_off_and_others_are_served(server: tuple[str, int]) -> None:
    """Before: a head trickled one byte at a time held its connection for as long as the client
    liked. After: closed at the header deadline, while a normal client is answered at once."""
    url = f"http://{server[0]}:{server[1]}"
    slow = [socket.create_connection(server, timeout=5) for _ in range(MAX_CONNECTIONS // 2)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    answer = httpx.get(f"{url}/healthz", timeout=5)
    assert answer.status_code == 200 and time.monotonic() - started < 1
    took = closed_by_server(slow[0], b"X-Slow: 1\r\n", 0.2, HEADER_TIMEOUT + SLACK)
    assert took <= HEADER_TIMEOUT + SLACK
    for sock in slow[1:]:
        closed_by_server(sock, b"X-Slow: 1\r\n", 0.05, SLACK)
        sock.close()
    slow[0].close()


def test_silent_connections_free_the_connection_limit(server: tuple[str, int]) -> None:
    """Connections that never send a byte fill the limit (503) only until the header deadline."""
    url = f"http://{server[0]}:{server[1]}"
    silent = [socket.create_connection(server, timeout=5) for _ in range(MAX_CONNECTIONS + 5)]
    time.sleep(0.2)
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 503
    deadline = time.monotonic() + HEADER_TIMEOUT + SLACK
    while httpx.get(f"{url}/healthz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "silent connections still hold the server"
        time.sleep(0.1)
    for sock in silent:
        sock.settimeout(SLACK)
        assert sock.recv(16) == b""
        sock.close()


def test_slow_body_is_cut_off(server: tuple[str, int]) -> None:
    """A login form whose body arrives a byte at a time is closed at the body deadline."""
    sock = socket.create_connection(server, timeout=5)
    sock.sendall(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 10000\r\n\r\n"
    )
    took = closed_by_server(sock, b"password=x&", 0.2, BODY_TIMEOUT + HEADER_TIMEOUT + SLACK)
    assert took >= BODY_TIMEOUT - 0.5
    sock.close()


def test_oversized_head_is_refused(server: tuple[str, int]) -> None:
    sock = socket.create_connection(server, timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10))
    sock.settimeout(5)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    sock.close()


def test_kept_alive_connection_gets_a_new_head_deadline(server: tuple[str, int]) -> None:
    """After a full request and answer, the next head on the same connection has its deadline
    too, even when it opens with blank lines."""
    sock = socket.create_connection(server, timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    took = closed_by_server(sock, b"\r\n", 0.2, 5 + HEADER_TIMEOUT + SLACK)
    assert took <= HEADER_TIMEOUT + SLACK
    sock.close()
