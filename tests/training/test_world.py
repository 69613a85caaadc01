"""The collectives training relies on, across two real Gloo processes, and alone; and that
closing the world ends the process group's threads."""

from __future__ import annotations

import gc
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from nmt.training.distributed import ALONE, World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results) -> None:
    _join(rank, port)
    world = World.from_env("cpu")
    try:
        results[rank] = {
            "sum": world.sum(rank + 1.5),
            "all_true": world.all(True),
            "one_false": world.all(rank == 0),  # rank 1 says no
            "share": world.share({"from": rank}),
            "main": world.main,
            "device": str(world.device(torch.device("cpu"))),
        }
    finally:
        world.close()


def _join(rank: int, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip


def _threads() -> list[str]:
    """The names of this process's native threads (Gloo names its own), from /proc."""
    tasks = Path("/proc/self/task").iterdir()
    return sorted((task / "comm").read_text().strip() for task in tasks)


def _train_and_close(rank: int, port: int, results) -> None:
    """What nmt.train does with the world: DDP built after joining, one update, the
    wrapper freed, the world closed; then the threads left in this process."""
    torch.set_num_threads(1)
    _join(rank, port)
    before = _threads()
    world = World.from_env("cpu")
    ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 2))
    ddp(torch.ones(4, 3)).sum().backward()
    del ddp
    gc.collect()
    world.close()
    results[rank] = {"before": before, "after": _threads()}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")
@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
@pytest.mark.slow
def test_closing_the_world_ends_the_process_groups_threads():
    """Gloo's threads must end at World.close, not in interpreter shutdown, where tearing
    them down aborted rank 0 now and then after a finished run."""
    results = _spawn(_train_and_close)
    for rank in (0, 1):
        assert results[rank]["after"] == results[rank]["before"], results[rank]


def _spawn(fn) -> dict:
    """fn(rank, port, results) in two spawned processes; what they put in results."""
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.start_processes(fn, args=(free_port(), results), nprocs=2, start_method="spawn")
    return dict(results)


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_ranks_sum_agree_and_take_rank_0s_word():
    results = _spawn(_rank)
    for rank in (0, 1):
        got = results[rank]
        assert got["sum"] == 1.5 + 2.5
        assert got["all_true"] is True and got["one_false"] is False  # on both ranks
        assert got["share"] == {"from": 0}
        assert got["main"] is (rank == 0) and got["device"] == "cpu"


def test_alone_every_collective_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = World.from_env("cpu")
    assert world == ALONE and world.main and not world.active
    assert world.sum(3.5) == 3.5 and world.all(False) is False and world.share([1]) == [1]
