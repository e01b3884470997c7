"""Training the Pixel Prediction Transformer: the loop behind ``lpm ppt train``.

The codebook first (built on the training digits, or read from ``--codebook``), then the
model, AdamW (or SGD) with a cosine schedule, and epochs of next-token cross-entropy over the
training digits' tokens; a share of the sequences (``uncond_prob``) start with "no class"
instead of their digit, so the model also draws unconditionally (and guidance works). After
each epoch: held-out bits/token, a checkpoint (``latest``; ``best`` by held-out bits/token;
``final`` after the last epoch), and with ``--plot`` the curves and a grid of samples. The
checkpoints are ``lpm.checkpoint``'s (atomic safetensors) and ``--resume`` continues a run
exactly, as LPM's does (``lpm.ppt.store``).

    >>> from lpm.ppt.train import PPTTrainConfig, train
    >>> result = train(PPTTrainConfig(limit=40, codes=8, embed_dim=16, num_layers=1, num_heads=2, ff_dim=32,
    ...                               epochs=1, batch_size=8, progress=False), log=lambda line: None)
"""

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

import gt
from gt import nn
from gt.sharding import get_mesh
from lpm.checkpoint import CheckpointError
from lpm.data.base import DataError
from lpm.interrupt import StopOnCtrlC, TrainingInterrupted
from lpm.options import (at_least, blank, missing_package, non_negative, plain_numbers, positive, problems,
                         refuse_config, seed_problem, type_problems, within)
from lpm.outputs import progress_bar
from lpm.ppt import figures
from lpm.ppt.data import load_codebook, load_tokens
from lpm.ppt.evaluate import heldout_figures, report_lines
from lpm.ppt.model import PixelPredictionTransformer
from lpm.ppt.store import RunState, Store
from lpm.resume import WITH_FINAL, NonFiniteLoss, settle_resume_from, start_path_problems

OPTIMIZERS = ("adamw", "sgd")
PATHS = ("checkpoint_dir", "plot", "codebook", "resume_from")      # the fields that name files or folders
DEFAULT_LR = {"adamw": 2e-3, "sgd": 0.1}


@dataclass
class PPTTrainConfig:
    """Options of ``lpm ppt train`` (each field is the flag of the same name)."""

    checkpoint_dir: str | None = None
    resume: bool = False
    resume_from: str | None = None  # a checkpoint folder or pointer file (implies resume, in its run folder)
    codebook: str | None = None     # default: <checkpoint_dir>/codebook.safetensors (built if absent)
    patch_size: int = 4
    codes: int = 256
    codebook_inits: int = 1         # k-means initialisations of a codebook fitted here (the best kept)
    limit: int | None = None        # at most this many training and held-out digits (small runs)
    epochs: int = 8
    batch_size: int = 32
    lr: float | None = None         # DEFAULT_LR of the optimizer
    optimizer: str = "adamw"
    momentum: float = 0.9           # sgd only
    weight_decay: float = 0.1       # matrices and embeddings only
    embed_dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.0
    uncond_prob: float = 0.1        # share of sequences trained with "no class"
    seed: int = 0
    threads: int | str = "auto"     # BLAS threads: "auto" (gt's policy) or a fixed count (see blas_threads)
    plot: str | None = None
    progress: bool = True

    def __post_init__(self):
        settle_resume_from(self)

    def codebook_path(self):
        """Where the codebook is read from or saved to (None: fitted and kept in memory only)."""
        if self.codebook:
            return self.codebook
        return os.path.join(self.checkpoint_dir, "codebook.safetensors") if self.checkpoint_dir else None


def make_optimizer(model, cfg):
    """AdamW (betas 0.9, 0.98) or SGD with momentum; weight decay on >= 2-D parameters only."""
    lr = cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.optimizer]
    groups = gt.optim.decay_groups(model.parameters(), cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return gt.optim.SGD(groups, lr=lr, momentum=cfg.momentum)
    return gt.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))


class Trainer:
    """One run: config, data, model, optimizer, schedule, state and the checkpoint store."""

    def __init__(self, cfg, log):
        self.cfg, self.log, self.t0 = cfg, log, time.perf_counter()
        self.data = load_tokens(cfg.codebook_path(), cfg.patch_size, cfg.codes, cfg.limit, cfg.seed, log,
                                cfg.codebook_inits)
        gt.manual_seed(cfg.seed)
        n, T = self.data.train_tokens.shape
        self.model = PixelPredictionTransformer(cfg.codes, T, cfg.embed_dim, cfg.num_layers, cfg.num_heads,
                                                cfg.ff_dim, cfg.dropout, patch_size=cfg.patch_size,
                                                codebook=self.data.codebook.vectors)
        self.optimizer = make_optimizer(self.model, cfg)
        self.steps = (n + cfg.batch_size - 1) // cfg.batch_size
        self.scheduler = gt.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs * self.steps)
        self.order_rng = np.random.default_rng(cfg.seed + 1)   # batch order and unconditional rows
        self.state = RunState()
        self.store = Store(cfg, self.model, self.optimizer, self.scheduler, log) if cfg.checkpoint_dir else None
        self.interrupt, self.bar, self.tokens_run = StopOnCtrlC(enabled=True), None, 0
        log(f"Data: {n} training + {len(self.data.heldout_labels)} held-out MNIST digits, {T} tokens each; "
            f"Devices: {get_mesh().describe()}, engine {gt.get_backend()}")
        log(f"Model: {self.model.num_parameters():,} parameters (embed_dim={cfg.embed_dim}, num_layers="
            f"{cfg.num_layers}, num_heads={cfg.num_heads}, ff_dim={cfg.ff_dim}); optimizer {cfg.optimizer}, "
            f"lr {self.optimizer.param_groups[0]['lr']:g} (cosine), batch {cfg.batch_size}, {cfg.epochs} epochs")
        if self.store is not None:
            restored = self.store.restore()
            if restored is not None:
                self.state, self.order_rng = restored
                if not np.array_equal(self.model.codebook.numpy(), self.data.codebook.vectors):
                    raise CheckpointError(f"{cfg.codebook_path()} is not the codebook the run in {cfg.checkpoint_dir} "
                                          f"was trained with: put that one back to resume")
        self.t_train = time.perf_counter()

    def epoch(self, epoch):
        """The steps of one epoch (from a resumed checkpoint's step, part way)."""
        cfg, state, data = self.cfg, self.state, self.data
        self.model.train()
        epoch_order = self.order_rng.bit_generator.state     # a mid-epoch checkpoint resumes from here
        n = len(data.train_labels)
        perm = self.order_rng.permutation(n)
        classes = np.where(self.order_rng.random(n) < cfg.uncond_prob, self.model.config.num_classes,
                           data.train_labels)
        self.bar = progress_bar(self.steps, f"epoch {epoch}", cfg.progress)
        if self.bar is not None and state.step_in_epoch:
            self.bar.update(state.step_in_epoch)
        for step in range(state.step_in_epoch, self.steps):
            rows = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            value = self.step(data.train_tokens[rows], classes[rows], f"epoch {epoch}, step {step + 1}/{self.steps}")
            state.step, state.step_in_epoch = state.step + 1, step + 1
            state.loss_sum += value * len(rows)
            self.tokens_run += data.train_tokens[rows].size
            if self.bar is not None:
                self.bar.set_postfix(bits=f"{value / math.log(2):.3f}")
                self.bar.update()
            if step + 1 < self.steps and self.interrupt.requested:
                raise self.interrupted(epoch_order)
        self.close_bar()

    def step(self, tokens, classes, where):
        """One optimizer step; the batch's mean loss in nats."""
        logits = self.model(gt.tensor(tokens), gt.tensor(classes))                 # (B, T, K)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gt.tensor(tokens.reshape(-1)))
        value = loss.item()
        if not math.isfinite(value):
            raise self.diverged(f"loss is {value}", where)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return value

    def end_epoch(self, epoch):
        """Held-out bits/token, the log line, the checkpoint (best when it is), the plots."""
        cfg, state = self.cfg, self.state
        held = heldout_figures(self.model, self.data)
        if not math.isfinite(held["bits"]):
            raise self.diverged(f"held-out bits/token is {held['bits']}", f"the end of epoch {epoch}")
        state.losses.append(state.loss_sum / len(self.data.train_labels) / math.log(2))
        state.eval_bits.append(held["bits"])
        state.epoch, state.step_in_epoch, state.loss_sum = epoch, 0, 0.0
        best = held["bits"] < state.best_bits
        if best:
            state.best_bits, state.best_epoch = held["bits"], epoch
        width = max(2, len(str(cfg.epochs)))
        self.log(f"Epoch {epoch:{width}d}/{cfg.epochs}: training bits/token {state.losses[-1]:.3f}, held-out "
                 f"bits/token {held['bits']:.3f} ({time.perf_counter() - self.t_train:.0f} s)")
        if self.store is not None:
            self.store.save(self.state, self.order_rng.bit_generator.state, best=best, final=epoch == cfg.epochs)
        if cfg.plot:
            figures.epoch_figures(cfg.plot, state, self.model, epoch, seed=cfg.seed)
        if self.interrupt.requested and epoch < cfg.epochs:
            raise self.interrupted(None)

    def interrupted(self, order_state):
        """Ctrl-C: save at this step boundary (``order_state`` given) and say where and how to go on."""
        self.close_bar()
        where = f"in epoch {self.state.epoch + 1} after step {self.state.step_in_epoch}/{self.steps}" \
            if self.state.step_in_epoch else f"after epoch {self.state.epoch}/{self.cfg.epochs}"
        if self.store is None:
            return TrainingInterrupted(f"interrupted {where}; nothing was saved (no --checkpoint-dir)")
        if order_state is not None:
            self.store.save(self.state, order_state)
        return TrainingInterrupted(f"interrupted {where}; checkpoint: {self.store.last}", self.store.last)

    def diverged(self, what, where):
        self.close_bar()
        kept = f"; the last checkpoint stays: {self.store.last}" if self.store is not None and self.store.last else ""
        return NonFiniteLoss(f"{what} at {where}: try a smaller --lr (now {self.optimizer.param_groups[0]['lr']:g})"
                             + kept)

    def close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def option_problems(cfg):
    """Every problem with the options of ``cfg`` (a ``PPTTrainConfig``) as messages naming the flag,
    the types first, alone (an empty list if none); normalises ``cfg.threads`` ("auto" or an int)."""
    return type_problems(plain_numbers(cfg), PATHS) or value_problems(cfg)


def value_problems(cfg):
    """``option_problems``' problems once every field of ``cfg`` has the right type; normalises
    ``cfg.threads``."""
    bad = problems(*(at_least(f"--{n}", getattr(cfg, n.replace("-", "_")), 1) for n in
                     ("epochs", "batch-size", "embed-dim", "num-layers", "num-heads", "ff-dim", "patch-size",
                      "codebook-inits")), patch_size_problem(cfg.patch_size),
                   at_least("--codes", cfg.codes, 2), at_least("--limit", cfg.limit, 2), positive("--lr", cfg.lr),
                   non_negative("--weight-decay", cfg.weight_decay), within("--momentum", cfg.momentum, 0, 1, True),
                   within("--dropout", cfg.dropout, 0, 1, True), within("--uncond-prob", cfg.uncond_prob, 0, 1, True),
                   seed_problem("--seed", cfg.seed), _threads_problem(cfg),
                   None if cfg.optimizer in OPTIMIZERS else f"--optimizer must be one of {OPTIMIZERS}, got "
                                                            f"{cfg.optimizer!r}",
                   *(blank("--" + n.replace("_", "-"), getattr(cfg, n)) for n in PATHS))
    if not bad and cfg.embed_dim % cfg.num_heads:
        bad = [f"--embed-dim {cfg.embed_dim} must be divisible by --num-heads {cfg.num_heads}"]
    if not bad and cfg.resume and not cfg.checkpoint_dir:
        bad = ["--resume needs --checkpoint-dir (the run to continue)"]
    no_plot = missing_package("matplotlib", "matplotlib", "plot", "--plot") if cfg.plot else None
    if not bad and no_plot:
        bad = [no_plot]
    return bad


def _threads_problem(cfg):
    """None, with ``cfg.threads`` made an int or left "auto"; else the one-line problem."""
    value = str(cfg.threads).strip().lower()
    if value == "auto":
        cfg.threads = "auto"
        return None
    if value.isdigit() and int(value) >= 1:
        cfg.threads = int(value)
        return None
    return f"--threads must be a positive integer or 'auto', got {cfg.threads!r}"


def patch_size_problem(size):
    """Above 28 a patch is larger than the digit; sizes not dividing 28 pad it (lpm.ppt.codebook)."""
    return f"--patch-size must be at most 28 (a digit's side), got {size}" if size > 28 else None


def check_start(cfg):
    """What ``train`` refuses before any work, as ``lpm ppt train`` does: a ``cfg`` that is not a
    ``PPTTrainConfig`` or holds a value of the wrong type (``TypeError``), a bad value or
    combination of options, an output folder that cannot be written or a run folder that holds
    another run (``ValueError`` naming the option)."""
    refuse_config(cfg, PPTTrainConfig, value_problems, PATHS)
    for kind, problem in start_problems(cfg):
        raise kind(problem)


def start_problems(cfg):
    """``[(exception class, message)]`` for the folders and files a run of ``cfg`` writes or resumes
    from, as ``lpm ppt train`` refuses them: the output folders, a run folder holding another run,
    --resume-from's checkpoint and the codebook the run would read (small: read now, not after MNIST)."""
    codebook = cfg.codebook and not os.path.exists(cfg.codebook)
    refused = start_path_problems(cfg, [cfg.checkpoint_dir] if cfg.checkpoint_dir else [],
                                  lambda: Store.resume_from_problem(cfg), ("curves.png", "samples_epoch*.png"),
                                  [("--codebook", os.path.dirname(cfg.codebook) or ".")] if codebook else (),
                                  pointers=WITH_FINAL)
    problem = None if refused else _codebook_problem(cfg)
    return refused + [(DataError, problem)] if problem else refused


def _codebook_problem(cfg):
    """Why the codebook the run would read (``--codebook``, or the run folder's) cannot be used: a
    folder, another kind of file, a codebook of other sizes; read now (small), not after MNIST."""
    path = cfg.codebook_path()
    if not path or not os.path.lexists(path):
        return None                   # fitted, then written there
    try:
        load_codebook(path, cfg.patch_size, cfg.codes)
    except DataError as exc:
        message = str(exc)            # "codebook PATH: ..." or "PATH is a codebook of ..."
    else:
        return None
    if cfg.codebook:
        return "--" + message if message.startswith("codebook ") else f"--codebook {message}"
    return message


def train(cfg, log=print):
    """Run ``cfg`` (a ``PPTTrainConfig``) and return ``{"model", "data", "state", "heldout",
    "baselines", "seconds", "tokens_per_s", "checkpoint"}``. Raises ``NonFiniteLoss``,
    ``TrainingInterrupted`` (Ctrl-C; saved at the step boundary with a checkpoint folder),
    ``lpm.data.base.DataError`` and ``lpm.checkpoint.CheckpointError``; before any work,
    ``check_start``'s ``TypeError`` / ``ValueError``."""
    check_start(cfg)
    return train_checked(cfg, log)


def train_checked(cfg, log=print):
    """``train`` for a ``cfg`` that passed ``check_start``'s checks (``lpm ppt train`` makes them
    itself, as one-line errors), so that they run once."""
    with blas_threads(cfg.threads):
        return _train(cfg, log)


@contextlib.contextmanager
def blas_threads(n):
    """``gt.set_num_threads(n)`` inside, the setting of ``GT_NUM_THREADS`` (by default gt's
    adaptive policy) again after. ``"auto"`` (the default) changes nothing: the policy gives
    every free core on a quiet machine and one on a busy one, where this model's small products
    (batch x 49 rows of 128) ran 4x faster on one thread than on two that waited for each other."""
    if n == "auto":
        yield
        return
    gt.set_num_threads(n)
    try:
        yield
    finally:
        gt.set_num_threads(gt.config.num_threads())


def _train(cfg, log):
    run = Trainer(cfg, log)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), run.interrupt:
            for epoch in range(run.state.epoch + 1, cfg.epochs + 1):
                run.epoch(epoch)
                run.end_epoch(epoch)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:       # a second Ctrl-C: at once
        raise run.interrupted(None) from None
    seconds, train_seconds = time.perf_counter() - run.t0, time.perf_counter() - run.t_train
    held = heldout_figures(run.model, run.data)
    lines, base = report_lines(held, run.data)
    for line in lines:
        log(line)
    if run.store is not None and run.store.last:
        log(f"Checkpoints: {cfg.checkpoint_dir} (latest and final: {os.path.basename(run.store.last)}; best held-out "
            f"bits/token {run.state.best_bits:.3f} at epoch {run.state.best_epoch})")
    tokens_per_s = run.tokens_run / train_seconds if run.tokens_run else 0.0
    log(f"Done in {seconds:.1f} s (setup {run.t_train - run.t0:.1f} s, training {train_seconds:.1f} s, "
        f"{tokens_per_s:,.0f} tokens/s), {run.model.num_parameters():,} parameters")
    return dict(model=run.model, data=run.data, state=run.state, heldout=held, baselines=base, seconds=seconds,
                tokens_per_s=tokens_per_s, checkpoint=run.store.last if run.store is not None else None,
                config=asdict(cfg))
