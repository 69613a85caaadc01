"""Helpers for the server tests: a real uvicorn server on 127.0.0.1 and plain HTTP calls.

Every call has a timeout, so a hung server fails a test instead of hanging CI.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


def wait_until_up(address: str, process=None) -> None:
    """Poll GET /health until it answers (a server started in another process)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if request(address, "GET", "/health", timeout=2)[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server answered on {address}")


def request(
    address: str,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request; `body` is sent as JSON, `raw` as is."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        sent = raw if raw is not None else None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        conn.request(method, path, body=sent, headers=all_headers)
        response = conn.getresponse()
        data = response.read().decode("utf-8")
        kind = response.getheader("content-type", "")
        return response.status, json.loads(data) if "json" in kind else data
    finally:
        conn.close()


def post(address: str, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
    return request(address, "POST", path, body, **kwargs)


def start(command: list[str]) -> tuple[subprocess.Popen, str]:
    """`command --port PORT` (a server command: nmt serve, nmt-runtime serve) in a process,
    on a free port, once it answers GET /health; its (process, address)."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_until_up(address, process)
    except RuntimeError:
        process.kill()
        raise RuntimeError(f"the server did not start: {process.communicate()[1]}") from None
    return process, address


def stop(process: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM (if still running), then its exit status and standard error."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, err
