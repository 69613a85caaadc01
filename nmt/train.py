"""Training: a recipe in, a model directory out.

`train` reads top to bottom in the order things happen:

    prepare_run      check and lock the model directory, read and tokenize the data,
                     build model, optimizer and schedule (or restore them on --resume)
    run_loop         EpochSchedule yields batches; train_step updates the weights; the
                     Meter sums loss, tokens and time between reports; EpochBars
                     reports each epoch's progress and the ETA (nmt.progress)
    when due         log progress; evaluate_and_save (nmt.validation: valid loss,
                     perplexity, BLEU, best weights, metrics, checkpoint); save_checkpoint
    until            limit_reached: max_steps, max_epochs, max_minutes or patience
    test             translate the test split with the best weights → results.json

It reports through one callback (`on_event`: nmt.events) and never prints; with
train.tensorboard, a TensorBoardLog (nmt.tensorboard) hears the same events.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.batching import Batch, EpochSchedule
from nmt.config import Recipe, TrainConfig
from nmt.data import Data, prepare_data
from nmt.device import make_autocast, pick_device, seed_everything, set_deterministic
from nmt.ema import WeightAverage
from nmt.errors import UserError
from nmt.evaluate import check_metrics
from nmt.events import Event, Message, Meter, Progress
from nmt.loss import token_nll
from nmt.model import Seq2Seq, build_model
from nmt.progress import EpochBars, RunClock
from nmt.results import score_test
from nmt.run_dir import RunDir
from nmt.tensorboard import TensorBoardLog
from nmt.tensorboard import check_available as check_tensorboard
from nmt.tokenizer import joint_ids, load_tokenizers, tokenizer_files
from nmt.translate import Translator
from nmt.validation import evaluate_and_save, save_checkpoint
from nmt.vocab import PAD
from nmt.warm_start import init_recipe, load_init_weights

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    # Bahdanau et al. 2015: Adadelta with rho 0.95, eps 1e-6 (learning_rate 1.0).
    "adadelta": lambda params, lr: torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-6),
}


# ---------------------------------------------------------------------------- the run


@dataclass
class TrainerState:
    """Where training stands; saved in checkpoints/last/trainer.json for --resume."""

    step: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # batches done in the current epoch
    best_bleu: float = -1.0  # valid scores of the best evaluation by train.best_metric
    best_chrf: float = -1.0
    best_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0  # evaluations since train.best_metric last improved
    last_eval_step: int = -1
    train_seconds: float = 0.0  # time in training steps only, evaluation excluded
    train_tokens: int = 0
    skipped: int = 0  # updates skipped for a non-finite loss


@dataclass
class Run:
    """Everything one training run works with, made once by `prepare_run`."""

    recipe: Recipe
    run_dir: RunDir
    device: torch.device
    data: Data
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    translator: Translator  # decodes valid and test, as `nmt translate` would
    state: TrainerState
    on_event: Callable[[Event], None]
    autocast: contextlib.AbstractContextManager  # bf16 when asked, else a no-op
    average: WeightAverage | None = None  # train.ema_decay: what is evaluated and kept
    saved_step: int | None = None  # step of the last resumable checkpoint
    board: TensorBoardLog | None = None  # train.tensorboard: hears every event
    window_loss: float = 0.0  # training loss × tokens since the last evaluation
    window_tokens: int = 0

    @property
    def cfg(self) -> TrainConfig:
        return self.recipe.train


def train(
    recipe: Recipe,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    on_event: Callable[[Event], None] = lambda event: None,
    init_from: str | Path | None = None,
) -> dict[str, Any]:
    """Train the recipe's model into `recipe.output_dir`; return what results.json says.
    `init_from`: a model directory to start from (nmt.warm_start)."""
    init_dir = None if init_from is None else Path(init_from)
    if init_dir is not None:
        _check_init_from(init_dir, recipe, resume)
        recipe = init_recipe(recipe, init_dir)
    with RunDir.open(recipe, resume, overwrite) as run_dir:  # checked and locked
        run = prepare_run(recipe, run_dir, device, resume, on_event, init_dir)
        try:
            return run_loop(run)
        finally:
            if run.board is not None:
                run.board.close()


def run_loop(run: Run) -> dict[str, Any]:
    """Train until a limit is reached, evaluate the last weights, score the test split."""
    cfg, state, on_event = run.cfg, run.state, run.on_event
    schedule = EpochSchedule(run.data.train_ids, cfg.batch_tokens, run.recipe.seed, state)
    meter = Meter(run.device)
    started = time.perf_counter()
    bars = EpochBars(on_event, RunClock(cfg, state.step, schedule.epochs_done))
    batches = iter(schedule)
    stop = limit_reached(cfg, state, started)  # a resumed run may already be done
    while stop is None:
        group, epoch_end = next_group(batches, cfg.accumulate)  # this epoch's ids (sampled?)
        tokens = sum(batch.target_tokens for batch in group)
        on_device = [batch.to(run.device) for batch in group]
        step = (on_device, tokens, run.optimizer, cfg, run.autocast)
        loss_sum, applied = train_step(run.model, *step)
        state.step += 1
        if applied:
            meter.add(loss_sum, tokens, state.step)
            if run.average is not None:
                run.average.update(run.model, state.step - state.skipped)
        else:
            state.skipped += 1
            on_event(Message(f"step {state.step}: loss not finite, update skipped"))
        if epoch_end and cfg.lr_schedule == "epoch_decay" and state.epoch >= cfg.lr_decay_start:
            for group in run.optimizer.param_groups:  # Sutskever / Luong: halve each epoch
                group["lr"] *= cfg.lr_decay
        due_log = state.step % cfg.log_every == 0
        due_eval = cfg.eval_every > 0 and state.step % cfg.eval_every == 0
        due_eval = due_eval or (cfg.eval_every == 0 and epoch_end)
        due_save = cfg.save_every > 0 and state.step % cfg.save_every == 0
        if due_log or due_eval or due_save:
            account(run, meter, schedule.epochs_done, report=due_log)
        if due_eval:
            evaluate_and_save(run, schedule.epochs_done)
        elif due_save:
            save_checkpoint(run)
        if due_eval or due_save:
            meter.restart()  # evaluating and saving are not training time
        bars.step(schedule, epoch_end, state.step, len(group))
        stop = limit_reached(cfg, state, started)
    bars.close()
    account(run, meter, schedule.epochs_done, report=False)
    if state.last_eval_step != state.step:
        evaluate_and_save(run, schedule.epochs_done)
    on_event(
        Message(
            f"stopped after {stop}: step {state.step}, best valid BLEU "
            f"{state.best_bleu:.2f} at step {state.best_step}"
        )
    )
    return score_test(run, schedule.epochs_done)


def prepare_run(
    recipe: Recipe,
    run_dir: RunDir,
    device: str,
    resume: bool,
    on_event: Callable[[Event], None],
    init_from: Path | None = None,
) -> Run:
    """Data, tokenizers, model, optimizer and trainer state; writes the model directory
    only once the data has been read and tokenized without error."""
    dev = pick_device(device)
    check_metrics(["bleu", "chrf"], recipe.data.target_lang)
    cfg = recipe.train
    set_deterministic(cfg.deterministic)
    seed_everything(recipe.seed)
    if dev.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products on Ampere+

    trained = run_dir.path if resume else init_from  # a model directory with tokenizers
    saved = None if trained is None else load_tokenizers(recipe.tokenizer, trained)
    data = prepare_data(recipe, on_event, saved)
    sizes = data.src_tok.vocab_size, data.tgt_tok.vocab_size
    model = build_model(recipe.model, *sizes, target_ids=joint_ids(data.tgt_tok)).to(dev)
    if init_from is not None:  # before anything is written: a mismatch leaves no directory
        load_init_weights(model, recipe, init_from)
        on_event(Message(f"weights and tokenizers from {init_from}; a fresh optimizer"))
    if cfg.tensorboard:
        check_tensorboard()  # before anything is written
    run_dir.start(recipe, tokenizer_files(recipe.tokenizer, data.src_tok, data.tgt_tok))

    params = sum(p.numel() for p in model.parameters())
    on_event(Message(f"model: {params / 1e6:.2f}M parameters on {dev}"))
    optimizer = OPTIMIZERS[cfg.optimizer](model.parameters(), lr=cfg.learning_rate)
    mode = "min" if cfg.best_metric == "loss" else "max"  # plateau follows best_metric
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=cfg.lr_decay, patience=cfg.lr_patience
    )
    average = None if cfg.ema_decay is None else WeightAverage(model, cfg.ema_decay)
    state, saved_step = TrainerState(), None
    if resume:
        kept = average.model if average is not None else None
        state = _trainer_state(run_dir, run_dir.load_last(model, optimizer, scheduler, dev, kept))
        saved_step = state.step
        run_dir.resume_metrics(state.step)
        on_event(Message(f"resumed at step {state.step}, epoch {state.epoch}"))
    # valid and test decode, and model.safetensors keeps, the average when there is one
    evaluated = model if average is None else average.model
    translator = Translator(evaluated, recipe, data.src_tok, data.tgt_tok, dev)
    autocast = make_autocast(cfg.precision, dev)
    board = None
    if cfg.tensorboard:
        sentences = data.valid.sources if data.valid is not None else []
        purge = state.step if resume else None
        board = TensorBoardLog(run_dir.path / "tensorboard", translator, sentences, purge)
        on_event = board.tee(on_event)
    return Run(
        recipe, run_dir, dev, data, model, optimizer, scheduler, translator, state, on_event,
        autocast, average, saved_step, board,
    )  # fmt: skip


def _check_init_from(init_from: Path, recipe: Recipe, resume: bool) -> None:
    if resume:
        raise UserError(
            "--init-from starts a new run from trained weights and --resume continues a "
            "saved one: give one of them"
        )
    if recipe.output_dir is not None and init_from.resolve() == Path(recipe.output_dir).resolve():
        raise UserError(
            f"--init-from {init_from} is also the output directory; write the new run "
            "elsewhere with --output-dir"
        )


def _trainer_state(run_dir: RunDir, saved: dict[str, Any]) -> TrainerState:
    try:
        return TrainerState(**saved)
    except TypeError:
        raise UserError(
            f"{run_dir.path}: checkpoints/last/trainer.json does not hold a trainer state; "
            "--overwrite starts the training over"
        ) from None


# ---------------------------------------------------------------------------- the loop


def train_step(
    model: Seq2Seq,
    batches: Batch | Sequence[Batch],
    tokens: int,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
) -> tuple[torch.Tensor, bool]:
    """One update: teacher-forced forward, masked cross-entropy and backward for each
    batch (train.accumulate of them), then clip and step.

    The loss is averaged over the `tokens` real target tokens of all the batches, so the
    update equals one on their union. Returns the loss sum (still on the device) and
    whether the update was applied: with train.skip_nonfinite, a NaN/inf loss or gradient
    skips it (this waits for the device).
    """
    model.train()
    loss_sum = torch.zeros((), device=next(model.parameters()).device)
    for batch in [batches] if isinstance(batches, Batch) else batches:
        real = batch.tgt_out != PAD  # (B, T): project and score real targets only
        with autocast:
            logits = model(
                batch.src, batch.src_lengths, batch.tgt_in, cfg.teacher_forcing, positions=real
            )
            part = token_nll(logits, batch.tgt_out[real], cfg.label_smoothing)
        (part / tokens).backward()
        loss_sum = loss_sum + part.detach().float()
    finite = loss_sum.isfinite()
    if cfg.clip_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        finite = finite & norm.isfinite()
    applied = not cfg.skip_nonfinite or bool(finite)
    if applied:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum, applied


def next_group(batches: Iterator[tuple[Batch, bool]], size: int) -> tuple[list[Batch], bool]:
    """The next `size` batches of an update (fewer at an epoch's end) and whether that
    end was reached."""
    group, epoch_end = [], False
    while len(group) < size and not epoch_end:
        batch, epoch_end = next(batches)
        group.append(batch)
    return group, epoch_end


def account(run: Run, meter: Meter, epochs_done: float, report: bool) -> None:
    """Add the meter's window to the trainer state and, if asked, report it.

    A non-finite loss in the window stops the run here, before anything is saved.
    """
    state = run.state
    loss, tokens, seconds, bad_step = meter.take()
    if bad_step >= 0:
        raise UserError(_nonfinite_message(run, bad_step))
    state.train_seconds += seconds
    state.train_tokens += tokens
    run.window_loss += loss * tokens
    run.window_tokens += tokens
    if report:
        lr = run.optimizer.param_groups[0]["lr"]
        speed = tokens / max(seconds, 1e-9)
        run.on_event(Progress(state.step, epochs_done, loss, speed, lr, state.skipped))


def _nonfinite_message(run: Run, step: int) -> str:
    cfg = run.cfg
    kept = (
        f"{run.run_dir.path} keeps the checkpoint of step {run.saved_step} (--resume continues "
        "from it)"
        if run.saved_step is not None
        else "nothing was saved (--overwrite starts over)"
    )
    return (
        f"step {step}: the training loss is not finite (NaN or inf), so training stopped; "
        f"{kept}. Try a lower train.learning_rate (now {cfg.learning_rate}), "
        f"train.clip_norm (now {cfg.clip_norm}), or train.skip_nonfinite: true"
    )


def limit_reached(cfg: TrainConfig, state: TrainerState, started: float) -> str | None:
    """Why training should stop now, or None to go on."""
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return f"{cfg.max_steps} steps"
    if cfg.max_epochs is not None and state.epoch >= cfg.max_epochs:
        return f"{cfg.max_epochs} epochs"
    if cfg.max_minutes is not None and time.perf_counter() - started >= 60 * cfg.max_minutes:
        return f"{cfg.max_minutes} minutes"
    if cfg.patience and state.bad_evals >= cfg.patience:
        name = {"bleu": "BLEU", "chrf": "chrF", "loss": "loss"}[cfg.best_metric]
        return f"no better valid {name} in {cfg.patience} evaluations"
    return None
