"""Data-parallel training with PyTorch's own engine: who this process is among the ranks
torchrun started, and the few collective operations training needs.

    torchrun --nproc-per-node=2 -m nmt train RECIPE

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `World.from_env` joins the process group
(NCCL on CUDA, Gloo on the CPU) and pins each rank to its GPU. With one process (no
torchrun) nothing is initialized and every operation here is the identity, so the
training code reads the same either way. What each rank does (nmt.training.setup):

    every rank    reads the corpora, takes its share of each update's batches (the
                  batches of one update are cut from the same (seed, epoch) schedule on
                  every rank), normalizes its loss by the *global* target-token count
    rank 0        checks and writes the model directory, trains the tokenizers,
                  evaluates, saves, scores the test set, reports events
    the others    load rank 0's tokenizers, wait while it evaluates, take its decisions
                  (stop, best, learning rate) from a broadcast, never write
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from nmt.errors import UserError

TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for a lost rank


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls, device: str) -> World:
        """This process's place among torchrun's ranks (one process: rank 0 of 1)."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device != "cpu" and torch.cuda.is_available()
        if device == "cuda" and not cuda:
            raise UserError("--device cuda, but PyTorch sees no CUDA device")
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            _bind_defaults_before_the_group()
            dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
        return cls(rank, size, local)

    def device(self, picked: torch.device) -> torch.device:
        """A CUDA rank's own GPU; the CPU as it is."""
        if self.active and picked.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return picked

    def sum(self, value: float) -> float:
        """The sum of `value` over the ranks."""
        if not self.active:
            return value
        total = torch.tensor([float(value)], dtype=torch.float64, device=self._where())
        dist.all_reduce(total)
        return float(total.item())

    def all(self, flag: bool) -> bool:
        """Whether `flag` holds on every rank."""
        return flag if not self.active else self.sum(0.0 if flag else 1.0) == 0.0

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (picklable Python data), in rank order, on every rank."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def share(self, value: Any = None) -> Any:
        """Rank 0's `value`, on every rank (picklable Python data)."""
        if not self.active:
            return value
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0, device=self._where())
        return box[0]

    def _where(self) -> torch.device:
        backend = dist.get_backend()
        return torch.device("cuda", self.local_rank) if backend == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def _bind_defaults_before_the_group() -> None:
    """Import torch.distributed.nn.functional while no process group exists.

    Its functions take `group=group.WORLD` as a default argument, evaluated once, when the
    module is first imported. DistributedDataParallel imports it (through torch._dynamo)
    when it is built, after the group is: ten functions then hold the world group, which
    `destroy_process_group` cannot free. Its Gloo worker and socket threads lived on and
    were torn down in interpreter shutdown, the likely cause of rank 0's rare abort after
    a finished run ("terminate called without an active exception"). Imported first, the
    defaults hold None, and `World.close` really ends the group and joins its threads.
    """
    import torch.distributed.nn.functional  # noqa: F401 (imported for its side effect)


ALONE = World()  # one process: every collective is the identity
