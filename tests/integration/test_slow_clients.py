"""A client that trickles its request is cut off, and the API keeps answering everyone else."""

import socket
import time
from pathlib import Path

import pytest
import requests
from stack import running_stack

pytestmark = pytest.mark.integration


def trickle(port: int, pieces: list[bytes], every_s: float, give_up_s: float) -> float:
    """Send `pieces` one per `every_s`; the seconds until the server closed the connection."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(give_up_s)
        for piece in pieces:
            try:
                sock.sendall(piece)
            except OSError:  # closed by the server
                break
            time.sleep(every_s)
        try:
            while sock.recv(1024):
                pass
        except TimeoutError:
            pytest.fail(f"the connection was still open after {give_up_s} s")
        except OSError:
            pass
    return time.monotonic() - started


def test_trickled_headers_bodies_and_silent_connections_are_cut_off(tmp_path: Path) -> None:
    settings = {"http_header_timeout_s": 1, "http_body_timeout_s": 2}
    with running_stack(tmp_path, **settings) as stack:
        port = stack.api_port
        headers = b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        silent = trickle(port, [], 0, give_up_s=10)
        slow_headers = trickle(port, [bytes([b]) for b in headers], 0.2, give_up_s=15)
        body = [headers + b"\r\n", *([b"{" * 10] * 40)]
        slow_body = trickle(port, body, 0.2, give_up_s=15)
        assert silent < 3 and slow_headers < 3 and slow_body < 5, (silent, slow_headers, slow_body)
        assert requests.get(f"{stack.api_url}/health/live", timeout=5).status_code == 200
