"""The training loop, one update at a time, top to bottom (nmt.training.setup prepares
the run and calls `run_loop`):

    batch       EpochSchedule yields batches (of each epoch's pairs: `epoch_ids`, drawn
                by weight from a weighted data.train) and the place each leaves; next_group
                takes one update's worth (train.accumulate × ranks), and the loop
                records where it stands (TrainerState.epoch and position)
    update      each rank `update`s from its share with `train_step`, at the learning
                rate and teacher-forcing ratio nmt.training.schedules gives; the Meter
                sums loss, tokens and time between reports
    report      account: a Progress line every train.log_every steps; EpochBars:
                each epoch's progress and the ETA (nmt.progress)
    evaluate    rank 0 validates (nmt.training.validation); every rank records the
                scores (best, patience, the plateau schedule); rank 0 writes them
    save        checkpoints/last, at every evaluation and every train.save_every steps
    limits      limit_reached: max_steps, max_epochs, max_minutes or patience, decided
                on rank 0 and shared; the limit reached is results.json's stopped_by
    test        score_test (nmt.training.results): the best weights on the test split

The loop is the one writer of the run's TrainerState: the schedule, validation and the
results only read it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from nmt.data.batching import Batch, EpochSchedule, IdsForEpoch, Place
from nmt.data.prepare import Data
from nmt.data.weighted import weighted_ids, weights_line
from nmt.errors import UserError
from nmt.events import Event, Message, Progress
from nmt.model.loss import token_nll
from nmt.model.seq2seq import Seq2Seq
from nmt.recipe.schema import Recipe, TrainConfig
from nmt.recipe.sources import train_corpora
from nmt.store.checkpoint import rng_state
from nmt.training.clock import EpochBars, RunClock
from nmt.training.distributed import ALONE, World
from nmt.training.meter import LossWindow, Meter
from nmt.training.results import Stop, TrainResults, score_test
from nmt.training.run import Run
from nmt.training.state import TrainerState, improves
from nmt.training.validation import (
    nonfinite_message,
    save_checkpoint,
    validate,
    write_evaluation,
)
from nmt.vocab import PAD

# fp16: a loss scale this small means the loss itself is not finite, not an overflow
MIN_LOSS_SCALE = 1e-4


def run_loop(run: Run) -> TrainResults:
    """Train until a limit is reached, evaluate the last weights, score the test split.
    Every rank of a distributed run goes through the same steps (nmt.training.distributed)."""
    cfg, state, world = run.cfg, run.state, run.world
    schedule = EpochSchedule(
        epoch_ids(run.data, run.recipe, run.on_event),
        cfg.batch_tokens,
        run.recipe.seed,
        state.epoch,
        state.position,
    )
    meter, window = Meter(run.device), LossWindow()
    bars = EpochBars(run.on_event, RunClock(cfg, state.step, schedule.epochs_done))
    batches, started = iter(schedule), time.perf_counter()
    stop = world.share(limit_reached(cfg, state, started))  # a resumed run may be done
    while stop is None:
        # batch: one update's batches, cut alike on every rank; each rank takes its share,
        # and an epoch's last few batches, fewer than the ranks, are left out
        group, place = next_group(batches, cfg.accumulate * world.size)
        state.epoch, state.position = place.epoch, place.position
        stepped = len(group) >= world.size
        if stepped:
            update(run, meter, group[world.rank :: world.size])
        if place.epoch_end:
            run.learner.schedules.lr.epoch_ended(state.epoch)
        due = Due.after(cfg, state, stepped, place.epoch_end)
        if due.log or due.evaluate or due.save:
            account(run, meter, window, place.epochs_done, report=due.log)
        if due.evaluate:
            evaluate(run, window, place.epochs_done)
        if due.evaluate or due.save:
            save(run)
            meter.restart()  # evaluating and saving are not training time
        bars.step(place, state.step, len(group))
        stop = world.share(limit_reached(cfg, state, started))
    bars.close()
    return finish(run, meter, window, schedule.epochs_done, stop)


def epoch_ids(
    data: Data, recipe: Recipe, on_event: Callable[[Event], None] = lambda event: None
) -> IdsForEpoch:
    """Each epoch's training ids: `Data.train_ids`, or with a weighted data.train of
    several corpora each epoch's draw from them by weight (nmt.data.weighted, which
    `on_event` hears of), a function of (seed, epoch) as the batches are, so a resumed
    run trains on the same pairs."""
    sizes = data.corpus_sizes
    if sizes is None or len(sizes) == 1:  # one corpus: nothing to draw
        return data.train_ids
    weights = [entry.weight for entry in train_corpora(recipe.data.train)]
    on_event(Message(weights_line(sizes, weights)))
    return weighted_ids(data.train_ids, sizes, weights, recipe.seed)


@dataclass(frozen=True)
class Due:
    """What is due after an update (or an epoch's end without one)."""

    log: bool  # a Progress line: every train.log_every steps
    evaluate: bool  # every train.eval_every steps, or with 0 at each epoch's end
    save: bool  # checkpoints/last: every train.save_every steps (and at every evaluation)

    @classmethod
    def after(cls, cfg: TrainConfig, state: TrainerState, stepped: bool, epoch_end: bool) -> Due:
        step = state.step
        evaluate = stepped and cfg.eval_every > 0 and step % cfg.eval_every == 0
        evaluate |= cfg.eval_every == 0 and epoch_end and state.last_eval_step != step
        return cls(
            log=stepped and step % cfg.log_every == 0,
            evaluate=evaluate,
            save=stepped and cfg.save_every > 0 and step % cfg.save_every == 0,
        )


def finish(
    run: Run, meter: Meter, window: LossWindow, epochs_done: float, stop: Stop
) -> TrainResults:
    """After the last update: its steps accounted, the last weights evaluated and saved
    (unless they just were), the stop reported, and the test split scored."""
    state, cfg = run.state, run.cfg
    account(run, meter, window, epochs_done, report=False)
    if state.last_eval_step != state.step:
        evaluate(run, window, epochs_done)
        save(run)
    run.on_event(
        Message(
            f"stopped after {stop_text(cfg, stop)}: step {state.step}, best valid BLEU "
            f"{state.best_bleu:.2f} at step {state.best_step}"
        )
    )
    world = run.world
    return world.share(score_test(run, epochs_done, stop) if world.main else None)


def update(run: Run, meter: Meter, batches: list[Batch]) -> None:
    """One update from this rank's `batches`, at the schedules' learning rate and
    teacher-forcing ratio, the loss normalized by the target tokens of the whole update
    (all ranks'): N ranks make the update one process makes on the union."""
    state, world, learner = run.state, run.world, run.learner
    tokens = sum(batch.target_tokens for batch in batches)
    schedules = learner.schedules
    schedules.lr.apply(learner.optimizer, state.step + 1)
    loss_sum, applied = train_step(
        learner.stepped,
        [batch.to(run.device) for batch in batches],
        int(world.sum(tokens)),
        learner.optimizer,
        run.cfg,
        learner.autocast,
        world=world,
        scaler=learner.scaler,
        teacher_forcing=schedules.teacher_forcing.at(state.step),
    )
    state.step += 1
    if applied:
        meter.add(loss_sum, tokens, state.step)
        if learner.average is not None:
            learner.average.update(learner.model, state.step - state.skipped)
        return
    state.skipped += 1
    scaler = learner.scaler
    why = "loss not finite" if scaler is None else "fp16 gradients overflowed"
    scale = "" if scaler is None else f", loss scale now {scaler.get_scale():g}"
    run.on_event(Message(f"step {state.step}: {why}, update skipped{scale}"))
    if scaler is not None and scaler.get_scale() < MIN_LOSS_SCALE:
        raise UserError(nonfinite_message(run, state.step))  # not overflow: divergence


def evaluate(run: Run, window: LossWindow, epochs_done: float) -> None:
    """Rank 0 validates; every rank records the scores in its trainer state (the best,
    patience) and the plateau schedule, so all take the same decisions; rank 0 writes
    the evaluation (nmt.training.validation). A valid loss that diverged stops every
    rank with rank 0's message."""
    world, cfg = run.world, run.cfg
    scores, failed = None, None
    if world.main:
        try:
            scores = validate(run)
        except UserError as error:
            if not world.active:
                raise
            failed = str(error)  # the other ranks wait in share(): they stop with it
    scores, failed = world.share((scores, failed))
    if failed is not None:
        raise UserError(failed)
    improved = record_evaluation(run.state, scores, cfg.best_metric)
    if scores is not None:
        run.learner.schedules.lr.evaluated(scores[cfg.best_metric])
    train_loss = window.take()
    if world.main:
        write_evaluation(run, scores, improved, epochs_done, train_loss)


def record_evaluation(state: TrainerState, scores: dict[str, float] | None, metric: str) -> bool:
    """Record an evaluation at this step; whether it improved on the best by `metric`
    (train.best_metric). Without a valid split (`scores` None) it always does: the
    latest weights are the ones to keep."""
    state.last_eval_step = state.step
    if scores is None:
        return True
    improved = improves(metric, scores, state)
    state.bad_evals = 0 if improved else state.bad_evals + 1
    if improved:
        state.best_bleu, state.best_chrf = scores["bleu"], scores["chrf"]
        state.best_loss, state.best_step = scores["loss"], state.step
    return improved


def save(run: Run) -> None:
    """checkpoints/last, written by rank 0 with every rank's random state (each resumes
    with its own) and, with fp16, the loss scale reached."""
    if run.learner.scaler is not None:
        run.state.loss_scale = run.learner.scaler.get_scale()
    rng = run.world.gather(rng_state())
    if run.world.main:
        save_checkpoint(run, rng)


def train_step(
    model: Seq2Seq,
    batches: Batch | Sequence[Batch],
    tokens: int,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    autocast: contextlib.AbstractContextManager,
    world: World = ALONE,
    scaler: torch.amp.GradScaler | None = None,
    teacher_forcing: float | None = None,
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
    same after the all-reduce) and lowers the scale. `teacher_forcing`: the probability
    of feeding the gold previous token in this update (nmt.training.schedules'), by
    default train.teacher_forcing.
    """
    model.train()
    group = [batches] if isinstance(batches, Batch) else list(batches)
    loss_sum = torch.zeros((), device=next(model.parameters()).device)
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    ratio = cfg.teacher_forcing if teacher_forcing is None else teacher_forcing
    for i, batch in enumerate(group):
        real = batch.tgt_out != PAD  # (B, T): project and score real targets only
        later = ddp and i < len(group) - 1  # all-reduce the gradients once, at the end
        with model.no_sync() if later else contextlib.nullcontext(), autocast:
            logits = model(batch.src, batch.src_lengths, batch.tgt_in, ratio, positions=real)
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


def next_group(batches: Iterator[tuple[Batch, Place]], size: int) -> tuple[list[Batch], Place]:
    """The next `size` batches of an update (fewer at an epoch's end) and the place the
    last of them left the schedule at."""
    group = []
    while True:
        batch, place = next(batches)
        group.append(batch)
        if len(group) == size or place.epoch_end:
            return group, place


def account(run: Run, meter: Meter, window: LossWindow, epochs_done: float, report: bool) -> None:
    """Add the meter's steps to the trainer state and the loss `window`, and, if asked,
    report them (with the learning rate and teacher-forcing ratio the next update uses).

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
    window.add(loss, tokens)
    if report:
        schedules = run.learner.schedules
        lr, ratio = schedules.lr.at(state.step + 1), schedules.teacher_forcing.at(state.step)
        speed = tokens / max(seconds, 1e-9)
        run.on_event(Progress(state.step, epochs_done, loss, speed, lr, state.skipped, ratio))


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
