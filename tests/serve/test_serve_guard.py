"""`nmt serve` under attack: hostile bodies, keys, slow clients and a dead batcher worker
each get a prompt one-line JSON error, never a 500 or a hang, and the server goes on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from helpers.serving import post, request, running  # noqa: E402

from nmt.serve.engine import TorchEngine  # noqa: E402
from nmt_runtime.serve.app import create_app  # noqa: E402
from nmt_runtime.serve.key import key_matches  # noqa: E402
from nmt_runtime.serve.limits import Limits  # noqa: E402
from nmt_runtime.serve.server import Server  # noqa: E402

KEY = "s3cret"
NESTED = b"[" * 100_000 + b"]" * 100_000  # 200 kB, under the default --max-body-bytes


@pytest.fixture(scope="module")
def served(model_dir: Path) -> TorchEngine:
    return TorchEngine.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def server(served: TorchEngine):
    with running(create_app([served])) as address:
        yield address


@pytest.fixture(scope="module")
def keyed(served: TorchEngine):
    with running(create_app([served], api_key=KEY)) as address:
        yield address


HOSTILE = [  # (path, raw JSON body, what the error names): each once gave a 500
    ("/api/translate", b'{"text": "\\ud800"}', "not valid JSON"),  # a lone surrogate
    ("/api/translate", b'{"text": ["1", "\\udfff 2"]}', "not valid JSON"),
    ("/translate", b'{"q": "\\ud800", "target": "TARGET"}', "not valid JSON"),
    ("/api/translate", b'{"text": "\xff\xfe"}', "not valid JSON"),  # not UTF-8
    ("/translate", b'{"q": "\xff", "target": "TARGET"}', "not valid JSON"),
    ("/api/translate", NESTED, "not valid JSON"),
    ("/translate", NESTED, "not valid JSON"),
    ("/api/translate", b'{"text": "1", "length_penalty": 1e308}', "length_penalty"),
    ("/api/translate", b'{"text": "1", "length_penalty": 1e400}', "length_penalty"),
    ("/api/translate", b'{"text": "1", "length_penalty": NaN}', "not valid JSON"),
]


HOSTILE_IDS = ["surrogate", "surrogate-in-list", "libre-surrogate", "not-utf8", "libre-not-utf8"]
HOSTILE_IDS += ["nested", "libre-nested", "penalty-1e308", "penalty-1e400", "penalty-nan"]


@pytest.mark.parametrize(("path", "body", "says"), HOSTILE, ids=HOSTILE_IDS)
def test_hostile_bodies_get_a_4xx_and_the_server_goes_on(server, served, path, body, says):
    body = body.replace(b"TARGET", served.target.encode())
    status, data = post(server, path, None, raw=body, headers={"Content-Type": "application/json"})
    assert 400 <= status < 500, data
    assert set(data) == {"error"} and says in data["error"] and "\n" not in data["error"]
    assert post(server, "/api/translate", {"text": "1 2"})[0] == 200


def test_a_surrogate_where_the_key_goes_is_refused_not_a_crash(keyed, served):
    assert not key_matches("\ud800", KEY) and not key_matches(b"\xed\xa0\x80", KEY)
    libre = b'{"q": "1", "target": "' + served.target.encode() + b'", "api_key": "\\ud800"}'
    status, data = post(keyed, "/translate", None, raw=libre)
    assert status == 403 and "API key" in data["error"]
    header = {"X-API-Key": "\udc80".encode("utf-8", "surrogateescape").decode("latin-1")}
    assert post(keyed, "/api/translate", {"text": "1"}, headers=header)[0] == 403
    assert post(keyed, "/translate", {"q": "1", "target": served.target}, headers=header)[0] == 403


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_the_api_docs_need_the_key_too(keyed, path):
    status, data = request(keyed, "GET", path)
    assert status == 403 and "API key" in data["error"]
    assert request(keyed, "GET", path, headers={"X-API-Key": KEY})[0] == 200


BAD_BODIES = [
    ("/api/translate", b'{"txt": "1"}'),
    ("/api/translate", b'{"text": 5, "beam_size": 0}'),
    ("/api/translate", b"{oops"),
    ("/api/translate", b"[1, 2]"),
    ("/translate", b'{"q": 5, "target": 7}'),
    ("/translate", b'{"source": "auto"}'),
    ("/translate", b"{oops"),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_the_key_is_checked_before_the_body(keyed, path, body):
    status, data = post(keyed, path, None, raw=body, headers={"Content-Type": "application/json"})
    assert (status, data) == (403, {"error": data["error"]}) and "API key" in data["error"]
    with_key = {"Content-Type": "application/json", "X-API-Key": KEY}
    assert post(keyed, path, None, raw=body, headers=with_key)[0] == 400


def test_a_half_sent_body_is_dropped_within_the_request_timeout(served):
    with running(create_app([served], Limits(request_timeout=0.5))) as address:
        host, port = address.split(":")
        head = (
            "POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n"
        )
        with socket.create_connection((host, int(port)), timeout=30) as slow:
            slow.sendall(head.encode() + b'{"text": ')  # and never the rest
            answer = b""
            while chunk := slow.recv(4096):  # until the server closes the connection
                answer += chunk
        assert post(address, "/api/translate", {"text": "1 2"})[0] == 200
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408")
    assert b"--request-timeout" in rest and b'"error"' in rest


class Halt(BaseException):
    """What stops the batcher's worker thread (no `except Exception` catches it)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_batcher_makes_health_fail_and_requests_fail_at_once(served, monkeypatch):
    def halt(self, key, ids):
        raise Halt("the worker is gone")

    monkeypatch.setattr(Server, "run", halt)
    with running(create_app([served])) as address:
        assert request(address, "GET", "/health", timeout=10)[0] == 200
        first = post(address, "/api/translate", {"text": "1 2"}, timeout=10)
        health = request(address, "GET", "/health", timeout=10)
        later = post(address, "/translate", {"q": "1", "target": served.target}, timeout=10)
    for status, data in (first, health, later):
        assert status == 503 and set(data) == {"error"} and "\n" not in data["error"]
        assert "worker thread stopped" in data["error"] and "restart nmt serve" in data["error"]
