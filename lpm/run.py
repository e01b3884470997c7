"""What a training run holds between its steps (``Run``), and how it stops: a non-finite loss
(``NonFiniteLoss``) or Ctrl-C (``TrainingInterrupted``), each saying where and what was saved.
``lpm.train`` drives it; one epoch at a time.
"""

import time

import numpy as np

import gt.distributed as dist
from lpm.checkpoint import CheckpointError
from lpm.interrupt import StopOnCtrlC, TrainingInterrupted
from lpm.resume import Checkpointer, NonFiniteLoss, RunState, generator


class Run:
    """One training run between its set-up and its summary: ``cfg``, ``model``, ``optimizer``,
    ``scheduler``, ``data``, the counters and history (``state``, a ``lpm.resume.RunState``),
    the batch order and the checkpoints. Only rank 0 logs and writes (``writer``); every
    process restores (``saver``)."""

    def __init__(self, cfg, log, data, model, optimizer, scheduler, t0):
        self.cfg, self.data, self.model, self.optimizer, self.scheduler = cfg, data, model, optimizer, scheduler
        self.world, self.main_process = dist.get_world_size(), dist.is_main_process()
        self.log = log if self.main_process else _quiet
        self.show_progress = cfg.progress and self.main_process
        self.steps = (len(data.train_labels) + cfg.batch_size - 1) // cfg.batch_size
        self.order_rng = np.random.default_rng(cfg.seed + 1)   # batch order, independent of the data draw
        self.state = RunState()
        self.saver = Checkpointer(cfg, model, optimizer, scheduler, data, self.log) if cfg.checkpoint_dir else None
        self.writer = self.saver if self.main_process else None
        self.bar, self.interrupt = None, StopOnCtrlC(enabled=self.world == 1)
        self.samples_run = 0          # in this process (a resumed run starts part way)
        self.t0 = self.t_train = self.t_saved = t0     # t_saved: the last save (or the start), for --save-every-minutes

    def restore(self):
        """Continue from the checkpoint in ``cfg.checkpoint_dir`` when ``cfg.resume`` asks for it."""
        restored = self.saver.restore() if self.saver is not None else None
        if restored is not None:
            self.state, order_state = restored
            self.order_rng = generator(order_state)
        if self.world > 1:
            _check_same_start(self.state, self.cfg)

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()

    def diverged(self, what, where):
        """The ``NonFiniteLoss`` to raise: what and where, the lr, and the last checkpoint kept."""
        self.close_bar()
        return NonFiniteLoss(f"{what} at {where}: try a smaller --lr (now {self.optimizer.param_groups[0]['lr']:g})"
                             + (f"; {self.saver.describe_last()}" if self.saver is not None else ""))

    def save(self, order_state, where, best=False):
        # every process checks (their weights are the same), so all stop together
        if self.saver is not None and not _finite(self.model):
            raise self.diverged("the weights are no longer finite", where)
        if self.writer is not None:
            self.writer.save(self.state, order_state, best=best)
        self.t_saved = time.perf_counter()

    def save_due(self):
        """Whether a step's save is due: every ``--save-every`` steps, or once ``--save-every-minutes``
        have passed since the last save. Every process answers the same (the clocks' verdict is
        shared, one collective a step, only when minutes are asked for), as every process saves."""
        cfg = self.cfg
        if cfg.save_every and self.state.step % cfg.save_every == 0:
            return True
        if not cfg.save_every_minutes:
            return False
        due = time.perf_counter() - self.t_saved >= 60.0 * cfg.save_every_minutes
        if self.world > 1:
            due = dist.all_reduce([float(due)], op="max")[0] > 0
        return due

    def interrupted(self, order_state=None):
        """Ctrl-C: stop here; ``order_state`` given, this is a step boundary, saved so that
        --resume continues exactly from it (else the last checkpoint stays)."""
        self.close_bar()
        where, writer, saver = self.position(), self.writer, self.saver
        if order_state is not None and writer is not None:
            if writer.last is None or writer.last[2] != self.state.step:
                self.save(order_state, where)
            return TrainingInterrupted(f"interrupted {where}; checkpoint: {writer.last[0]}", writer.last[0])
        if saver is None:
            return TrainingInterrupted(f"interrupted {where}; nothing was saved (no --checkpoint-dir)")
        return TrainingInterrupted(f"interrupted {where}; {saver.describe_last()}", saver.last and saver.last[0])

    def position(self):
        """Where the run stands, for messages: ``in epoch 2/8 after step 3/5 (step 8 in all)``."""
        state, epochs = self.state, self.cfg.epochs
        if state.step_in_epoch:
            return (f"in epoch {state.epoch + 1}/{epochs} after step {state.step_in_epoch}/{self.steps} "
                    f"(step {state.step} in all)")
        return f"after epoch {state.epoch}/{epochs} (step {state.step} in all)"

    def elapsed(self):
        """``(seconds in all, seconds training, samples per second)`` until now."""
        t_end = time.perf_counter()
        train_seconds = t_end - self.t_train
        return t_end - self.t0, train_seconds, self.samples_run / train_seconds if self.samples_run else 0.0


def _finite(model):
    return all(np.isfinite(v).all() for v in model.state_dict().values())


def _quiet(line):
    """The ``log`` of processes other than rank 0: one process prints."""


def _check_same_start(state, cfg):
    """Stop every process (a CheckpointError) unless all start at the same step, i.e. resumed from
    the same checkpoint. A collective, so also the barrier that keeps rank 0 from writing its
    first checkpoint before every process has looked for one."""
    high, minus_low = dist.all_reduce([state.step, -state.step], op="max")
    if high != -minus_low:
        raise CheckpointError(f"the processes start at different steps ({-minus_low:.0f} to {high:.0f}): every "
                              f"process must see the same --checkpoint-dir {cfg.checkpoint_dir} (on several "
                              "machines, a shared folder)")
