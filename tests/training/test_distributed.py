"""Data-parallel training under torchrun (Gloo, CPU): N processes make the updates one
process makes on the union of their batches; one writer; no hangs; resume checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers.cli import set_args
from safetensors.torch import load_file

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this PyTorch has no torch.distributed"
)

TIMEOUT = 240
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*launch: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "nmt"]


@pytest.fixture(scope="module")
def nmt_train(quickstart, tiny_overrides) -> Callable[..., list[str]]:
    """nmt_train(out, *overrides): `nmt train`'s arguments for a tiny 4-step run into out."""
    # dropout 0: the ranks' dropout masks would differ from one process's
    run = [*tiny_overrides, "model.dropout=0", "train.max_steps=4", "train.log_every=2"]

    def arguments(out: Path, *extra: str) -> list[str]:
        args = ["train", str(quickstart), *set_args([*run, *extra]), "--output-dir", str(out)]
        return [*args, "--device", "cpu"]

    return arguments


def run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "checkpoints" / "last" / "model.safetensors")


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=1e-5), name


@pytest.fixture(scope="module")
def one_process_on_the_union(tmp_path_factory, nmt_train) -> Path:
    """One process, two batches per update: the union of two ranks' batches."""
    out = tmp_path_factory.mktemp("one") / "run"
    run([sys.executable, "-m", "nmt", *nmt_train(out, "train.accumulate=2")])
    return out


@pytest.mark.slow
def test_two_ranks_update_as_one_process_on_their_union(
    tmp_path, one_process_on_the_union, nmt_train
):
    out = tmp_path / "two"
    done = run(torchrun("--standalone", "--nproc-per-node=2") + nmt_train(out))
    assert_same(weights(out), weights(one_process_on_the_union))
    plain = tmp_path / "plain"  # one batch per update: other weights, so the test can fail
    run([sys.executable, "-m", "nmt", *nmt_train(plain)])
    a, b = weights(plain), weights(out)
    assert any(not torch.allclose(a[k], b[k]) for k in a)
    # one writer, one report
    assert done.stdout.count("trained 4 steps") == 1
    assert (out / "results.json").is_file() and (out / "model.safetensors").is_file()
    metrics = (out / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 1  # evaluated once, by rank 0


@pytest.mark.slow
def test_two_ranks_with_accumulation_update_as_one_process_on_their_union(tmp_path, nmt_train):
    out, single = tmp_path / "two", tmp_path / "one"
    run(torchrun("--standalone", "--nproc-per-node=2") + nmt_train(out, "train.accumulate=2"))
    run([sys.executable, "-m", "nmt", *nmt_train(single, "train.accumulate=4")])
    assert_same(weights(out), weights(single))


@pytest.mark.slow
def test_two_machines_on_localhost_train_as_one_process(
    tmp_path, one_process_on_the_union, nmt_train
):
    """The README's two-machine command, run twice on 127.0.0.1: node 0 hosts the
    rendezvous at the endpoint, node 1 joins it."""
    out, port = tmp_path / "nodes", free_port()
    launch = ["--nnodes=2", "--nproc-per-node=1", f"--rdzv-endpoint=127.0.0.1:{port}"]
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]  # files: a pipe could fill
    nodes = []
    for rank, log in enumerate(logs):
        with log.open("w") as sink:
            nodes.append(subprocess.Popen(
                torchrun(*launch, f"--node-rank={rank}") + nmt_train(out),
                env=ENV, stdout=sink, stderr=subprocess.STDOUT,
            ))  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    try:
        while any(node.poll() is None for node in nodes) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for node in nodes:
            node.kill()
            node.wait()
    outputs = [log.read_text() for log in logs]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outputs)
    assert "trained 4 steps" in outputs[0]  # node 0 holds global rank 0: it reports
    assert_same(weights(out), weights(one_process_on_the_union))


@pytest.mark.slow
def test_a_killed_rank_ends_the_whole_job(tmp_path, nmt_train):
    out = tmp_path / "run"
    command = torchrun("--standalone", "--nproc-per-node=2") + nmt_train(
        out, "train.max_steps=100000", "train.max_epochs=null", "train.eval_every=0"
    )
    job = subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (out / "metrics.jsonl").is_file():  # training is under way
            assert job.poll() is None and time.monotonic() < deadline, "it never trained"
            time.sleep(0.2)
        workers = worker_pids(job.pid)
        assert len(workers) == 2
        os.kill(max(workers), signal.SIGKILL)
        output, _ = job.communicate(timeout=60)  # bounded: the job must end by itself
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert "SIGKILL" in output or "Signal 9" in output or "exitcode  : -9" in output


def worker_pids(parent: int) -> list[int]:
    """The processes torchrun started (its children), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(entry.name))
    return children


@pytest.mark.slow
def test_a_resumed_run_with_dropout_continues_as_if_never_stopped(tmp_path, nmt_train):
    """Each rank saves and restores its own random state, so dropout masks after a
    resume are those an uninterrupted run draws."""
    launch = torchrun("--standalone", "--nproc-per-node=2")
    dropout = ["model.dropout=0.3", "train.eval_every=100"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run(launch + nmt_train(straight, *dropout, "train.max_steps=6"))
    run(launch + nmt_train(stopped, *dropout, "train.max_steps=3"))
    run([*launch, *nmt_train(stopped, *dropout, "train.max_steps=6"), "--resume"])
    assert_same(weights(stopped), weights(straight))


@pytest.mark.slow
def test_resume_needs_as_many_processes(tmp_path, nmt_train):
    out = tmp_path / "run"
    run(torchrun("--standalone", "--nproc-per-node=2") + nmt_train(out))
    command = [sys.executable, "-m", "nmt", *nmt_train(out, "train.max_steps=6"), "--resume"]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 1
    assert "trained by 2 processes and this run has 1" in done.stderr
    resumed = torchrun("--standalone", "--nproc-per-node=2") + nmt_train(out, "train.max_steps=6")
    assert "trained 6 steps" in run([*resumed, "--resume"]).stdout


@pytest.mark.slow
def test_a_diverged_valid_loss_stops_every_rank_with_rank_0s_message(tmp_path, nmt_train):
    """Rank 0 evaluates; the others wait for its decisions and get the divergence too."""
    out = tmp_path / "run"
    command = torchrun("--standalone", "--nproc-per-node=2") + nmt_train(
        out, "train.learning_rate=1e30", "train.eval_every=2"
    )
    done = subprocess.run(command, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: step 2: ")]
    assert len(errors) == 2 and errors[0] == errors[1], done.stderr
    assert "the valid" in errors[0] and "is not finite" in errors[0]
    assert not (out / "model.safetensors").exists()
