"""benchmarks/decode_speed.py times the runtime beside PyTorch (run once, not timed here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a benchmark run

pytest.importorskip("onnxruntime")

from helpers.exporting import ROOT, exported  # noqa: E402


def test_decode_speed_reports_the_runtime_beside_pytorch(tmp_path):
    run, _ = exported("gru_bahdanau")
    source = tmp_path / "src.txt"
    source.write_text("one red dog sleeps\ni see three cats\n", encoding="utf-8")
    command = [
        sys.executable, str(ROOT / "benchmarks" / "decode_speed.py"), "--model", str(run),
        "--source", str(source), "--beam", "1", "--beam", "5", "--precision", "fp32",
        "--runtime", "fp32", "--runtime", "int8", "--threads", "1", "--repeat", "1",
        "--latency-lines", "2", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert set(results) == {
        f"{name}_beam{beam}_batch8000_threads1"
        for name in ("fp32", "runtime_fp32", "runtime_int8")
        for beam in (1, 5)
    }
    fp32, runtime = (
        results["fp32_beam5_batch8000_threads1"],
        results["runtime_fp32_beam5_batch8000_threads1"],
    )
    assert runtime["mean_output_tokens"] == fp32["mean_output_tokens"]  # the same output
    assert runtime["output_tokens_per_second"] > 0 and runtime["latency_ms_p90"] > 0
