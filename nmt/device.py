"""Where and how the computation runs: the device, precision, seeds and determinism."""

from __future__ import annotations

import contextlib
import os
import random
from typing import Literal

import numpy as np
import torch

from nmt.errors import UserError

# int8: inference only (nmt.model.seq2seq.quantize_int8); fp16: training only, with a GradScaler
Precision = Literal["fp32", "bf16", "fp16", "int8"]


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
    """bf16 or fp16 autocast when asked (bf16: CUDA, or a CPU, fast where it has AVX-512
    BF16 or AMX; fp16: for GPUs without bf16, and needs `make_scaler`'s loss scaling);
    otherwise a context that changes nothing."""
    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


def make_scaler(
    precision: Precision | str, device: torch.device, scale: float | None = None
) -> torch.amp.GradScaler | None:
    """For fp16 training, dynamic loss scaling (Micikevicius et al. 2018): the loss is
    multiplied by `scale` (2^16 at first) before the backward pass so that small fp16
    gradients do not underflow to zero; an update whose gradients overflow is skipped and
    the scale halved; 2000 clean updates in a row double it. None for other precisions."""
    if precision != "fp16":
        return None
    check_training_precision(precision, device)
    return torch.amp.GradScaler(device.type, init_scale=scale or 2.0**16)


def check_training_precision(precision: Precision | str, device: torch.device) -> None:
    """fp16 training is for CUDA: oneDNN has no fp16 LSTM/GRU kernels on most CPUs."""
    if precision == "fp16" and device.type != "cuda":
        raise UserError(
            f"train.precision fp16 trains on CUDA GPUs (those without bf16); on {device.type} "
            "use train.precision bf16 (fast on CPUs with AVX-512 BF16 or AMX) or fp32"
        )


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
