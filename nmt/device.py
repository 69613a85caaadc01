"""Where and how the computation runs: the device, precision, seeds and determinism."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Literal

import numpy as np
import torch

from nmt.errors import UserError

Precision = Literal["fp32", "bf16", "int8"]  # int8: inference only (nmt.model.quantize_int8)


def pick_device(name: str = "auto") -> torch.device:
    """ "auto" means CUDA when PyTorch sees a GPU, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
    return torch.device(name)


def make_autocast(
    precision: Precision | str, device: torch.device
) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked (CUDA, or a CPU: fast where it has AVX-512 BF16 or AMX);
    otherwise a context that changes nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed every generator a run draws from: Python's, NumPy's global one, torch's."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # the CPU generator and every CUDA device's


def set_deterministic(on: bool) -> None:
    """Make every kernel choice reproducible, or leave PyTorch's fast defaults.

    cuBLAS needs a fixed workspace to be deterministic; the variable must be set before
    the first cuBLAS call, which training makes only after this.
    """
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False
