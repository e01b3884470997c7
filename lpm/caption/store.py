"""What a Pixel LLM run keeps between steps (``CaptionRunState``) and how it is checkpointed and
resumed (``CaptionStore``), with ``lpm.checkpoint``'s atomic safetensors folders.

A checkpoint holds the model, the optimizer, the warmup/cosine schedule, gt's random generator
and the batch-order generator (so ``--resume`` continues bit for bit), and in its JSON the model
configuration (with the pad/bos/eos ids), the vocabulary, the task and what validation measured.
``"kind": "caption"`` tells it apart from an LPM or a PPT checkpoint before any weight is read.
The blind baseline of a run (the same decoder, trained with the images zeroed) is a run of its
own in ``<checkpoint-dir>/blind``.
"""

import os
from dataclasses import dataclass, field

from lpm.checkpoint import checkpoint_folders
from lpm.resume import KindStore, RunPosition, read_kind_checkpoint

KIND = "caption"
BLIND_FOLDER = "blind"
# Options a resumed run may change: they do not change what the run learns (--val-interval: when it
# is validated and saved; --resume-from: which checkpoint it goes on from).
RESUMABLE = ("checkpoint_dir", "resume", "resume_from", "plot", "progress", "save_total_limit", "checkpoint_interval",
             "num_beams", "val_interval")
ADVICE = "give the --checkpoint-dir of an lpm caption train run (lpm evaluate/predict and lpm ppt read the others)"


@dataclass
class CaptionRunState(RunPosition):
    """Where a run is and what it measured, saved in every checkpoint; ``loss_sum``: the sum of
    batch losses (nats per token) since the last validation."""

    loss_steps: int = 0           # and how many batches
    val_steps: list = field(default_factory=list)         # per validation: the step,
    train_losses: list = field(default_factory=list)      # mean training loss since the one before,
    val_losses: list = field(default_factory=list)        # held-out loss (nats per token),
    val_token_accs: list = field(default_factory=list)    # held-out next-token accuracy,
    val_exact: list = field(default_factory=list)         # held-out exact match of greedy captions
    best_exact: float = -1.0
    best_step: int = 0


def blind_dir(checkpoint_dir):
    """Where a run keeps its blind baseline."""
    return os.path.join(checkpoint_dir, BLIND_FOLDER)


def read_caption_checkpoint(path, which="latest"):
    """``read_checkpoint`` that refuses (``lpm.resume.WrongKind``) a checkpoint of another model kind."""
    return read_kind_checkpoint(path, KIND, ADVICE, which)


class CaptionStore(KindStore):
    """Saves a run to ``cfg.checkpoint_dir`` and restores it; ``vocab`` (a ``SimpleVocabulary``)
    and ``info`` (task, data description, whether the images are zeroed) go into every checkpoint.
    ``save`` keeps the ``cfg.save_total_limit`` newest checkpoints (None: all), and the best and
    final ones."""

    kind, state_type, resumable, advice = KIND, CaptionRunState, RESUMABLE, ADVICE

    def __init__(self, cfg, model, optimizer, scheduler, log, vocab, info):
        super().__init__(cfg, model, optimizer, scheduler, log)
        self.vocab, self.info = vocab, info

    def extra_meta(self, state):
        return {"vocab": self.vocab.to_json(), **self.info,
                "metrics": {"val_exact": state.val_exact[-1] if state.val_exact else None,
                            "eval_acc": state.val_exact[-1] if state.val_exact else None}}

    @classmethod
    def differences(cls, meta, cfg):
        problems = super().differences(meta, cfg)
        # --steps not given is known once the data is made (before it, resume_from_problem): checked then
        return [p for p in problems if not (cfg.steps is None and p.startswith("--steps:"))]

    def where(self, state):
        return f"step {state.step}/{self.cfg.steps} ({state.step_in_epoch} step(s) into epoch {state.epoch + 1})"

    def save(self, state, order_state, best=False, final=False):
        limit = self.cfg.save_total_limit
        older = checkpoint_folders(self.cfg.checkpoint_dir)
        keep = older if limit is None else older[max(0, len(older) - (limit - 1)):] if limit > 1 else []
        # one checkpoint asked for (the blind run's): none kept as previous either
        return super().save(state, order_state, best=best, final=final, keep=keep, previous=limit != 1)
