"""One model → encoder.onnx and decoder_step.onnx: traced, checked, compared, quantized.

The graphs are traced by PyTorch's TorchScript exporter (`dynamo=False`). The newer
exporter (torch.export, `dynamo=True`) cannot follow the encoder's packed sequences,
whose per-step batch sizes come from the lengths, which are data: with torch 2.13 it stops
there ("zeros(): argument 'size' ... got FakeTensor"). The TorchScript exporter turns
packing into the `sequence_lens` input of ONNX's LSTM / GRU / RNN operators, so a padded
batch gives the numbers each sentence gives alone, as in PyTorch.

Every graph is checked with `onnx.checker` (after quantization too), and the fp32 graphs
are run once with onnxruntime on the tracing batch and compared with PyTorch: an export
that computes something else is a bug in the exporter and stops here, not in a user's
translations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmt.export.graphs import EncoderGraph, Names, StepGraph, dynamic_axes, example_inputs
from nmt.model.seq2seq import Seq2Seq
from nmt.vocab import EOS

TOP_K = 11  # the step graph's default top_k: 2·beam + 1 for beam 5
TOLERANCE = 1e-4  # largest difference from PyTorch on the tracing batch (fp32)
ENCODER, STEP = "encoder.onnx", "decoder_step.onnx"
_DTYPES = {1: "float32", 7: "int64", 9: "bool"}  # onnx.TensorProto element types


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's warnings, silenced: that the TorchScript exporter is deprecated, that
    packed sequences have no shape inference, that an LSTM traced with batch 2 may not run
    at other batch sizes (it does: the tests run every size). PyTorch's C++ warnings go to
    file descriptor 2 directly, so that is pointed at /dev/null while tracing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def trace(model: Seq2Seq, directory: Path, opset: int) -> Names:
    """Write `model`'s two graphs (fp32) into `directory`; return their tensor names."""
    encoder, step = EncoderGraph(model).eval(), StepGraph(model).eval()
    names = encoder.names
    encoder_args, step_args = example_inputs(model)
    encoder_axes, step_axes = dynamic_axes(names)
    common: dict[str, Any] = {"dynamo": False, "opset_version": opset, "do_constant_folding": True}
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            encoder,
            encoder_args,
            str(directory / ENCODER),
            input_names=["src", "src_lengths"],
            output_names=list(names.encoder_outputs),
            dynamic_axes=encoder_axes,
            **common,
        )
        torch.onnx.export(
            step,
            step_args,
            str(directory / STEP),
            input_names=list(names.step_inputs),
            output_names=list(names.step_outputs),
            dynamic_axes=step_axes,
            **common,
        )
    check(directory / ENCODER)
    check(directory / STEP)
    compare(model, directory)
    add_top_k(directory / STEP)
    check(directory / STEP)
    return names


def add_top_k(path: Path) -> None:
    """Give the step graph each row's best `top_k` log-probs and their ids, and the </s>
    column, so that beam search need not copy out and rank all (N, V) log-probs:

        top_k (1,) int64, optional (default TOP_K) → top_log_probs (N, top_k) float32,
        top_ids (N, top_k) int64 (best first), eos_log_probs (N, 1) float32

    `top_k` is an input with a default (an initializer of the same name), so a runtime
    that does not know it runs the graph as before; log_probs stays an output."""
    import onnx
    from onnx import TensorProto, helper

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    graph.initializer.extend(
        [
            helper.make_tensor("top_k", TensorProto.INT64, [1], [TOP_K]),
            helper.make_tensor("eos_id", TensorProto.INT64, [1], [EOS]),
        ]
    )
    graph.input.append(helper.make_tensor_value_info("top_k", TensorProto.INT64, [1]))
    graph.node.extend(
        [
            helper.make_node("TopK", ["log_probs", "top_k"], ["top_log_probs", "top_ids"], axis=1),
            helper.make_node("Gather", ["log_probs", "eos_id"], ["eos_log_probs"], axis=1),
        ]
    )
    graph.output.extend(
        [
            helper.make_tensor_value_info("top_log_probs", TensorProto.FLOAT, ["N", "K"]),
            helper.make_tensor_value_info("top_ids", TensorProto.INT64, ["N", "K"]),
            helper.make_tensor_value_info("eos_log_probs", TensorProto.FLOAT, ["N", 1]),
        ]
    )
    onnx.save(graph_model, str(path))


def check(path: Path) -> None:
    """onnx.checker's full check (shapes inferred too); raises on a malformed graph."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def compare(model: Seq2Seq, directory: Path) -> None:
    """Run both graphs with onnxruntime on the tracing batch; raise if any output is
    further than TOLERANCE from PyTorch's."""
    import onnxruntime as ort

    encoder_args, step_args = example_inputs(model)
    with torch.no_grad():
        expected = [
            *EncoderGraph(model)(*encoder_args),
            *StepGraph(model)(*step_args),
        ]
    got = []
    for name, args in ((ENCODER, encoder_args), (STEP, step_args)):
        session = ort.InferenceSession(str(directory / name), providers=["CPUExecutionProvider"])
        feeds = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
        got += session.run(None, feeds)
    for want, have in zip(expected, got, strict=True):
        if not _close(want.numpy(), have):
            raise RuntimeError(f"the exported graphs in {directory} disagree with PyTorch")


def _close(want: np.ndarray, have: np.ndarray) -> bool:
    """Same shape, same infinities, finite values within TOLERANCE (bools: equal)."""
    if want.shape != have.shape:
        return False
    if want.dtype == np.bool_ or have.dtype == np.bool_:
        return bool(np.array_equal(want, have))
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(have)) or not np.array_equal(
        want[~finite], have[~finite]
    ):
        return False
    return not finite.any() or float(np.abs(want[finite] - have[finite]).max()) <= TOLERANCE


def quantize(path: Path) -> None:
    """Replace the fp32 graph at `path` with onnxruntime's dynamic int8 quantization of its
    matrix products (MatMul, Gemm): weights stored in int8, activations quantized on the
    fly. The recurrent operators stay fp32. Checked again afterwards."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name(f"{path.stem}.int8.onnx")
    # the quantizer advises pre-processing through the root logger: a note, not a problem
    with warnings.catch_warnings(), _logging_off():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            path, quantized, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8
        )
    os.replace(quantized, path)
    check(path)


@contextlib.contextmanager
def _logging_off() -> Iterator[None]:
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def signature(path: Path) -> dict[str, list[dict[str, Any]]]:
    """A graph's inputs and outputs as the manifest lists them: name, dtype, shape (an
    int for a fixed axis, the axis' name for a dynamic one)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
            out.append({"name": value.name, "dtype": _DTYPES[tensor.elem_type], "shape": dims})
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}
