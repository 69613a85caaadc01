"""The runtime translates where PyTorch and nmt cannot be imported: `nmt-runtime
translate` in a subprocess whose import system refuses torch and nmt writes what
PyTorch's Translator finds, and `nmt-runtime serve` answers it over HTTP. The slow test
installs runtime/ alone, with its serve extra, into a fresh venv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # exports models: seconds each

pytest.importorskip("onnxruntime")

from helpers.exporting import ROOT, exported, sources  # noqa: E402
from helpers.serving import post, request, start, stop  # noqa: E402

from nmt.decode.translate import Translator, nbest_lines  # noqa: E402

# Prepended to the child's code: any import of torch or nmt (not nmt_runtime) fails.
BLOCK = textwrap.dedent(
    """
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "nmt"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoTorch())
    """
)
RUN_CLI = BLOCK + textwrap.dedent(
    """
    try:
        import torch
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("torch was importable")
    from nmt_runtime.cli import main
    try:
        main(sys.argv[1:])
    finally:
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "nmt"))
        assert not leaked, leaked
    """
)


def run_cli(
    args: list[str], stdin: str | bytes, python: str = sys.executable, block: bool = True
) -> subprocess.CompletedProcess:
    code = ["-c", RUN_CLI] if block else ["-m", "nmt_runtime.cli"]
    return subprocess.run(
        [python, *code, *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_nmt_runtime_translates_without_torch_as_pytorch_does():
    run, out = exported("lstm_luong_general")
    lines = sources()
    torch_side = Translator.load(run, "cpu")
    greedy = run_cli(["translate", "-m", str(out), "--greedy", "--threads", "1"], "\n".join(lines))
    assert greedy.returncode == 0, greedy.stderr.decode()
    assert greedy.stdout.decode().splitlines() == torch_side.translate(lines, beam_size=1)
    beam = run_cli(["translate", "-m", str(out), "--beam", "5", "--nbest", "2"], "\n".join(lines))
    assert beam.returncode == 0, beam.stderr.decode()
    want = torch_side.search(lines, nbest=2, beam_size=5)
    expected = [row for i, found in enumerate(want) for row in nbest_lines(i, found)]
    columns = [(row.split("\t")[0], row.rstrip("\n").split("\t")[2]) for row in expected]
    rows = [row.split("\t") for row in beam.stdout.decode().splitlines()]
    assert [(r[0], r[2]) for r in rows] == columns  # the scores: tests/runtime/test_same_output


def serve_command(out: Path, python: str = sys.executable, block: bool = True) -> list[str]:
    """`nmt-runtime serve -m OUT` (torch and nmt blocked, or as the venv's command)."""
    code = ["-c", RUN_CLI] if block else ["-m", "nmt_runtime.cli"]
    return [python, *code, "serve", "-m", str(out), "--threads", "1"]


def test_nmt_runtime_serve_translates_without_torch(tmp_path):
    run, out = exported("lstm_luong_general")
    lines = [line for line in sources() if line]
    torch_side = Translator.load(run, "cpu")
    process, address = start([*serve_command(out), "--api-key", "s3cret"])
    key = {"X-API-Key": "s3cret"}
    try:
        health = request(address, "GET", "/health")
        data = torch_side.recipe.data
        pair = {"source": data.source_lang, "target": data.target_lang}
        api = post(address, "/api/translate", {"text": lines, "beam_size": 3}, headers=key)
        libre = post(address, "/translate", {"q": lines, **pair, "api_key": "s3cret"})
        keyless = post(address, "/api/translate", {"text": lines})
        body = {"text": "a", "coverage_penalty": 0.2}
        refused = post(address, "/api/translate", body, headers=key)
        too_many = post(address, "/api/translate", {"text": ["a"] * 129}, headers=key)
    finally:
        code, err = stop(process)
    assert health == (200, {"status": "ok", "models": [out.name], "api_key_required": True})
    assert [t["text"] for t in api[1]["translations"]] == torch_side.translate(lines, beam_size=3)
    assert libre == (200, {"translatedText": torch_side.translate(lines)})
    assert keyless[0] == 403
    assert refused[0] == 400 and "coverage_penalty 0.2: the exported model" in refused[1]["error"]
    assert too_many[0] == 413 and "(nmt-runtime serve --max-texts)" in too_many[1]["error"]
    assert code == 0, err  # SIGTERM; and nothing of torch or nmt was imported (RUN_CLI)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--max-texts", "0"], "error: --max-texts 0: give a number in 1..100000"),
        (["--max-wait-ms", "nan"], "error: --max-wait-ms nan: give a number in 0..10000"),
        (["--port", "70000"], "error: --port 70000: give a port in 1..65535"),
        (["--threads", "0"], "error: --threads 0: give 1 to 1024 threads"),
    ],
)
def test_nmt_runtime_serve_refuses_flags_out_of_range(flags, says):
    _, out = exported("gru_bahdanau")
    done = subprocess.run(
        [*serve_command(out), *flags], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and done.stderr == says + "\n", done.stderr


def test_nmt_runtime_serve_without_its_extra_says_how_to_install_it():
    _, out = exported("gru_bahdanau")
    no_fastapi = RUN_CLI.replace('("torch", "nmt")', '("torch", "nmt", "uvicorn")')
    command = [sys.executable, "-c", no_fastapi, "serve", "-m", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "nmt-runtime serve needs FastAPI and uvicorn" in done.stderr
    assert "pip install './runtime[serve]'" in done.stderr


def test_nmt_runtime_mistakes_are_one_line(tmp_path):
    (tmp_path / "plain").mkdir()
    done = run_cli(["translate", "-m", str(tmp_path / "plain")], "a\n")
    assert done.returncode == 1
    message = done.stderr.decode()
    assert message.startswith("error: ") and message.count("\n") == 1
    assert "not an exported model directory (no manifest.json)" in message
    _, out = exported("gru_bahdanau")
    bad = run_cli(["translate", "-m", str(out), "--nbest", "3", "--beam", "2"], "a\n")
    assert bad.returncode == 1
    assert "--nbest 3 needs a beam at least that wide" in bad.stderr.decode()
    binary = run_cli(["translate", "-m", str(out), "--greedy"], b"one\nt\xffwo\n")
    assert binary.returncode == 1
    assert "error: standard input: line 2 is not UTF-8 text" in binary.stderr.decode()


def test_a_damaged_export_is_refused_by_name(tmp_path):
    _, out = exported("rnn_luong_dot")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / "decoder_step.onnx", "ab") as f:
        f.write(b"\0")
    done = run_cli(["translate", "-m", str(copy)], "a\n")
    assert done.returncode == 1
    assert "decoder_step.onnx: damaged (its sha256 differs from manifest.json's)" in (
        done.stderr.decode()
    )


@pytest.mark.slow
def test_pip_install_runtime_into_a_fresh_venv_translates_and_serves(tmp_path):
    """`pip install './runtime[serve]'` in a venv without torch (needs the package index):
    `nmt-runtime translate`, and `nmt-runtime serve` with its page (package data)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    source = shutil.copytree(ROOT / "runtime", tmp_path / "runtime")  # pip builds in it
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", f"{source}[serve]"],
        capture_output=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr.decode()[-2000:]
    no_torch = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0
    run, out = exported("gru_words_per_side")
    lines = sources()
    done = run_cli(["translate", "-m", str(out), "--beam", "5"], "\n".join(lines), python, False)
    assert done.returncode == 0, done.stderr.decode()
    expected = Translator.load(run, "cpu").translate(lines, beam_size=5)
    assert done.stdout.decode().splitlines() == expected
    command = str(env_dir / "bin" / "nmt-runtime")
    process, address = start([command, "serve", "-m", str(out), "--threads", "1"])
    try:
        page = request(address, "GET", "/")
        served = post(address, "/api/translate", {"text": lines, "beam_size": 5})
    finally:
        code, err = stop(process)
    assert page[0] == 200 and 'id="heatmap"' in page[1]
    assert [t["text"] for t in served[1]["translations"]] == expected
    assert code == 0, err


def test_nmt_runtime_reads_a_file_argument(tmp_path, capsysbinary):
    from nmt_runtime.cli import main

    run, out = exported("gru_words_per_side")
    lines = sources(5)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    main(["translate", str(source), "-m", str(out), "--beam", "3", "--batch-tokens", "5"])
    written = capsysbinary.readouterr().out.decode("utf-8").splitlines()
    assert written == Translator.load(run, "cpu").translate(lines, beam_size=3)
