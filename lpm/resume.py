"""Checkpointing a training run and resuming it exactly (``--checkpoint-dir``, ``--resume``).

``RunState`` is where a run is (epoch, step, the running sums of the epoch in progress) and
what it measured; ``Checkpointer`` saves it with the model, the optimizer, the lr schedule and
both random generators (gt's, for dropout and init, and the batch-order generator), and
restores all of them, so a resumed run draws the same batches and the same random numbers as
an uninterrupted one and ends with the same parameters, bit for bit. The file format is
``lpm.checkpoint``'s. ``--resume-from PATH`` resumes from another checkpoint of the run folder
than its latest (``lpm.fallback``); a resumed run may change the options in ``RESUMABLE``.
"""

import os
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np

import gt
from lpm.checkpoint import CheckpointError, find_checkpoint, load_into, read_checkpoint, save_checkpoint
from lpm.fallback import alternatives_text, damaged_error, named_checkpoint, run_folder_of
from lpm.outputs import PLOTS, OutputError, output_problems

# Options a resumed run may change: they do not change what the run computes, or (--lr, --epochs:
# with the constant schedule only) change it from the resumed step on, as the user asks.
RESUMABLE = ("epochs", "lr", "checkpoint_dir", "resume", "resume_from", "save_every", "save_every_minutes", "plot",
             "progress", "shard")
SCHEDULED = ("epochs", "lr")      # fixed by a cosine schedule's start
LPM_ADVICE = "give a checkpoint of a train.py or lpm train run (lpm ppt train and lpm caption train resume their own)"


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
            path = save_checkpoint(self.cfg.checkpoint_dir, self.model, self.optimizer, meta, best=best,
                                   previous=self.last and self.last[0])
        except OSError as exc:
            raise SaveFailed(f"cannot write a checkpoint in {self.cfg.checkpoint_dir} ({exc.strerror or exc}); "
                             f"{self.describe_last()}") from None
        self.last = (path, state.epoch, state.step)
        return path

    def restore(self):
        """``(RunState, order_state)`` of the latest checkpoint (``cfg.resume_from``'s when given),
        loaded into the model, optimizer, scheduler and gt's generator, with a new ``cfg.lr`` in
        effect from here; None to start afresh. Refuses a checkpoint of another run."""
        cfg = self.cfg
        ckpt = read_resume_checkpoint(cfg, "lpm", LPM_ADVICE, self.log)
        if ckpt is None:
            return None
        problems = self.mismatches(ckpt.meta)
        if problems:
            raise config_error(ckpt.path, problems)
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
        left_behind(cfg, ckpt.path, self.log)
        if self.scheduler is None:
            set_lr(self.optimizer, cfg.lr, state.step, self.log)
        return state, order_state

    def mismatches(self, meta):
        """The options that differ between this run and the checkpoint's, one line each."""
        problems = lpm_option_problems(meta, self.cfg)
        names = (meta.get("data") or {}).get("class_names")
        if names != list(self.data.class_names):
            problems.append(f"classes: {names} in the checkpoint, {list(self.data.class_names)} in the data now")
        return problems

    def describe_last(self):
        if self.last is None:
            return "no checkpoint was saved yet"
        path, epoch, step = self.last
        return f"the last good checkpoint stays: {path} (epoch {epoch}, step {step})"


def lpm_option_problems(meta, cfg):
    """The options of ``cfg`` (a ``TrainConfig``) a run resumed from ``meta``'s checkpoint may not
    have, one line each (the data's classes aside)."""
    cosine = cfg.lr_schedule != "constant"
    allowed = set(RESUMABLE) - (set(SCHEDULED) if cosine else set())
    saved = with_defaults(meta.get("train_config") or {}, cfg)
    for name, key in (("data", "path"), ("eval_data", "eval_path")):
        path = getattr(cfg, name, None)
        if path and isinstance(saved.get(name), str):
            # the same folder or file, however it is spelled (older checkpoints: resolved from here)
            saved_path = (meta.get("data") or {}).get(key) or os.path.realpath(saved[name])
            if saved_path == os.path.realpath(path):
                allowed.add(name)
    note = " (may change on resume with --lr-schedule constant only)" if cosine else ""
    return option_problems(saved, cfg, allowed, {k: note for k in SCHEDULED})


def option_problems(saved, cfg, allowed, notes=None):
    """A line for each option of ``cfg`` outside ``allowed`` whose value differs from ``saved``'s
    (a checkpoint's options, with ``with_defaults``), with its ``notes``."""
    now, notes = asdict(cfg), notes or {}
    return [f"--{k.replace('_', '-')}: {saved.get(k, '(absent)')!r} in the checkpoint, {now[k]!r} now"
            + notes.get(k, "") for k in now if k not in allowed and saved.get(k, "(absent)") != now[k]]


def config_error(path, problems):
    return CheckpointError(f"checkpoint {path} is from another configuration:\n  " + "\n  ".join(problems)
                           + "\nresume with the options it was saved with, or start a new run in another "
                             "--checkpoint-dir")


def set_lr(optimizer, lr, step, log):
    """Put ``lr`` (None: keep the checkpoint's) in every parameter group of a resumed run's
    ``optimizer`` (the constant schedule) and say so: ``lr 0.1 -> 0.05 from step 9``."""
    old = optimizer.param_groups[0]["lr"]
    if lr is None or all(g["lr"] == lr for g in optimizer.param_groups):
        return
    for group in optimizer.param_groups:
        group["lr"] = lr
    log(f"lr {old:g} -> {lr:g} from step {step + 1}")


def read_resume_checkpoint(cfg, kind, advice, log):
    """The verified checkpoint of ``kind`` a run resumes from: ``cfg.resume_from``'s, else the
    latest in ``cfg.checkpoint_dir``; None to start afresh. A damaged one is a ``DamagedLatest``
    naming the intact alternatives; one of another kind a ``WrongKind``."""
    problem = run_folder_problem(cfg.checkpoint_dir, cfg.resume)
    if problem:
        raise CheckpointError(problem)
    path = getattr(cfg, "resume_from", None)
    if path:
        return read_named(cfg, kind, advice)
    if not os.path.isdir(cfg.checkpoint_dir) or find_checkpoint(cfg.checkpoint_dir) is None:
        if cfg.resume:
            log(f"No checkpoint in {cfg.checkpoint_dir} yet: starting from the beginning")
        return None
    try:
        return read_kind_checkpoint(cfg.checkpoint_dir, kind, advice)
    except WrongKind:
        raise
    except CheckpointError as exc:     # damaged: name the intact ones left, and how to resume from them
        raise damaged_error(exc, cfg.checkpoint_dir) from None


def read_named(cfg, kind, advice):
    """``cfg.resume_from``'s checkpoint, verified, of ``kind``, in ``cfg.checkpoint_dir``."""
    path = cfg.resume_from
    try:
        folder = named_checkpoint(path)
    except CheckpointError as exc:
        raise CheckpointError(f"--resume-from {path}: {exc}") from None
    run = run_folder_of(folder)
    if not (os.path.isdir(cfg.checkpoint_dir) and os.path.samefile(run, cfg.checkpoint_dir)):
        raise CheckpointError(f"--resume-from {path} is a checkpoint of the run in {run}, not of --checkpoint-dir "
                              f"{cfg.checkpoint_dir}: a resumed run goes on in its checkpoint's folder (leave "
                              f"--checkpoint-dir out, or give {run}); to branch a run into a new folder, copy the "
                              "checkpoint folder there and resume from the copy")
    try:
        return read_kind_checkpoint(folder, kind, advice)
    except WrongKind as exc:
        raise WrongKind(f"--resume-from {path}: {exc}") from None
    except CheckpointError as exc:
        raise damaged_error(exc, run, folder, prefix=f"--resume-from {path}: ") from None


def resume_from_problem(cfg, kind, advice, differences):
    """Why ``cfg.resume_from`` cannot be resumed, as a message naming the path and what was
    expected, or None: the path, the kind, the checkpoint whole (read and verified) and the
    options (``differences(meta)``: a line each), before any data is loaded."""
    try:
        ckpt = read_named(cfg, kind, advice)
    except CheckpointError as exc:
        return str(exc)
    problems = differences(ckpt.meta)
    return f"--resume-from {cfg.resume_from}: {config_error(ckpt.path, problems)}" if problems else None


def lpm_resume_from_problem(cfg):
    """``resume_from_problem`` for a ``TrainConfig`` (the data's classes are checked once loaded)."""
    return resume_from_problem(cfg, "lpm", LPM_ADVICE, lambda meta: lpm_option_problems(meta, cfg))


def settle_resume_from(cfg):
    """``cfg.resume_from`` given: the run resumes (``cfg.resume``), by default in the checkpoint's
    own run folder (``cfg.checkpoint_dir``); a config's ``__post_init__`` calls it."""
    if getattr(cfg, "resume_from", None) and str(cfg.resume_from).strip():
        cfg.resume = True
        if not cfg.checkpoint_dir:
            cfg.checkpoint_dir = run_folder_of(cfg.resume_from)


def left_behind(cfg, path, log):
    """Say so when ``cfg.resume_from`` goes back from the run's latest checkpoint: the pointers
    then name this run's checkpoints, and those the old ones named are removed with the next saves."""
    if not getattr(cfg, "resume_from", None):
        return
    latest = find_checkpoint(cfg.checkpoint_dir)
    if latest is not None and os.path.realpath(latest) != os.path.realpath(path):
        log(f"Note: going back from the latest checkpoint {latest}: this run's checkpoints replace it "
            "(latest.json, previous.json; best.json once this run beats the best figure up to the resumed "
            "checkpoint), and checkpoints no pointer names any more are removed (copy any you want to keep)")


# The pointers besides latest.json that every run writes; lpm ppt's and lpm caption's runs write final.json too
RUN_POINTERS = ("best", "previous")
WITH_FINAL = (*RUN_POINTERS, "final")


def run_folder_problem(checkpoint_dir, resume, pointers=RUN_POINTERS):
    """Why a run cannot start in ``checkpoint_dir``, or None; cheap (only the pointers are read),
    so it is checked before any data is loaded: the folder holds a run and ``resume`` is off, or
    its ``latest.json`` or one of the other ``pointers`` it writes (``best.json``...) is not a
    checkpoint pointer (saving would replace it)."""
    if not os.path.isdir(checkpoint_dir):
        return None
    try:
        latest = find_checkpoint(checkpoint_dir)
    except CheckpointError as exc:              # latest.json is not a pointer
        return f"{exc}\n{alternatives_text(checkpoint_dir)[0]}" if resume else \
            f"{exc}: not replacing it (move it away, or choose another --checkpoint-dir)"
    if latest is not None and not resume:
        return (f"{checkpoint_dir} already holds a run (latest: {latest}): pass --resume to continue it, "
                f"or choose another --checkpoint-dir")
    for which in pointers:
        try:
            find_checkpoint(checkpoint_dir, which)
        except CheckpointError as exc:
            return f"{exc}: not replacing it (move it away, or choose another --checkpoint-dir)"
    return None


def start_path_problems(cfg, folders, resume_from_problem, pictures=PLOTS, more=(), first=(), pointers=RUN_POINTERS):
    """``[(exception class, message)]`` for the paths a run of ``cfg`` cannot use, as every train
    command refuses them before any work: the problems ``first`` (the inputs), the output folders
    and ``more`` (``output_problems`` with the ``pictures`` the run draws: ``OutputError``), each
    run folder of ``folders`` holding another run or a file where the run writes one of its
    ``pointers`` (``CheckpointError``), then, only when all those are fine, --resume-from's
    checkpoint, read and verified now: ``resume_from_problem()``."""
    refused = [*first, *((OutputError, p) for p in output_problems(cfg, pictures, more))]
    refused += [(CheckpointError, run_folder_problem(folder, cfg.resume, pointers)) for folder in folders]
    if cfg.resume_from and not any(p for _, p in refused):
        refused.append((CheckpointError, resume_from_problem()))
    return [(kind, p) for kind, p in refused if p]


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

    def save(self, state, order_state, best=False, final=False, keep=(), previous=True):
        """Write a checkpoint (``best``/``final``: point those at it too; ``keep``: older checkpoint
        folders to keep besides the pointed ones; ``previous``: keep the one before, written or
        resumed from, as ``previous.json``); returns its path."""
        meta = {"kind": self.kind, "model_config": self.model.config.to_dict() if hasattr(self.model.config, "to_dict")
                else asdict(self.model.config), "train_config": asdict(self.cfg), "progress": self.progress_of(state),
                "rng": {"gt": gt.get_rng_state(), "order": order_state},
                "scheduler": self.scheduler.state_dict(), **self.extra_meta(state)}
        try:
            self.last = save_checkpoint(self.cfg.checkpoint_dir, self.model, self.optimizer, meta, best=best,
                                        final=final, keep=keep, previous=self.last if previous else None)
        except OSError as exc:
            raise SaveFailed(f"cannot write a checkpoint in {self.cfg.checkpoint_dir} "
                             f"({exc.strerror or exc}); the last one stays: {self.last}") from None
        return self.last

    def restore(self):
        """``(state, order generator)`` of the latest checkpoint (``cfg.resume_from``'s when
        given), loaded into the model, optimizer, schedule and gt's generator; None to start afresh."""
        cfg = self.cfg
        ckpt = read_resume_checkpoint(cfg, self.kind, self.advice, self.log)
        if ckpt is None:
            return None
        problems = self.differences(ckpt.meta, cfg)
        if problems:
            raise config_error(ckpt.path, problems)
        state, order = self.load(ckpt)
        self.log(f"Resumed from {ckpt.path}: {self.where(state)}")
        left_behind(cfg, ckpt.path, self.log)
        return state, order

    @classmethod
    def differences(cls, meta, cfg):
        """The options of ``cfg`` a run resumed from ``meta``'s checkpoint may not have, a line each."""
        return option_problems(with_defaults(meta.get("train_config") or {}, cfg), cfg, cls.resumable,
                               {"lr": " (its schedule is fixed when the run starts)"})

    @classmethod
    def resume_from_problem(cls, cfg):
        """Why ``cfg.resume_from`` cannot be resumed (``resume_from_problem``), or None."""
        return resume_from_problem(cfg, cls.kind, cls.advice, lambda meta: cls.differences(meta, cfg))

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
