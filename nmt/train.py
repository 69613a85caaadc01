"""Training: a recipe in, a model directory out.

Read top to bottom, `train` does: read the corpora → train the tokenizers → encode and
filter → build the model → loop over token-budget batches (teacher-forced forward, masked
cross-entropy, backward, clip, step) → every `eval_every` steps (or each epoch) measure
valid loss, perplexity and greedy BLEU, keep the best weights, save a resumable
checkpoint, stop early when BLEU stalls → translate the test split with the recipe's
decode settings and write results.json. It reports through one callback and never
prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmt import checkpoint, files
from nmt.batching import Batch, batch_indices, collate
from nmt.config import Recipe, TrainConfig, recipe_to_yaml
from nmt.corpus import Corpus
from nmt.data import Split, prepare_data
from nmt.device import make_autocast, pick_device
from nmt.evaluate import check_metrics, decode_summary, score
from nmt.loss import mean_nll, token_nll
from nmt.model import Seq2Seq, build_model
from nmt.tokenizer import file_names, load_tokenizers
from nmt.translate import Translator

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    # Bahdanau et al. 2015: Adadelta with rho 0.95, eps 1e-6 (learning_rate 1.0).
    "adadelta": lambda params, lr: torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-6),
}


@dataclass
class Message:
    text: str


@dataclass
class Progress:
    step: int
    epoch: float  # epochs done, fractional: 2.5 is halfway through the third
    loss: float  # per target token, label smoothing included, since the last report
    tokens_per_second: float
    learning_rate: float


@dataclass
class Evaluation:
    step: int
    epoch: float
    valid_loss: float
    valid_ppl: float
    valid_bleu: float
    best_bleu: float
    improved: bool


Event = Message | Progress | Evaluation


@dataclass
class TrainerState:
    """Where training stands; saved in checkpoints/last/trainer.json for --resume."""

    step: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # batches done in the current epoch
    best_bleu: float = -1.0
    best_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0  # evaluations since valid BLEU last improved
    last_eval_step: int = -1
    train_seconds: float = 0.0  # time in training steps only, evaluation excluded
    train_tokens: int = 0


def train(
    recipe: Recipe,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
) -> dict[str, Any]:
    """Train the recipe's model into `recipe.output_dir`; return what results.json says."""
    run_dir = checkpoint.check_run_dir(recipe, resume, overwrite)  # writes nothing yet
    dev = pick_device(device)
    check_metrics(["bleu", "chrf"], recipe.data.target_lang)
    cfg = recipe.train
    torch.manual_seed(recipe.seed)
    if dev.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products on Ampere+
    if cfg.precision == "bf16" and dev.type != "cuda":
        on_event(Message("train.precision bf16 applies on CUDA only; training in fp32"))
    autocast = make_autocast(cfg.precision, dev)

    # Data: corpora, tokenizers (a resumed run keeps its own), ids.
    saved = load_tokenizers(recipe.tokenizer, run_dir) if resume else None
    data = prepare_data(recipe, lambda text: on_event(Message(text)), saved)
    src_tok, tgt_tok, train_split, valid = data.src_tok, data.tgt_tok, data.train, data.valid

    # Only now, with the data ready, does the model directory change.
    if not resume:
        checkpoint.start_run_dir(run_dir, overwrite)
        for tok, name in zip((src_tok, tgt_tok), file_names(recipe.tokenizer), strict=True):
            files.write_bytes(run_dir / name, tok.to_bytes())
    files.write_text(run_dir / checkpoint.RECIPE, recipe_to_yaml(recipe))

    # Model and optimizer.
    model = build_model(recipe.model, src_tok.vocab_size, tgt_tok.vocab_size).to(dev)
    translator = Translator(model, recipe, src_tok, tgt_tok, dev)  # decodes valid and test
    params = sum(p.numel() for p in model.parameters())
    on_event(Message(f"model: {params / 1e6:.2f}M parameters on {dev}"))
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=cfg.lr_decay, patience=cfg.lr_patience
    )
    state = TrainerState()
    if resume:
        state = TrainerState(**checkpoint.load_last(run_dir, model, optimizer, scheduler, dev))
        on_event(Message(f"resumed at step {state.step}, epoch {state.epoch}"))

    def evaluate_and_save() -> None:
        """Valid loss, perplexity and greedy BLEU; keep the best weights; checkpoint."""
        state.last_eval_step = state.step
        entry: dict[str, Any] = {"step": state.step, "epoch": epochs_done()}
        if valid is not None:
            with autocast:
                loss, bleu = _validate(translator, valid, cfg.batch_tokens)
            # Better BLEU wins; at equal BLEU (say 0 early on), lower loss does.
            improved = (bleu, -loss) > (state.best_bleu, -state.best_loss)
            state.bad_evals = 0 if improved else state.bad_evals + 1
            if improved:
                state.best_bleu, state.best_loss, state.best_step = bleu, loss, state.step
            if cfg.lr_schedule == "plateau":
                scheduler.step(bleu)
            entry.update(
                valid_loss=round(loss, 4), valid_ppl=round(math.exp(loss), 3), valid_bleu=bleu
            )
            on_event(
                Evaluation(
                    state.step, epochs_done(), loss, math.exp(loss), bleu, state.best_bleu, improved
                )
            )
        else:
            improved = True  # no valid split: the latest weights are the ones to keep
        if improved:
            checkpoint.save_weights(run_dir / checkpoint.WEIGHTS, model)
        entry.update(
            learning_rate=optimizer.param_groups[0]["lr"],
            train_tokens_per_second=round(state.train_tokens / max(state.train_seconds, 1e-9)),
        )
        files.append_jsonl(run_dir / checkpoint.METRICS, entry)
        checkpoint.save_last(run_dir, model, optimizer, scheduler, dataclasses.asdict(state))

    # The loop.
    lengths = [len(x) for x in train_split.src_ids], [len(y) for y in train_split.tgt_ids]

    def epoch_batches() -> list[list[int]]:
        """The current epoch's batches; they depend only on (seed, epoch), so a resumed run
        sees the same ones."""
        rng = np.random.default_rng([recipe.seed, state.epoch])
        return batch_indices(*lengths, cfg.batch_tokens, rng)

    def epochs_done() -> float:
        return round(state.epoch + state.position / len(batches), 2)

    def limit_reached() -> str | None:
        if cfg.max_steps is not None and state.step >= cfg.max_steps:
            return f"{cfg.max_steps} steps"
        if cfg.max_epochs is not None and state.epoch >= cfg.max_epochs:
            return f"{cfg.max_epochs} epochs"
        if cfg.max_minutes is not None and time.perf_counter() - started >= 60 * cfg.max_minutes:
            return f"{cfg.max_minutes} minutes"
        if cfg.patience and state.bad_evals >= cfg.patience:
            return f"no better valid BLEU in {cfg.patience} evaluations"
        return None

    started = time.perf_counter()
    window_loss = torch.zeros((), device=dev)
    window_tokens, window_start = 0, time.perf_counter()
    batches = epoch_batches()
    stop = limit_reached()  # a resumed run may already be done
    while stop is None:
        for rows in batches[state.position :]:
            batch = collate(train_split.src_ids, train_split.tgt_ids, rows)
            tokens = batch.target_tokens
            loss_sum = train_step(model, batch.to(dev), tokens, optimizer, cfg, autocast)
            state.step += 1
            state.position += 1
            window_loss += loss_sum
            window_tokens += tokens

            epoch_end = state.position == len(batches)
            due_eval = (cfg.eval_every and state.step % cfg.eval_every == 0) or (
                not cfg.eval_every and epoch_end
            )
            if state.step % cfg.log_every == 0 or due_eval:
                loss = float(window_loss) / window_tokens  # waits for the GPU
                seconds = time.perf_counter() - window_start
                state.train_seconds += seconds
                state.train_tokens += window_tokens
                if state.step % cfg.log_every == 0:
                    lr = optimizer.param_groups[0]["lr"]
                    on_event(Progress(state.step, epochs_done(), loss, window_tokens / seconds, lr))
                window_loss.zero_()
                window_tokens = 0
            if epoch_end:
                state.epoch, state.position = state.epoch + 1, 0
                if cfg.lr_schedule == "epoch_decay" and state.epoch >= cfg.lr_decay_start:
                    for group in optimizer.param_groups:  # Sutskever / Luong: halve each epoch
                        group["lr"] *= cfg.lr_decay
            if due_eval:
                evaluate_and_save()
            stop = limit_reached()
            if due_eval or window_tokens == 0:
                window_start = time.perf_counter()
            if stop:
                break
        if state.position == 0:
            batches = epoch_batches()
    if window_tokens:
        state.train_seconds += time.perf_counter() - window_start
        state.train_tokens += window_tokens
    if state.last_eval_step != state.step:
        evaluate_and_save()
    on_event(
        Message(
            f"stopped after {stop}: step {state.step}, best valid BLEU "
            f"{state.best_bleu:.2f} at step {state.best_step}"
        )
    )

    results = _test(translator, run_dir, data.test, state, len(batches))
    files.write_json(run_dir / checkpoint.RESULTS, results)
    return results


def train_step(
    model: Seq2Seq,
    batch: Batch,
    tokens: int,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
) -> torch.Tensor:
    """One update: teacher-forced forward, masked cross-entropy, backward, clip, step.

    The loss is averaged over the batch's `tokens` real target tokens; returns its sum
    (still on the device, so the caller decides when to wait for it).
    """
    model.train()
    with autocast:
        logits = model(batch.src, batch.src_lengths, batch.tgt_in, cfg.teacher_forcing)
        loss_sum = token_nll(logits, batch.tgt_out, cfg.label_smoothing)
    (loss_sum / tokens).backward()
    if cfg.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum.detach()


def _validate(translator: Translator, valid: Split, batch_tokens: int) -> tuple[float, float]:
    """Per-token valid loss (no label smoothing) and greedy BLEU."""
    model, device = translator.model, translator.device
    loss, _ = mean_nll(model, valid.src_ids, valid.tgt_ids, batch_tokens, device)
    hyps = translator.translate(valid.sources, beam_size=1)
    lang = translator.recipe.data.target_lang
    return loss, score(hyps, valid.references, ["bleu"], lang)["bleu"]["score"]


def _test(
    translator: Translator,
    run_dir: Path,
    test: Corpus | None,
    state: TrainerState,
    epoch_batches: int,
) -> dict[str, Any]:
    """Training summary, and test scores with the best weights if there is a test split.

    The test set goes through `Translator`, the same path `nmt translate` takes.
    """
    device = translator.device
    results: dict[str, Any] = {
        "steps": state.step,
        "epochs": round(state.epoch + state.position / max(epoch_batches, 1), 2),
        "train_seconds": round(state.train_seconds, 1),
        "train_tokens_per_second": round(state.train_tokens / max(state.train_seconds, 1e-9)),
        "best_step": state.best_step,
        "valid_bleu": state.best_bleu if state.best_bleu >= 0 else None,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }
    if test is None:
        return results
    checkpoint.load_weights(run_dir / checkpoint.WEIGHTS, translator.model, device)
    start = time.perf_counter()
    hyps = translator.translate(test.source)
    seconds = time.perf_counter() - start
    recipe = translator.recipe
    scores = score(hyps, test.target, ["bleu", "chrf"], recipe.data.target_lang)
    files.write_text(run_dir / "test.hyp", "".join(f"{h}\n" for h in hyps))
    return {
        "bleu": scores["bleu"]["score"],
        "chrf": scores["chrf"]["score"],
        "signature": {name: s["signature"] for name, s in scores.items()},
        "beam_size": recipe.decode.beam_size,
        "decode": decode_summary(recipe.decode),
        "test_sentences": len(hyps),
        "test_translate_seconds": round(seconds, 2),
        **results,
    }
