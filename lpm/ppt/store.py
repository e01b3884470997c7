"""What a Pixel Prediction Transformer run keeps between steps (``RunState``) and how it is
checkpointed and resumed (``Store``), with ``lpm.checkpoint``'s atomic safetensors folders.

A checkpoint holds the model (its codebook buffer included), the optimizer, the cosine
schedule, gt's random generator and the batch-order generator, so ``--resume`` continues a run
exactly: the same batches, the same steps, the same parameters as an uninterrupted run, bit for
bit. ``latest.json`` names the newest checkpoint, ``best.json`` the one of the lowest held-out
bits/token, ``final.json`` the one after the last epoch. The JSON says ``"kind": "ppt"``, so an
LPM checkpoint is told apart (and refused) before any weight is read.
"""

from dataclasses import asdict, dataclass, field

import gt
from lpm.checkpoint import CheckpointError, find_checkpoint, load_into, read_checkpoint, save_checkpoint
from lpm.resume import generator, run_folder_problem

KIND = "ppt"
# Options a resumed run may change: they do not change what the run computes.
RESUMABLE = ("checkpoint_dir", "resume", "plot", "progress")


class WrongKind(CheckpointError):
    """A checkpoint of another model (an LPM checkpoint where a PPT one is needed)."""


class NonFiniteLoss(RuntimeError):
    """Training stopped because the loss or the held-out bits became NaN or infinite."""


@dataclass
class RunState:
    """Where a run is and what it measured (bits per token), saved in every checkpoint."""

    epoch: int = 0                # epochs completed
    step: int = 0                 # optimizer steps in all
    step_in_epoch: int = 0        # steps of the epoch in progress (0 between epochs)
    loss_sum: float = 0.0         # the epoch in progress: sum of batch loss (nats) x batch size
    losses: list = field(default_factory=list)      # per completed epoch: training bits/token
    eval_bits: list = field(default_factory=list)   # and held-out bits/token
    best_bits: float = float("inf")
    best_epoch: int = 0


def checkpoint_kind(meta):
    """``"ppt"`` for a Pixel Prediction Transformer checkpoint, ``"lpm"`` for another."""
    return meta.get("kind", "lpm")


def read_ppt_checkpoint(path, which="latest"):
    """``read_checkpoint`` that refuses (``CheckpointError``) a checkpoint of another model kind."""
    ckpt = read_checkpoint(path, which)
    if checkpoint_kind(ckpt.meta) != KIND:
        raise WrongKind(f"{ckpt.path} is a checkpoint of another model ({checkpoint_kind(ckpt.meta)}, a "
                              f"Pixel Transformer), not of a Pixel Prediction Transformer: use lpm evaluate/predict "
                              f"for it, or give the --checkpoint-dir of an lpm ppt train run")
    return ckpt


class Store:
    """Saves a run to ``cfg.checkpoint_dir`` and restores it (``cfg.resume``)."""

    def __init__(self, cfg, model, optimizer, scheduler, log):
        self.cfg, self.model, self.optimizer, self.scheduler, self.log = cfg, model, optimizer, scheduler, log
        self.last = None        # path of the newest checkpoint on disk

    def save(self, state, order_state, best=False, final=False):
        meta = {"kind": KIND, "model_config": asdict(self.model.config), "train_config": asdict(self.cfg),
                "progress": asdict(state), "rng": {"gt": gt.get_rng_state(), "order": order_state},
                "scheduler": self.scheduler.state_dict(),
                "metrics": {"heldout_bits": state.eval_bits[-1] if state.eval_bits else None,
                            "eval_acc": None}}
        meta["progress"]["best_bits"] = state.best_bits if state.eval_bits else None   # JSON has no infinity
        try:
            self.last = save_checkpoint(self.cfg.checkpoint_dir, self.model, self.optimizer, meta, best=best,
                                        final=final)
        except OSError as exc:
            raise CheckpointError(f"cannot write a checkpoint in {self.cfg.checkpoint_dir} "
                                  f"({exc.strerror or exc}); the last one stays: {self.last}") from None
        return self.last

    def restore(self):
        """``(RunState, order generator)`` of the latest checkpoint, loaded into the model,
        optimizer, schedule and gt's generator; None to start afresh."""
        cfg = self.cfg
        problem = run_folder_problem(cfg.checkpoint_dir, cfg.resume)
        if problem:
            raise CheckpointError(problem)
        if find_checkpoint(cfg.checkpoint_dir) is None:
            if cfg.resume:
                self.log(f"No checkpoint in {cfg.checkpoint_dir} yet: starting from the beginning")
            return None
        ckpt = read_ppt_checkpoint(cfg.checkpoint_dir)
        saved, now = ckpt.meta.get("train_config") or {}, asdict(cfg)
        problems = [f"--{k.replace('_', '-')}: {saved.get(k, '(absent)')!r} in the checkpoint, {now[k]!r} now"
                    for k in now if k not in RESUMABLE and saved.get(k, "(absent)") != now[k]]
        if problems:
            raise CheckpointError(f"checkpoint {ckpt.path} is from another configuration:\n  " + "\n  ".join(problems)
                                  + "\nresume with the options it was saved with, or start a new run in another "
                                    "--checkpoint-dir")
        try:
            progress = dict(ckpt.meta["progress"])
            progress["best_bits"] = float("inf") if progress.get("best_bits") is None else progress["best_bits"]
            state = RunState(**progress)
            rng, order = ckpt.meta["rng"]["gt"], generator(ckpt.meta["rng"]["order"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {ckpt.path}: malformed progress or random state ({exc})") from None
        load_into(ckpt, self.model, self.optimizer)
        gt.set_rng_state(rng)
        self.scheduler.load_state_dict(ckpt.meta["scheduler"])
        self.last = ckpt.path
        self.log(f"Resumed from {ckpt.path}: epoch {state.epoch}/{cfg.epochs} done"
                 + (f", {state.step_in_epoch} step(s) into epoch {state.epoch + 1}" if state.step_in_epoch else "")
                 + f", step {state.step}")
        return state, order
