"""The training loop: updates, reports, evaluations and stops (`nmt.training.setup` prepares the
run and calls `run_loop`).

    run_loop      EpochSchedule yields batches; next_group takes one update's worth
                  (train.accumulate × ranks); each rank `update`s from its share with
                  `train_step`; the Meter sums loss, tokens and time between reports;
                  EpochBars reports each epoch's progress and the ETA (nmt.progress)
    when due      account (log progress); evaluate (rank 0: nmt.training.validation's
                  evaluate_and_save; the other ranks take its decisions); save_checkpoint
    until         limit_reached: max_steps, max_epochs, max_minutes or patience, decided
                  on rank 0 and shared; the limit reached is results.json's stopped_by
    test          score_test: the test split with the best weights → results.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from nmt.data.batching import Batch, EpochSchedule
from nmt.errors import UserError
from nmt.events import Message, Progress
from nmt.model.loss import token_nll
from nmt.model.seq2seq import Seq2Seq
from nmt.recipe.schema import TrainConfig
from nmt.store.checkpoint import rng_state
from nmt.training.clock import EpochBars, RunClock
from nmt.training.distributed import ALONE, World
from nmt.training.meter import Meter
from nmt.training.results import score_test
from nmt.training.validation import evaluate_and_save, nonfinite_message, save_checkpoint
from nmt.vocab import PAD

# what stopped a run: the train.* limit that was reached (results.json's stopped_by)
Stop = Literal["max_steps", "max_epochs", "max_minutes", "patience"]

# fp16: a loss scale this small means the loss itself is not finite, not an overflow
MIN_LOSS_SCALE = 1e-4

if TYPE_CHECKING:
    from nmt.training.run import Run
    from nmt.training.state import TrainerState


def run_loop(run: Run) -> dict[str, Any]:
    """Train until a limit is reached, evaluate the last weights, score the test split.
    Every rank of a distributed run goes through the same steps (nmt.training.distributed)."""
    cfg, state, world, on_event = run.cfg, run.state, run.world, run.on_event
    schedule = EpochSchedule(run.data.train_ids, cfg.batch_tokens, run.recipe.seed, state)
    meter = Meter(run.device)
    started = time.perf_counter()
    bars = EpochBars(on_event, RunClock(cfg, state.step, schedule.epochs_done))
    batches = iter(schedule)
    stop = world.share(limit_reached(cfg, state, started))  # a resumed run may be done
    while stop is None:
        # one update's batches, cut alike on every rank; each rank takes its share, and an
        # epoch's last few batches, fewer than the ranks, are left out
        group, epoch_end = next_group(batches, cfg.accumulate * world.size)
        stepped = len(group) >= world.size
        if stepped:
            update(run, meter, group[world.rank :: world.size])
        if epoch_end and cfg.lr_schedule == "epoch_decay" and state.epoch >= cfg.lr_decay_start:
            for param_group in run.optimizer.param_groups:  # Sutskever / Luong: halve
                param_group["lr"] *= cfg.lr_decay
        due_log = stepped and state.step % cfg.log_every == 0
        due_eval = stepped and cfg.eval_every > 0 and state.step % cfg.eval_every == 0
        due_eval |= cfg.eval_every == 0 and epoch_end and state.last_eval_step != state.step
        due_save = stepped and cfg.save_every > 0 and state.step % cfg.save_every == 0
        if due_log or due_eval or due_save:
            account(run, meter, schedule.epochs_done, report=due_log)
        if due_eval:
            evaluate(run, schedule.epochs_done)
        elif due_save:
            rng = world.gather(rng_state())  # each rank resumes with its own
            if world.main:
                save_checkpoint(run, rng)
        if due_eval or due_save:
            meter.restart()  # evaluating and saving are not training time
        bars.step(schedule, epoch_end, state.step, len(group))
        stop = world.share(limit_reached(cfg, state, started))
    bars.close()
    account(run, meter, schedule.epochs_done, report=False)
    if state.last_eval_step != state.step:
        evaluate(run, schedule.epochs_done)
    on_event(
        Message(
            f"stopped after {stop_text(cfg, stop)}: step {state.step}, best valid BLEU "
            f"{state.best_bleu:.2f} at step {state.best_step}"
        )
    )
    return world.share(score_test(run, schedule.epochs_done, stop) if world.main else None)


def update(run: Run, meter: Meter, batches: list[Batch]) -> None:
    """One update from this rank's `batches`, the loss normalized by the target tokens of
    the whole update (all ranks'): N ranks make the update one process makes on the union."""
    state, world = run.state, run.world
    tokens = sum(batch.target_tokens for batch in batches)
    total = int(world.sum(tokens))
    on_device = [batch.to(run.device) for batch in batches]
    trainer = run.trainer if run.trainer is not None else run.model
    step = (on_device, total, run.optimizer, run.cfg, run.autocast, world, run.scaler)
    loss_sum, applied = train_step(trainer, *step)
    state.step += 1
    if applied:
        meter.add(loss_sum, tokens, state.step)
        if run.average is not None:
            run.average.update(run.model, state.step - state.skipped)
    else:
        state.skipped += 1
        why = "loss not finite" if run.scaler is None else "fp16 gradients overflowed"
        scale = "" if run.scaler is None else f", loss scale now {run.scaler.get_scale():g}"
        run.on_event(Message(f"step {state.step}: {why}, update skipped{scale}"))
        if run.scaler is not None and run.scaler.get_scale() < MIN_LOSS_SCALE:
            raise UserError(nonfinite_message(run, state.step))  # not overflow: divergence


def evaluate(run: Run, epochs_done: float) -> None:
    """Rank 0 evaluates and saves; every rank takes its decisions (best, patience, rates),
    or stops with rank 0's message when the valid loss diverged."""
    world = run.world
    rng = world.gather(rng_state())  # for the checkpoint: each rank resumes with its own
    failed = None
    if world.main:
        try:
            evaluate_and_save(run, epochs_done, rng)
        except UserError as error:
            if not world.active:
                raise
            failed = str(error)  # the other ranks wait in share(): they stop with it
    if world.active:
        rates = [group["lr"] for group in run.optimizer.param_groups]
        saved, rates, failed = world.share((dataclasses.asdict(run.state), rates, failed))
        if failed is not None:
            raise UserError(failed)
        vars(run.state).update(saved)
        for group, lr in zip(run.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr


def train_step(
    model: Seq2Seq,
    batches: Batch | Sequence[Batch],
    tokens: int,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
    world: World = ALONE,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, bool]:
    """One update: teacher-forced forward, masked cross-entropy and backward for each
    batch (train.accumulate of them), then clip and step.

    The loss is averaged over the `tokens` real target tokens of the update: of all the
    batches, and, in a distributed run (`model` wrapped in DDP), of every rank's, so the
    update equals one on their union. Returns this process's loss sum (still on the
    device) and whether the update was applied: with train.skip_nonfinite, a NaN/inf loss
    or gradient anywhere skips it on every rank (this waits for the device). With a
    `scaler` (fp16) the loss is scaled before the backward pass and the gradients unscaled
    before clipping; an overflow skips the update on every rank (their gradients are the
    same after the all-reduce) and lowers the scale.
    """
    model.train()
    group = [batches] if isinstance(batches, Batch) else list(batches)
    loss_sum = torch.zeros((), device=next(model.parameters()).device)
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    for i, batch in enumerate(group):
        real = batch.tgt_out != PAD  # (B, T): project and score real targets only
        later = ddp and i < len(group) - 1  # all-reduce the gradients once, at the end
        with model.no_sync() if later else contextlib.nullcontext(), autocast:
            logits = model(
                batch.src, batch.src_lengths, batch.tgt_in, cfg.teacher_forcing, positions=real
            )
            part = token_nll(logits, batch.tgt_out[real], cfg.label_smoothing)
        with model.no_sync() if later else contextlib.nullcontext():
            scaled = part * world.size / tokens  # DDP averages over the ranks
            (scaled if scaler is None else scaler.scale(scaled)).backward()
        loss_sum = loss_sum + part.detach().float()
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients
    finite = loss_sum.isfinite()
    if cfg.clip_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        finite = finite & norm.isfinite()
    if scaler is not None:
        scale = scaler.get_scale()
        scaler.step(optimizer)  # skipped if a gradient overflowed
        scaler.update()
        applied = scaler.get_scale() >= scale  # the scale drops exactly when it skipped
    else:
        applied = not cfg.skip_nonfinite or world.all(bool(finite))
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

    A non-finite loss in the window stops the run here, before anything is saved: on
    every rank at once, whichever rank saw it.
    """
    state, world = run.state, run.world
    loss, tokens, seconds, bad_step = meter.take()
    if not world.all(bad_step < 0):  # another rank's step when this one saw none
        raise UserError(nonfinite_message(run, bad_step if bad_step >= 0 else state.step))
    if world.active:  # the whole update's loss and tokens, over the ranks
        total = int(world.sum(tokens))
        loss, tokens = world.sum(loss * tokens) / max(total, 1), total
    state.train_seconds += seconds
    state.train_tokens += tokens
    run.window_loss += loss * tokens
    run.window_tokens += tokens
    if report:
        lr = run.optimizer.param_groups[0]["lr"]
        speed = tokens / max(seconds, 1e-9)
        run.on_event(Progress(state.step, epochs_done, loss, speed, lr, state.skipped))


def limit_reached(cfg: TrainConfig, state: TrainerState, started: float) -> Stop | None:
    """Which limit stops training now (its train.* key, as results.json's stopped_by
    names it), or None to go on."""
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        return "max_steps"
    if cfg.max_epochs is not None and state.epoch >= cfg.max_epochs:
        return "max_epochs"
    if cfg.max_minutes is not None and time.perf_counter() - started >= 60 * cfg.max_minutes:
        return "max_minutes"
    if cfg.patience and state.bad_evals >= cfg.patience:
        return "patience"
    return None


def stop_text(cfg: TrainConfig, stop: Stop) -> str:
    """The limit that stopped training, for people: '10 epochs', '20 steps', ..."""
    if stop == "patience":
        name = {"bleu": "BLEU", "chrf": "chrF", "loss": "loss"}[cfg.best_metric]
        return f"no better valid {name} in {cfg.patience} evaluations"
    if stop == "max_minutes":
        return f"{cfg.max_minutes:g} minutes of wall time (train.max_minutes)"
    return f"{getattr(cfg, stop)} {stop.removeprefix('max_')}"  # "20 steps", "10 epochs"
