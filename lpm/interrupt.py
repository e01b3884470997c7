"""Ctrl-C during training: stop at a step boundary, say where, and how to continue.

``StopOnCtrlC`` turns the first SIGINT into a request the training loop reads between steps,
where the run's state is whole, so the checkpoint saved there resumes exactly (bit for bit, as
an uninterrupted run); the loop then raises ``TrainingInterrupted``. ``resume_command`` is the
command line that continues such a run.

    >>> with StopOnCtrlC(enabled=True) as ctrl_c:
    ...     for step in range(steps):
    ...         train_step()
    ...         if ctrl_c.requested:
    ...             raise TrainingInterrupted(f"interrupted after step {step + 1}")
"""

import os
import shlex
import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT): the message says where; ``checkpoint`` is the folder
    to resume from (None without one). A ``KeyboardInterrupt``, so code that handles those still does."""

    def __init__(self, message, checkpoint=None):
        super().__init__(message)
        self.checkpoint = checkpoint


class StopOnCtrlC:
    """Ctrl-C during training, in a context. The first SIGINT only sets ``requested``: the loop
    stops at the next step boundary, where the state is whole and a checkpoint resumes exactly.
    It also restores the previous handler, so a second Ctrl-C interrupts at once. Off in a
    multi-process run (every process must stop at the same step), off the main thread, and where
    SIGINT is not Python's default (ignored in a background job, or handled by the caller)."""

    def __init__(self, enabled):
        self.requested, self.previous = False, None
        self.enabled = (enabled and threading.current_thread() is threading.main_thread()
                        and signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    def __enter__(self):
        if self.enabled:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc):
        if self.enabled:
            signal.signal(signal.SIGINT, self.previous)
        return False


def resume_command(argv, prog="train.py", resume_from=None, checkpoint=None):
    """The command line that continues a run started with ``argv``: the same options, plus
    ``--resume`` (``python train.py ... --resume``, or ``lpm train ... --resume``); with
    ``resume_from``, ``--resume-from resume_from`` instead. A ``--resume-from`` in ``argv`` goes
    (the run has saved since): ``--checkpoint-dir`` then names the folder of ``checkpoint`` (a
    checkpoint the run saved) unless ``argv`` names it.

        >>> resume_command(["--epochs", "20", "--checkpoint-dir", "runs/my run"])
        "python train.py --epochs 20 --checkpoint-dir 'runs/my run' --resume"
        >>> resume_command(["--resume-from", "r/best.json"], "lpm train", checkpoint="r/epoch0002-step00000010")
        'lpm train --checkpoint-dir r --resume'
    """
    if prog == "train.py":
        script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py"
        launcher = ["python", script]
    else:
        launcher = prog.split()
    args = []
    for i, arg in enumerate(argv):
        if not (arg == "--resume-from" or arg.startswith("--resume-from=") or (i and argv[i - 1] == "--resume-from")):
            args.append(arg)
    if resume_from:
        return shlex.join([*launcher, *[a for a in args if a != "--resume"], "--resume-from", resume_from])
    named = any(a == "--checkpoint-dir" or a.startswith("--checkpoint-dir=") for a in args)
    if len(args) != len(argv) and checkpoint and not named:
        args += ["--checkpoint-dir", os.path.dirname(os.path.normpath(checkpoint)) or "."]
    return shlex.join([*launcher, *args, *([] if "--resume" in args else ["--resume"])])


def print_alternatives(exc, argv, prog):
    """For a damaged latest checkpoint (``exc.alternatives``, lpm.fallback): the command that
    resumes from each intact one, on stderr."""
    for label, folder in getattr(exc, "alternatives", ()):
        print(f"{prog}: to resume from the {label} checkpoint: {resume_command(argv, prog, resume_from=folder)}",
              file=sys.stderr)
