"""onnxruntime sessions for an exported model's two graphs, and the state between steps.

`Model` holds one model's encoder and decoder-step sessions. `Stepper` holds, for a batch
being searched, every member's step inputs by name: the carried state (hidden, cell,
input_feed), which each step replaces with its `*_out` outputs, and the source tensors
(memory, keys, mask), which stay put. An ensemble steps every member and mixes their
distributions as nmt.decode.ensemble does: the mean of the probabilities, in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from nmt_runtime.manifest import Graphs


def session_options(threads: int | None) -> ort.SessionOptions:
    """One search runs its operators one after another (inter-op 1); `threads` share
    each operator's work (None: onnxruntime's default, one per physical core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: no notes about unused initializers
    return options


class Model:
    """One exported model: its two sessions and what its step takes and gives."""

    def __init__(self, graphs: Graphs, options: ort.SessionOptions):
        providers = ["CPUExecutionProvider"]
        self.graphs = graphs
        self.encoder = ort.InferenceSession(str(graphs.encoder), options, providers=providers)
        self.step = ort.InferenceSession(str(graphs.decoder_step), options, providers=providers)
        self.step_inputs = [i.name for i in self.step.get_inputs()]
        self.step_outputs = [o.name for o in self.step.get_outputs()]
        self.attention = graphs.attention
        self.vocab = self.step.get_outputs()[self.step_outputs.index("log_probs")].shape[1]

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> dict[str, np.ndarray]:
        """src (B, S) int64, src_lengths (B,) → the step's inputs but prev_tokens, by name."""
        names = [o.name for o in self.encoder.get_outputs()]
        found = self.encoder.run(None, {"src": src, "src_lengths": src_lengths})
        wanted = set(self.step_inputs)
        return {name: value for name, value in zip(names, found, strict=True) if name in wanted}


def mean_of_probabilities(log_probs: Sequence[np.ndarray]) -> np.ndarray:
    """log((1/M) Σ_m exp(log_probs[m])), stable and exact for identical members, as
    nmt.decode.ensemble.mean_of_probabilities computes it; -inf where all are -inf."""
    stacked = np.stack([x.astype(np.float32) for x in log_probs])  # (M, N, V)
    top = stacked.max(axis=0)
    top = np.where(np.isfinite(top), top, np.float32(0.0))
    with np.errstate(divide="ignore"):
        return (top + np.log(np.exp(stacked - top).mean(axis=0))).astype(np.float32)


class Stepper:
    """The search state of one batch for every member of a model (nmt_runtime.search)."""

    def __init__(self, models: Sequence[Model], src: np.ndarray, src_lengths: np.ndarray):
        self.models = list(models)
        self.states = [m.encode(src, src_lengths) for m in self.models]

    def expand(self, beam: int) -> None:
        """Each sentence's row repeated `beam` times: row b·beam + j is sentence b."""
        if beam > 1:
            rows = np.repeat(np.arange(self._rows()), beam)
            self._take(rows, everything=True)

    def _rows(self) -> int:
        model, state = self.models[0], self.states[0]
        return state["hidden"].shape[model.graphs.axes["hidden"]]

    def step(self, prev_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """prev_tokens (N,) → log-probabilities (N, V) and the attention (N, S) (the mean
        over the members with attention), every member's state advanced."""
        log_probs, attentions = [], []
        for model, state in zip(self.models, self.states, strict=True):
            feeds = dict(state, prev_tokens=prev_tokens.astype(np.int64, copy=False))
            found = dict(zip(model.step_outputs, model.step.run(None, feeds), strict=True))
            for out_name, in_name in model.graphs.state.items():
                state[in_name] = found[out_name]
            log_probs.append(found["log_probs"])
            if model.attention:
                attentions.append(found["attention"])
        if len(self.models) == 1:
            mixed = log_probs[0]
        else:
            mixed = mean_of_probabilities(log_probs)
        attention = None
        if attentions:
            attention = attentions[0] if len(attentions) == 1 else np.mean(attentions, axis=0)
        return mixed, attention

    @property
    def top_k(self) -> bool:
        """Whether `step_top` works: one model (an ensemble mixes whole distributions)
        whose step graph ranks its own log-probs (exported with top_k)."""
        return len(self.models) == 1 and self.models[0].graphs.top_k

    def step_top(
        self, prev_tokens: np.ndarray, count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """As `step`, but the graph ranks: prev_tokens (N,) → each row's best `count`
        log-probs (N, count) and their token ids (N, count), best first, the </s>
        log-probs (N,), the attention (N, S) or None. Only when `top_k` is true."""
        model, state = self.models[0], self.states[0]
        carried = list(model.graphs.state)
        wanted = [*carried, "top_log_probs", "top_ids", "eos_log_probs"]
        wanted += ["attention"] if model.attention else []
        feeds = dict(
            state,
            prev_tokens=prev_tokens.astype(np.int64, copy=False),
            top_k=np.array([min(count, model.vocab)], dtype=np.int64),
        )
        found = dict(zip(wanted, model.step.run(wanted, feeds), strict=True))
        for out_name, in_name in model.graphs.state.items():
            state[in_name] = found[out_name]
        attention = found["attention"] if model.attention else None
        return found["top_log_probs"], found["top_ids"], found["eos_log_probs"][:, 0], attention

    def reorder(self, rows: np.ndarray, shrunk: bool) -> None:
        """Hypothesis b ← row rows[b]; the source tensors too only if sentences left."""
        self._take(rows, everything=shrunk)

    def _take(self, rows: np.ndarray, everything: bool) -> None:
        for model, state in zip(self.models, self.states, strict=True):
            for name, value in state.items():
                if everything or name not in model.graphs.source:
                    state[name] = np.take(value, rows, axis=model.graphs.axes[name])
