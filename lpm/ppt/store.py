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

from lpm.resume import KindStore, RunPosition, read_kind_checkpoint

KIND = "ppt"
# Options a resumed run may change: they do not change what the run computes (--threads: how fast,
# the same sums to rounding; --resume-from: which checkpoint it goes on from).
RESUMABLE = ("checkpoint_dir", "resume", "resume_from", "plot", "progress", "threads")


@dataclass
class RunState(RunPosition):
    """Where a run is and what it measured (bits per token), saved in every checkpoint;
    ``loss_sum``: the epoch in progress's sum of batch loss (nats) x batch size."""

    losses: list = field(default_factory=list)      # per completed epoch: training bits/token
    eval_bits: list = field(default_factory=list)   # and held-out bits/token
    best_bits: float = float("inf")
    best_epoch: int = 0


class Store(KindStore):
    """Saves a run to ``cfg.checkpoint_dir`` and restores it (``cfg.resume``): ``restore()`` gives
    ``(RunState, order generator)`` or None."""

    kind, state_type, resumable = KIND, RunState, RESUMABLE
    advice = "use lpm evaluate/predict for it, or give the --checkpoint-dir of an lpm ppt train run"

    def extra_meta(self, state):
        return {"metrics": {"heldout_bits": state.eval_bits[-1] if state.eval_bits else None, "eval_acc": None}}

    def progress_of(self, state):
        progress = asdict(state)
        progress["best_bits"] = state.best_bits if state.eval_bits else None   # JSON has no infinity
        return progress

    def state_of(self, progress):
        progress["best_bits"] = float("inf") if progress.get("best_bits") is None else progress["best_bits"]
        return RunState(**progress)


def read_ppt_checkpoint(path, which="latest"):
    """``read_checkpoint`` that refuses (``WrongKind``) a checkpoint of another model kind."""
    return read_kind_checkpoint(path, KIND, Store.advice, which)
