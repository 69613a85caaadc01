"""`nmt serve` as a user runs it: a process, a load of mixed requests, SIGTERM."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from helpers.serving import TIMEOUT, post, request, stop  # noqa: E402
from helpers.serving import start as start_server  # noqa: E402

from nmt.cli.main import app  # noqa: E402
from nmt.decode.translate import Translator  # noqa: E402


def start(model_dir: Path, *flags: str, prelude: str = "") -> tuple[subprocess.Popen, str]:
    """`nmt serve` in a process (after the Python statements `prelude`), once it answers."""
    code = f"{prelude}\nfrom nmt.cli.main import main; main()"
    command = [sys.executable, "-c", code, "serve"]
    return start_server([*command, "--model", str(model_dir), "--device", "cpu", *flags])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mixed_requests(count: int, target: str) -> list[tuple[str, object, int | None]]:
    """(path, JSON body, expected 4xx or None for a good one), good and bad interleaved."""
    bad = [
        ("/api/translate", {"text": []}, 400),
        ("/api/translate", {"text": 7}, 400),
        ("/api/translate", {"text": "1", "model": "nope"}, 404),
        ("/api/translate", {"text": "1 " * 3000}, 413),
        ("/translate", {"q": "1", "source": "xx", "target": target}, 400),
    ]
    out = []
    for i in range(count):
        line = " ".join(str((i * 7 + k) % 10) for k in range(1 + i % 6))
        if i % 4 == 3:
            out.append(bad[i % len(bad)])
        elif i % 2:
            out.append(("/translate", {"q": line, "source": "auto", "target": target}, None))
        else:
            out.append(("/api/translate", {"text": line, "beam_size": 5}, None))
    return out


def text_of(path: str, data: dict) -> str:
    return data["translatedText"] if path == "/translate" else data["translations"][0]["text"]


def line_of(path: str, body: dict) -> str:
    return body["q"] if path == "/translate" else body["text"]


@pytest.mark.slow
def test_a_load_of_mixed_requests_is_answered_right_and_memory_stays_bounded(model_dir):
    translator = Translator.load(model_dir, device="cpu")
    work = mixed_requests(200, translator.recipe.data.target_lang)
    good_lines = sorted({line_of(p, b) for p, b, bad in work if bad is None})
    expected = dict(zip(good_lines, translator.translate(good_lines, beam_size=5), strict=True))
    process, address = start(model_dir)
    try:
        rounds = []
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for part in (work[:100], work[100:]):
                answers = list(pool.map(lambda w: post(address, w[0], w[1]), part))
                rounds.append((part, answers, rss_kib(process.pid)))
    finally:
        code, err = stop(process)
    answered = 0
    for part, answers, _ in rounds:
        for (path, body, bad), (status, data) in zip(part, answers, strict=True):
            answered += 1
            if bad is None:
                assert status == 200, data
                assert text_of(path, data) == expected[line_of(path, body)]
            else:
                assert status == bad and set(data) == {"error"}
    assert answered == 200 and code == 0, err
    growth_mib = (rounds[1][2] - rounds[0][2]) / 1024
    assert growth_mib < 50, f"the server grew {growth_mib:.0f} MiB over the second 100 requests"


@pytest.mark.slow
def test_sigterm_answers_the_requests_in_flight_then_exits_0(model_dir):
    translator = Translator.load(model_dir, device="cpu")
    process, address = start(model_dir, "--max-wait-ms", "1500")  # a request waits 1.5 s
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post, address, "/api/translate", {"text": "5 6 7"})
            time.sleep(0.5)  # the request now waits in the batcher
            process.send_signal(signal.SIGTERM)
            status, data = pending.result(timeout=TIMEOUT)
        code, err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 200 and data["translations"][0]["text"] == translator.translate(["5 6 7"])[0]
    assert code == 0, err
    with pytest.raises(OSError, match="Connection refused"):
        request(address, "GET", "/health", timeout=2)


def test_serve_names_what_is_wrong_with_its_flags(runner, tmp_path, model_dir):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path)])
    assert result.exit_code == 1 and "not a model directory" in result.output
    result = runner.invoke(app, ["serve", "--model", str(model_dir), "--max-texts", "0"])
    assert result.exit_code == 1 and "--max-texts 0" in result.output
    result = runner.invoke(app, ["serve", "--model", str(model_dir), "--port", "70000"])
    assert result.exit_code == 1 and "--port 70000" in result.output


# The batcher's worker dies as it would on a bug outside `run`'s `except Exception`.
KILL_THE_BATCHER = """
import nmt_runtime.serve.server
class Halt(BaseException):
    pass
def halt(self, key, ids):
    raise Halt("the worker is gone")
nmt_runtime.serve.server.Server.run = halt
"""


@pytest.mark.slow
def test_a_server_whose_batcher_died_fails_requests_at_once_and_sigterm_stops_it(model_dir):
    process, address = start(model_dir, prelude=KILL_THE_BATCHER)
    try:
        answers = [post(address, "/api/translate", {"text": "1 2"}, timeout=10) for _ in "ab"]
        health = request(address, "GET", "/health", timeout=10)
        code, err = stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    for status, data in [*answers, health]:
        assert status == 503 and "worker thread stopped: Halt" in data["error"]
    assert code == 0, err
    assert "Traceback" in err and "Halt: the worker is gone" in err  # the bug's traceback


OUT_OF_RANGE = [
    ("--max-wait-ms", "inf"),
    ("--max-wait-ms", "nan"),
    ("--max-wait-ms", "1e300"),
    ("--max-wait-ms", "-1"),
    ("--max-chars", "0"),
    ("--max-chars", "100000000"),
    ("--max-tokens", "10000000"),
    ("--max-texts", "10000000"),
    ("--max-body-bytes", str(1 << 40)),
    ("--batch-tokens", "1000000000"),
    ("--request-timeout", "0"),
    ("--request-timeout", "inf"),
    ("--threads", "100000"),
]


@pytest.mark.parametrize(("flag", "value"), OUT_OF_RANGE)
def test_serve_refuses_each_number_out_of_its_range(runner, model_dir, monkeypatch, flag, value):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: started.append(self))
    result = runner.invoke(app, ["serve", "--model", str(model_dir), flag, value])
    assert (result.exit_code, started) == (1, []), result.output
    line = result.output.strip()
    assert line.startswith(f"error: {flag} ") and "give" in line and "\n" not in line


def test_serve_without_its_extra_says_how_to_install_it(runner, model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails
    result = runner.invoke(app, ["serve", "--model", str(model_dir)])
    assert result.exit_code == 1 and "pip install fastapi uvicorn" in result.output
