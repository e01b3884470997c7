"""Checkpointing a training run and resuming it exactly (``--checkpoint-dir``, ``--resume``).

``RunState`` is where a run is (epoch, step, the running sums of the epoch in progress) and
what it measured; ``Checkpointer`` saves it with the model, the optimizer, the lr schedule and
both random generators (gt's, for dropout and init, and the batch-order generator), and
restores all of them, so a resumed run draws the same batches and the same random numbers as
an uninterrupted one and ends with the same parameters, bit for bit. The file format is
``lpm.checkpoint``'s.
"""

import os
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np

import gt
from lpm.checkpoint import CheckpointError, find_checkpoint, load_into, read_checkpoint, save_checkpoint

# Options a resumed run may change: they do not change what the run computes.
RESUMABLE = ("epochs", "checkpoint_dir", "resume", "save_every", "save_every_minutes", "plot", "progress", "shard")


class SaveFailed(CheckpointError):
    """A checkpoint could not be written (a full disk, a folder gone); the previous one stays."""


class NonFiniteLoss(RuntimeError):
    """Training stopped because the loss (training or held-out) or the weights became NaN or
    infinite (every model kind's runs: lpm, lpm ppt, lpm caption)."""


@dataclass
class RunPosition:
    """Where a run is, the part every model kind's run state shares (saved in every checkpoint)."""

    epoch: int = 0              # epochs completed
    step: int = 0               # optimizer steps taken in all
    step_in_epoch: int = 0      # steps taken in the epoch in progress (0 between epochs)
    loss_sum: float = 0.0       # the running training-loss sum (each kind says over what)


@dataclass
class RunState(RunPosition):
    """Where a run is and what it measured; saved in every checkpoint and restored by ``--resume``.
    ``loss_sum`` and ``correct`` sum over the epoch in progress."""

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
                     "path": os.path.realpath(self.cfg.data) if self.cfg.data else None,
                     "eval_path": os.path.realpath(self.cfg.eval_data) if getattr(self.cfg, "eval_data", None)
                     else None},
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
        saved, now = with_defaults(meta.get("train_config") or {}, self.cfg), asdict(self.cfg)
        allowed = set(RESUMABLE) - ({"epochs"} if self.cfg.lr_schedule != "constant" else set())
        for name, key in (("data", "path"), ("eval_data", "eval_path")):
            path = getattr(self.cfg, name, None)
            if path and isinstance(saved.get(name), str):
                # the same folder or file, however it is spelled (older checkpoints: resolved from here)
                saved_path = (meta.get("data") or {}).get(key) or os.path.realpath(saved[name])
                if saved_path == os.path.realpath(path):
                    allowed.add(name)
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


def with_defaults(saved, cfg):
    """A checkpoint's options ``saved`` with those it lacks (added to ``cfg``'s class since it was
    written) at their defaults: such an option, left at its default, changes nothing on resuming."""
    missing = {f.name: f.default for f in fields(cfg) if f.name not in saved and f.default is not MISSING}
    return {**saved, **missing} if missing else saved


def generator(state):
    """A numpy Generator continuing from a ``bit_generator.state`` dict; ValueError if it is not one."""
    bit_generator = getattr(np.random, str(state.get("bit_generator")), None) if isinstance(state, dict) else None
    if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
        raise ValueError(f"not a numpy generator state: {str(state)[:80]}")
    bg = bit_generator()
    bg.state = state
    return np.random.Generator(bg)


# ---- the model family's runs: checkpoints that name their model kind ------------------------------
MODEL_NAMES = {"lpm": "a Pixel Transformer", "ppt": "a Pixel Prediction Transformer", "caption": "a Pixel LLM"}


class WrongKind(CheckpointError):
    """A checkpoint of another model (e.g. an LPM checkpoint where a Pixel LLM one is needed)."""


def checkpoint_kind(meta):
    """The model a checkpoint holds: its ``"kind"`` (``"ppt"``, ``"caption"``), ``"lpm"`` when absent."""
    return meta.get("kind", "lpm")


def read_kind_checkpoint(path, kind, advice, which="latest"):
    """``read_checkpoint`` that refuses (``WrongKind``, its message ending in ``advice``: which
    command the user wants) a checkpoint of another model kind than ``kind``."""
    ckpt = read_checkpoint(path, which)
    found = checkpoint_kind(ckpt.meta)
    if found != kind:
        raise WrongKind(f"{ckpt.path} is a checkpoint of another model ({found}, {MODEL_NAMES.get(found, found)}), "
                        f"not of {MODEL_NAMES.get(kind, kind)}: {advice}")
    return ckpt


class KindStore:
    """Saves a run of one model kind to ``cfg.checkpoint_dir`` and restores it (``cfg.resume``).

    A subclass names its ``kind``, its ``RunState`` class (``state_type``, a dataclass), the
    options a resumed run may change (``resumable``) and what its checkpoints add (``extra_meta``);
    ``cfg`` is a dataclass with ``checkpoint_dir`` and ``resume``. A checkpoint holds the model,
    the optimizer, the schedule, gt's generator and the batch-order generator's state. The state
    has ``epoch``, ``step_in_epoch`` and ``step``; ``cfg`` has ``epochs``."""

    kind, state_type, resumable, advice = None, None, ("checkpoint_dir", "resume"), ""

    def __init__(self, cfg, model, optimizer, scheduler, log):
        self.cfg, self.model, self.optimizer, self.scheduler, self.log = cfg, model, optimizer, scheduler, log
        self.last = None        # path of the newest checkpoint on disk

    def extra_meta(self, state):
        """What this kind's checkpoints hold besides the common parts (``metrics``, a vocabulary...)."""
        return {}

    def progress_of(self, state):
        """``state`` as JSON-ready numbers (JSON has no infinity: override where a field may be one)."""
        return asdict(state)

    def state_of(self, progress):
        return self.state_type(**progress)

    def save(self, state, order_state, best=False, final=False, keep=()):
        """Write a checkpoint (``best``/``final``: point those at it too; ``keep``: older checkpoint
        folders to keep besides the pointed ones); returns its path."""
        meta = {"kind": self.kind, "model_config": self.model.config.to_dict() if hasattr(self.model.config, "to_dict")
                else asdict(self.model.config), "train_config": asdict(self.cfg), "progress": self.progress_of(state),
                "rng": {"gt": gt.get_rng_state(), "order": order_state},
                "scheduler": self.scheduler.state_dict(), **self.extra_meta(state)}
        try:
            self.last = save_checkpoint(self.cfg.checkpoint_dir, self.model, self.optimizer, meta, best=best,
                                        final=final, keep=keep)
        except OSError as exc:
            raise SaveFailed(f"cannot write a checkpoint in {self.cfg.checkpoint_dir} "
                             f"({exc.strerror or exc}); the last one stays: {self.last}") from None
        return self.last

    def restore(self):
        """``(state, order generator)`` of the latest checkpoint, loaded into the model,
        optimizer, schedule and gt's generator; None to start afresh."""
        cfg = self.cfg
        problem = run_folder_problem(cfg.checkpoint_dir, cfg.resume)
        if problem:
            raise CheckpointError(problem)
        if find_checkpoint(cfg.checkpoint_dir) is None:
            if cfg.resume:
                self.log(f"No checkpoint in {cfg.checkpoint_dir} yet: starting from the beginning")
            return None
        try:
            ckpt = read_kind_checkpoint(cfg.checkpoint_dir, self.kind, self.advice)
        except WrongKind:
            raise
        except CheckpointError as exc:     # damaged: say whether an older intact one can be resumed
            raise CheckpointError(f"{exc}\n{intact_alternative(cfg.checkpoint_dir)}") from None
        saved, now = with_defaults(ckpt.meta.get("train_config") or {}, cfg), asdict(cfg)
        problems = [f"--{k.replace('_', '-')}: {saved.get(k, '(absent)')!r} in the checkpoint, {now[k]!r} now"
                    for k in now if k not in self.resumable and saved.get(k, "(absent)") != now[k]]
        if problems:
            raise CheckpointError(f"checkpoint {ckpt.path} is from another configuration:\n  " + "\n  ".join(problems)
                                  + "\nresume with the options it was saved with, or start a new run in another "
                                    "--checkpoint-dir")
        state, order = self.load(ckpt)
        self.log(f"Resumed from {ckpt.path}: {self.where(state)}")
        return state, order

    def where(self, state):
        """Where a restored run stands, for the log."""
        return (f"epoch {state.epoch}/{self.cfg.epochs} done"
                + (f", {state.step_in_epoch} step(s) into epoch {state.epoch + 1}" if state.step_in_epoch else "")
                + f", step {state.step}")

    def load(self, ckpt):
        """Load ``ckpt`` (a ``Checkpoint`` of this kind) into the model, optimizer, schedule and gt's
        generator; returns ``(state, order generator)``. Nothing changes if it does not fit."""
        try:
            state = self.state_of(dict(ckpt.meta["progress"]))
            rng, order = ckpt.meta["rng"]["gt"], generator(ckpt.meta["rng"]["order"])
            schedule = dict(ckpt.meta["scheduler"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt.path}: malformed progress or random state ({exc})") from None
        load_into(ckpt, self.model, self.optimizer)
        gt.set_rng_state(rng)
        self.scheduler.load_state_dict(schedule)
        self.last = ckpt.path
        return state, order
