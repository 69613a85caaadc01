"""The collectives training relies on, across two real Gloo processes, and alone."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from nmt.training.distributed import ALONE, World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, results) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip
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


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_ranks_sum_agree_and_take_rank_0s_word():
    manager = mp.get_context("spawn").Manager()
    results = manager.dict()
    mp.start_processes(_rank, args=(free_port(), results), nprocs=2, start_method="spawn")
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
