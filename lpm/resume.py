"""Checkpointing a training run and resuming it exactly (``--checkpoint-dir``, ``--resume``).

``RunState`` is where a run is (epoch, step, the running sums of the epoch in progress) and
what it measured; ``Checkpointer`` saves it with the model, the optimizer, the lr schedule and
both random generators (gt's, for dropout and init, and the batch-order generator), and
restores all of them, so a resumed run draws the same batches and the same random numbers as
an uninterrupted one and ends with the same parameters, bit for bit. The file format is
``lpm.checkpoint``'s.
"""

import os
from dataclasses import asdict, dataclass, field

import numpy as np

import gt
from lpm.checkpoint import CheckpointError, find_checkpoint, load_into, read_checkpoint, save_checkpoint

# Options a resumed run may change: they do not change what the run computes.
RESUMABLE = ("epochs", "checkpoint_dir", "resume", "save_every", "plot", "progress", "shard")


class SaveFailed(CheckpointError):
    """A checkpoint could not be written (a full disk, a folder gone); the previous one stays."""


@dataclass
class RunState:
    """Where a run is and what it measured; saved in every checkpoint and restored by ``--resume``."""

    epoch: int = 0              # epochs completed
    step: int = 0               # optimizer steps taken in all
    step_in_epoch: int = 0      # steps taken in the epoch in progress (0 between epochs)
    loss_sum: float = 0.0       # sums over the epoch in progress: its training loss and accuracy
    correct: int = 0
    losses: list = field(default_factory=list)        # per completed epoch: training loss,
    train_accs: list = field(default_factory=list)    # training accuracy,
    eval_losses: list = field(default_factory=list)   # held-out loss
    eval_accs: list = field(default_factory=list)     # and held-out accuracy
    best_eval_acc: float = -1.0
    best_epoch: int = 0


class Checkpointer:
    """Saves the run to ``cfg.checkpoint_dir`` and restores it from there (``--resume``)."""

    def __init__(self, cfg, model, optimizer, scheduler, data, log):
        self.cfg, self.model, self.optimizer, self.scheduler, self.data, self.log = \
            cfg, model, optimizer, scheduler, data, log
        self.last = None             # (path, epoch, step) of the latest checkpoint on disk

    def save(self, state, order_state, best=False):
        """Write a checkpoint; ``order_state`` is the batch-order generator's state from which the
        next unfinished epoch draws its order (so a resumed run draws the same one)."""
        meta = {
            "model_config": asdict(self.model.config),
            "train_config": asdict(self.cfg),
            "data": {"class_names": list(self.data.class_names), "pixel_offset": self.data.pixel_offset,
                     "description": self.data.description,
                     # --data as a resolved path: `--data pngs` and `--data ./pngs/` are the same data
                     "path": os.path.realpath(self.cfg.data) if self.cfg.data else None},
            "progress": asdict(state),
            "rng": {"gt": gt.get_rng_state(), "order": order_state},
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "metrics": {"eval_acc": state.eval_accs[-1] if state.eval_accs else None,
                        "train_loss": state.losses[-1] if state.losses else None},
        }
        try:
            path = save_checkpoint(self.cfg.checkpoint_dir, self.model, self.optimizer, meta, best=best)
        except OSError as exc:
            raise SaveFailed(f"cannot write a checkpoint in {self.cfg.checkpoint_dir} ({exc.strerror or exc}); "
                             f"{self.describe_last()}") from None
        self.last = (path, state.epoch, state.step)
        return path

    def restore(self):
        """``(RunState, order_state)`` of the latest checkpoint, loaded into the model, optimizer,
        scheduler and gt's generator; None to start afresh. Refuses a checkpoint of another run."""
        cfg = self.cfg
        problem = run_folder_problem(cfg.checkpoint_dir, cfg.resume)
        if problem:
            raise CheckpointError(problem)
        if not os.path.isdir(cfg.checkpoint_dir) or find_checkpoint(cfg.checkpoint_dir) is None:
            if cfg.resume:
                self.log(f"No checkpoint in {cfg.checkpoint_dir} yet: starting from the beginning")
            return None
        try:
            ckpt = read_checkpoint(cfg.checkpoint_dir)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}\n{intact_alternative(cfg.checkpoint_dir)}") from None
        problems = self.mismatches(ckpt.meta)
        if problems:
            raise CheckpointError(f"checkpoint {ckpt.path} is from another configuration:\n  "
                                  + "\n  ".join(problems) + "\nresume with the options it was saved with, "
                                  "or start a new run in another --checkpoint-dir")
        try:
            rng, order_state = ckpt.meta["rng"]["gt"], ckpt.meta["rng"]["order"]
            state = RunState(**ckpt.meta["progress"])
            generator(rng), generator(order_state)          # both valid, before anything is loaded
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt.path}: malformed progress or random state ({exc})") from None
        load_into(ckpt, self.model, self.optimizer)
        gt.set_rng_state(rng)
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt.meta["scheduler"])
        self.last = (ckpt.path, state.epoch, state.step)
        self.log(f"Resumed from {ckpt.path}: epoch {state.epoch}/{cfg.epochs} done"
                 + (f", {state.step_in_epoch} step(s) into epoch {state.epoch + 1}" if state.step_in_epoch else "")
                 + f", step {state.step}")
        return state, order_state

    def mismatches(self, meta):
        """The options that differ between this run and the checkpoint's, one line each."""
        saved, now = meta.get("train_config") or {}, asdict(self.cfg)
        allowed = set(RESUMABLE) - ({"epochs"} if self.cfg.lr_schedule != "constant" else set())
        if self.cfg.data and isinstance(saved.get("data"), str):
            # the same folder or file, however it is spelled (older checkpoints: resolved from here)
            saved_path = (meta.get("data") or {}).get("path") or os.path.realpath(saved["data"])
            if saved_path == os.path.realpath(self.cfg.data):
                allowed.add("data")
        problems = [f"--{k.replace('_', '-')}: {saved.get(k, '(absent)')!r} in the checkpoint, {now[k]!r} now"
                    for k in now if k not in allowed and saved.get(k, "(absent)") != now[k]]
        names = (meta.get("data") or {}).get("class_names")
        if names != list(self.data.class_names):
            problems.append(f"classes: {names} in the checkpoint, {list(self.data.class_names)} in the data now")
        return problems

    def describe_last(self):
        if self.last is None:
            return "no checkpoint was saved yet"
        path, epoch, step = self.last
        return f"the last good checkpoint stays: {path} (epoch {epoch}, step {step})"


def run_folder_problem(checkpoint_dir, resume):
    """Why a run cannot start in ``checkpoint_dir``, or None; cheap (only the pointers are read),
    so it is checked before any data is loaded: the folder holds a run and ``resume`` is off, or
    its ``latest.json`` / ``best.json`` are not checkpoint pointers (saving would replace them)."""
    if not os.path.isdir(checkpoint_dir):
        return None
    try:
        latest = find_checkpoint(checkpoint_dir)
    except CheckpointError as exc:              # latest.json is not a pointer
        return f"{exc}\n{intact_alternative(checkpoint_dir)}" if resume else \
            f"{exc}: not replacing it (move it away, or choose another --checkpoint-dir)"
    if latest is not None and not resume:
        return (f"{checkpoint_dir} already holds a run (latest: {latest}): pass --resume to continue it, "
                f"or choose another --checkpoint-dir")
    try:
        find_checkpoint(checkpoint_dir, "best")
    except CheckpointError as exc:
        return f"{exc}: not replacing it (move it away, or choose another --checkpoint-dir)"
    return None


def intact_alternative(checkpoint_dir):
    """A line for when the latest checkpoint cannot be used: the best one, if it is another and
    intact, and how to resume from it; else that none is left."""
    try:
        latest = find_checkpoint(checkpoint_dir)
    except CheckpointError:
        latest = None
    try:
        best = find_checkpoint(checkpoint_dir, "best")
        if best is not None and best != latest:
            ckpt = read_checkpoint(best)
            progress = ckpt.meta.get("progress") or {}
            pointers = os.path.join(checkpoint_dir, "best.json"), os.path.join(checkpoint_dir, "latest.json")
            return (f"the best checkpoint {best} (epoch {progress.get('epoch')}, step {progress.get('step')}) "
                    f"is intact: to resume from it, copy {pointers[0]} over {pointers[1]} "
                    f"(cp {pointers[0]} {pointers[1]}) and run again with --resume")
    except CheckpointError:
        pass
    return (f"no other intact checkpoint in {checkpoint_dir}: start a new run (without --resume, "
            f"or in another --checkpoint-dir)")


def generator(state):
    """A numpy Generator continuing from a ``bit_generator.state`` dict; ValueError if it is not one."""
    bit_generator = getattr(np.random, str(state.get("bit_generator")), None) if isinstance(state, dict) else None
    if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
        raise ValueError(f"not a numpy generator state: {str(state)[:80]}")
    bg = bit_generator()
    bg.state = state
    return np.random.Generator(bg)
