"""Training the Pixel Transformer: the loop behind ``python train.py`` and ``lpm train``.

Readable top to bottom: the options (``TrainConfig``, ``build_parser``), the data
(``make_datasets``; the data sets themselves live in ``lpm.datasets``), one batch
(``get_batch``), the loss, the optimizer, ``evaluate``, ``train`` (checkpoints and exact resume
through ``lpm.resume``; the file format lives in ``lpm.checkpoint``), then ``main``. Each
helper is importable on its own for tests and notebooks:

    >>> from lpm.train import TrainConfig, train
    >>> result = train(TrainConfig(samples=32, seq_len=4, img_size=16, embed_dim=16, num_heads=2,
    ...                            ff_dim=32, epochs=2, batch_size=8), log=lambda line: None)
    >>> len(result["losses"])
    2
"""

import contextlib
import importlib.util
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

import gt
import gt.distributed as dist
from gt import nn
from gt.sharding import get_mesh, use_mesh
from lpm.checkpoint import CheckpointError, find_checkpoint
from lpm.data import DIRECTIONS
from lpm.datasets import DATASETS, Data, DataError, has_extension, load_data
from lpm.interrupt import StopOnCtrlC, TrainingInterrupted, resume_command
from lpm.memory import run_problem
from lpm.model import PixelTransformer
from lpm.options import OneLineParser, at_least, check_environment, non_negative, positive, within
from lpm.outputs import OutputError, output_problems
from lpm.resume import Checkpointer, RunState, SaveFailed, generator, run_folder_problem

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("mse", "ce")
LR_SCHEDULES = ("constant", "cosine")

# What each data set trains with when the option is not given (``--data`` takes blobs' values),
# chosen so that the bare command reaches the README's held-out accuracy on a 2-core CPU: blobs
# 95.8% in about 10 s; digits 92.9% and digits-majority 88.4% in about 2 minutes. ``sgd_lr`` is
# SGD's lr at 16 sequences per step (it scales with the batch size, see ``default_lr``).
DATASET_DEFAULTS = {
    "blobs": dict(samples=600, epochs=10, lr_schedule="constant", sgd_lr=0.1),
    "digits": dict(samples=15000, epochs=6, lr_schedule="cosine", sgd_lr=0.3),
    "digits-majority": dict(samples=15000, epochs=6, lr_schedule="cosine", sgd_lr=0.3),
}
# Adam's and AdamW's default lr, whatever the data set. Adam moves every weight by about lr a
# step, however small its gradient, and each embedding unit sums 40,000 pixels, so torch's usual
# 1e-3 overshoots. Held-out accuracy of the blob defaults (seed 0): 57.5% at 1e-3, 83.3% at 3e-4
# and at 1e-4, 67.5% at 3e-5; plain SGD reaches 95.8% (Adam fits the 480 training sequences
# sooner and holds out less well), so SGD stays the default.
ADAPTIVE_LR = 3e-4


@dataclass
class TrainConfig:
    """Every option of a training run; the defaults are the ``python train.py`` run.

    ``samples``, ``epochs`` and ``lr_schedule`` left at None take the data set's values from
    ``DATASET_DEFAULTS`` (``TrainConfig(dataset="digits")`` is ``python train.py --dataset
    digits``); ``lr`` left at None is ``default_lr(optimizer, batch_size, dataset)``. Values
    given always win. The blob defaults reach about 96% held-out accuracy in about 10 s on a
    2-core CPU with plain gradient descent (SGD, no momentum).

        >>> TrainConfig().samples, TrainConfig(dataset="digits").samples, TrainConfig(dataset="digits", epochs=2).epochs
        (600, 15000, 2)
    """

    # data
    dataset: str = "blobs"      # a generated data set (DATASETS), unless `data` names files
    data: str | None = None     # the user's own sequences: a folder of class folders, or an .npz
    skip_bad: bool = False      # skip (and count) unreadable sequences in `data` instead of stopping
    samples: int | None = None  # image sequences generated (train + held out); None: the data set's default
    seq_len: int = 8            # images per sequence
    img_size: int = 200         # pixels per side
    noise: float = 0.3          # amplitude of the uniform pixel noise
    eval_split: float = 0.2     # held-out fraction
    # model
    embed_dim: int = 128
    num_heads: int = 4
    num_layers: int = 1
    ff_dim: int = 256
    pos_encoding: str = "sinusoidal"
    # optimization
    epochs: int | None = None   # None: the data set's default
    batch_size: int = 16
    lr: float | None = None     # None: default_lr(optimizer, batch_size, dataset)
    optimizer: str = "sgd"
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: str | None = None  # "constant", or "cosine": lr down to 0 over all steps; None: the data set's
    loss: str = "ce"
    seed: int = 0
    # checkpoints and output
    checkpoint_dir: str | None = None   # where checkpoints go (every epoch and at the end)
    resume: bool = False        # continue from checkpoint_dir's latest checkpoint
    save_every: int = 0         # also save every N steps inside an epoch (0: at epoch ends only)
    plot: str | None = None     # a folder for the loss/accuracy curves and attention plots
    progress: bool = True       # a tqdm bar inside each epoch, when stdout is a terminal
    shard: bool = True          # GT_AUTO_SHARD on: every local device holds a slice of each batch
    autocast: str | None = None  # "bfloat16": matrix products in bfloat16 (gt.autocast; the torch engine)

    def __post_init__(self):
        defaults = DATASET_DEFAULTS.get(self.dataset, DATASET_DEFAULTS["blobs"])   # an unknown name is
        for name in ("samples", "epochs", "lr_schedule"):                           # load_data's error
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])


# ---- options ------------------------------------------------------------------------------
def per_dataset(name):
    """``DATASET_DEFAULTS``' values of ``name`` in words, for ``--help``.

        >>> per_dataset("epochs")
        '10 for blobs and --data, 6 for digits and digits-majority'
    """
    groups = {}
    for dataset, values in DATASET_DEFAULTS.items():
        with_data = dataset == "blobs" and name != "samples"     # --data's sequences are not generated
        groups.setdefault(values[name], []).append(dataset + (" and --data" if with_data else ""))
    return ", ".join(f"{value:g} for {' and '.join(names)}" if isinstance(value, float)
                     else f"{value} for {' and '.join(names)}" for value, names in groups.items())


def build_parser(prog="train.py"):
    """The command-line interface; every flag maps to a ``TrainConfig`` field. The flags whose
    default depends on ``--dataset`` (``--samples``, ``--epochs``, ``--lr``, ``--lr-schedule``) parse
    to None when not given, and ``TrainConfig`` fills them in."""
    d = TrainConfig()
    p = OneLineParser(prog=prog, description=(
        "Train the Pixel Transformer (a transformer whose tokens are whole images) on image sequences "
        "and report held-out accuracy. By default: tell the direction of a blob moving across noisy "
        "frames; --dataset digits: moving handwritten digits; --data PATH: your own sequences. "
        "--samples, --epochs, --lr and --lr-schedule default to values tuned for each --dataset (listed "
        "with each flag); a flag given always wins."))

    def flag(group, name, help, **kw):
        dest = name[2:].replace("-", "_")
        if dest in ("samples", "epochs", "lr_schedule"):
            group.add_argument(name, default=None, help=f"{help} (default: {per_dataset(dest)})", **kw)
        else:
            group.add_argument(name, default=getattr(d, dest), help=help + " (default: %(default)s)", **kw)

    data = p.add_argument_group("data")
    flag(data, "--dataset", "generated data: blobs (direction of a moving blob), digits (a moving handwritten "
         "digit, scikit-learn's scans; needs the data extra), digits-majority (the digit shown in most frames)",
         choices=DATASETS)
    data.add_argument("--data", metavar="PATH", default=None, help=(
        "train on your own sequences instead: PATH/<class>/<sequence>/<frame>.png|jpg, PATH/<class>/<sequence>.npy "
        "(frames, H, W), or one .npz with images (N, frames, H, W) and labels (N,); frames become grayscale "
        "--img-size squares and sequences are padded or cut to --seq-len"))
    data.add_argument("--skip-bad", action="store_true",
                      help="skip unreadable or corrupt sequences in --data (they are counted) instead of stopping")
    flag(data, "--samples", "number of image sequences to generate (blobs, digits)", type=int)
    flag(data, "--seq-len", "images per sequence", type=int)
    flag(data, "--img-size", "image side in pixels (images are square)", type=int)
    flag(data, "--noise", "amplitude of the uniform pixel noise, in [0, 1)", type=float)
    flag(data, "--eval-split", "fraction of the sequences held out for evaluation, in (0, 1)", type=float)
    model = p.add_argument_group("model")
    flag(model, "--embed-dim", "width D of the residual stream", type=int)
    flag(model, "--num-heads", "attention heads (must divide --embed-dim)", type=int)
    flag(model, "--num-layers", "transformer blocks", type=int)
    flag(model, "--ff-dim", "hidden width of each feed-forward network", type=int)
    flag(model, "--pos-encoding", "fixed sinusoidal positional encodings, or a learned table",
         choices=("sinusoidal", "learned"))
    opt = p.add_argument_group("optimization")
    flag(opt, "--epochs", "passes over the training sequences", type=int)
    flag(opt, "--batch-size", "sequences per step", type=int)
    opt.add_argument("--lr", type=float, default=None, help=(
        f"learning rate (default: for sgd, {per_dataset('sgd_lr')}, times batch size / 16; "
        f"for adam and adamw, {ADAPTIVE_LR:g})"))
    flag(opt, "--optimizer", "sgd is plain gradient descent unless --momentum is set; it holds out best on the "
         "generated data sets (blobs: 95.8%% held-out, against 83.3%% for adam and adamw at their default lr)",
         choices=OPTIMIZERS)
    flag(opt, "--momentum", "SGD momentum, in [0, 1)", type=float)
    flag(opt, "--weight-decay", "weight decay, on matrices only (not on biases and norm gains)", type=float)
    flag(opt, "--lr-schedule", "constant, or cosine: from --lr down to 0 over the whole run", choices=LR_SCHEDULES)
    flag(opt, "--loss", "ce: cross-entropy; mse: mean squared error against one-hot targets", choices=LOSSES)
    flag(opt, "--seed", "seeds the data, the initial weights and the batch order (same seed, same losses)",
         type=int)
    out = p.add_argument_group("checkpoints and output")
    out.add_argument("--checkpoint-dir", metavar="DIR", default=None, help=(
        "save checkpoints here every epoch and at the end (safetensors weights and optimizer state, a JSON "
        "file with the rest; DIR/latest.json and DIR/best.json name the latest and the best by held-out "
        "accuracy)"))
    out.add_argument("--resume", action="store_true",
                     help="continue the run saved in --checkpoint-dir from its latest checkpoint, with the "
                          "same data order and random draws (--epochs may grow)")
    flag(out, "--save-every", "also save a checkpoint every N optimizer steps inside an epoch (0: only at "
         "epoch ends)", type=int)
    out.add_argument("--plot", metavar="DIR", default=None,
                     help="write loss and accuracy curves and attention maps of held-out samples here as PNG "
                          "(needs matplotlib: the plot extra)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it only shows when stdout is a terminal and tqdm is installed)")
    p.add_argument("--autocast", choices=("bfloat16",), default=None,
                   help="mixed precision: matrix products in bfloat16, everything else float32 (gt.autocast; "
                        "needs the torch engine: GT_BACKEND=torch, chosen by itself on a GPU machine)")
    p.add_argument("--no-shard", dest="shard", action="store_false",
                   help="one device only: GT_AUTO_SHARD stays off (by default it is on, so every local GPU, "
                        "or the GT_DEVICES virtual devices, holds a slice of each batch; an explicit "
                        "GT_AUTO_SHARD=0 also turns it off)")
    return p


def parse_args(argv=None, parser=None):
    """Parse and check the command line into a ``TrainConfig``; bad values exit with status 2."""
    parser = parser or build_parser()
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    problems = check_config(cfg)
    if problems:
        parser.error(problems[0])
    return cfg


def check_config(cfg):
    """Every problem with ``cfg`` as a message naming the flag (an empty list if none).

        >>> check_config(TrainConfig(batch_size=0))
        ['--batch-size must be >= 1, got 0']
    """
    minimums = dict(samples=2, seq_len=1, img_size=4, embed_dim=1, num_heads=1, num_layers=0,
                    ff_dim=1, epochs=1, batch_size=1, seed=0, save_every=0)
    problems = [at_least(f"--{name.replace('_', '-')}", getattr(cfg, name), low) for name, low in minimums.items()]
    if cfg.embed_dim >= 1 and cfg.num_heads >= 1 and cfg.embed_dim % cfg.num_heads:
        problems.append(f"--embed-dim ({cfg.embed_dim}) must be divisible by --num-heads ({cfg.num_heads})")
    problems += [within("--eval-split", cfg.eval_split, 0, 1), positive("--lr", cfg.lr),
                 within("--momentum", cfg.momentum, 0, 1, closed_low=True)]
    if cfg.momentum and cfg.optimizer != "sgd":
        problems.append(f"--momentum applies to --optimizer sgd only (got --optimizer {cfg.optimizer})")
    problems += [non_negative("--weight-decay", cfg.weight_decay), within("--noise", cfg.noise, 0, 1, closed_low=True)]
    if cfg.data and cfg.dataset != "blobs":
        problems.append(f"--data and --dataset are alternatives: got --data {cfg.data} and --dataset {cfg.dataset}")
    if cfg.dataset.startswith("digits") and cfg.img_size < 8:
        problems.append(f"--dataset {cfg.dataset} needs --img-size >= 8, got {cfg.img_size}")
    if cfg.dataset == "digits-majority" and cfg.seq_len < 3:
        problems.append(f"--dataset digits-majority needs --seq-len >= 3 (a majority and a minority digit), "
                        f"got {cfg.seq_len}")
    if (cfg.resume or cfg.save_every) and not cfg.checkpoint_dir:
        problems.append(f"--{'resume' if cfg.resume else 'save-every'} needs --checkpoint-dir")
    if cfg.skip_bad and not cfg.data:
        problems.append("--skip-bad applies to --data only")
    if cfg.checkpoint_dir and os.path.exists(cfg.checkpoint_dir) and not os.path.isdir(cfg.checkpoint_dir):
        problems.append(f"--checkpoint-dir {cfg.checkpoint_dir} is a file, not a folder")
    return [p for p in problems if p]


def missing_packages(cfg):
    """Optional packages this run needs but cannot import, as install hints (checked before training)."""
    needs = []
    if cfg.dataset.startswith("digits"):
        needs.append(("sklearn", "scikit-learn", "data", "--dataset " + cfg.dataset))
    if cfg.data and not has_extension(cfg.data, ".npz"):
        needs.append(("PIL", "pillow", "data", "--data with image files"))
    if cfg.checkpoint_dir:
        needs.append(("safetensors", "safetensors", None, "--checkpoint-dir"))
    if cfg.plot:
        needs.append(("matplotlib", "matplotlib", "plot", "--plot"))
    if gt.config.backend_name() == "torch":
        needs.append(("torch", "torch", "torch", "GT_BACKEND=torch"))
    return [f"{why} needs {pkg}: pip install " + (f"'lpm[{extra}]' or pip install {pkg}" if extra else pkg)
            for module, pkg, extra, why in needs if importlib.util.find_spec(module) is None]


# ---- data ---------------------------------------------------------------------------------
def make_datasets(cfg):
    """``(train_images, train_labels), (eval_images, eval_labels)``, centred.

    Pixels are shifted by the training set's mean pixel value. Left in [0, 1], every frame
    shares a large constant component that dominates the embedding's gradient and forces a
    much smaller learning rate on plain gradient descent. ``lpm.datasets.load_data(cfg)`` gives
    the same with the class names and the offset.
    """
    data = load_data(cfg)
    return (data.train_images, data.train_labels), (data.eval_images, data.eval_labels)


def _as_data(data):
    """``train(data=...)`` takes a ``Data`` or ``make_datasets``' pair of pairs (the blob classes)."""
    if isinstance(data, Data):
        return data
    (x_train, y_train), (x_eval, y_eval) = data
    return Data(x_train, np.asarray(y_train), x_eval, np.asarray(y_eval), DIRECTIONS, "direction of motion")


def get_batch(images, labels, idx):
    """The sequences at positions ``idx`` as gt tensors: images (B, S, H, W) float32, labels (B,) int64.

    ``images`` is an array or a lazy ``lpm.datasets.SequenceDataset``, which reads only these sequences.

        >>> x, y = get_batch(np.zeros((5, 2, 4, 4), np.float32), np.arange(5), [0, 3])
        >>> x.shape, y.tolist()
        ((2, 2, 4, 4), [0, 3])
    """
    return gt.from_numpy(np.ascontiguousarray(images[idx])), gt.from_numpy(np.asarray(labels[idx]))


# ---- loss, optimizer, evaluation --------------------------------------------------------
def compute_loss(logits, targets, kind, num_classes):
    """``ce``: cross-entropy on class indices; ``mse``: mean squared error against one-hot rows."""
    if kind == "ce":
        return nn.functional.cross_entropy(logits, targets)
    return nn.mse_loss(logits, nn.functional.one_hot(targets, num_classes))


def default_lr(optimizer, batch_size, dataset="blobs"):
    """The learning rate used when none is given. For SGD it grows with the batch size (the
    linear scaling rule) from the data set's ``sgd_lr`` at 16 sequences per step: on blobs 0.1
    at the default 16, 0.0125 at 2, where a larger step makes plain gradient descent diverge.
    Adam and AdamW: ``ADAPTIVE_LR`` (Adam's steps do not scale with the gradient).

        >>> default_lr("sgd", 16), default_lr("sgd", 2), default_lr("sgd", 16, "digits")
        (0.1, 0.0125, 0.3)
    """
    if optimizer != "sgd":
        return ADAPTIVE_LR
    return DATASET_DEFAULTS.get(dataset, DATASET_DEFAULTS["blobs"])["sgd_lr"] * batch_size / 16


def make_optimizer(model, cfg):
    """The optimizer ``cfg`` names. With weight decay, two parameter groups (nanoGPT's habit):
    decay on >= 2-D parameters (matrices), none on biases and norm gains."""
    params = list(model.parameters())
    lr = cfg.lr if cfg.lr is not None else default_lr(cfg.optimizer, cfg.batch_size, cfg.dataset)
    if cfg.weight_decay > 0:
        params = gt.optim.decay_groups(params, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return gt.optim.SGD(params, lr=lr, momentum=cfg.momentum)
    if cfg.optimizer == "adam":
        return gt.optim.Adam(params, lr=lr)
    return gt.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer, cfg, total_steps):
    """The ``--lr-schedule``: None (constant), or cosine decay to 0, stepped after every optimizer step."""
    if cfg.lr_schedule == "constant":
        return None
    return gt.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


def evaluate(model, images, labels, batch_size=64, loss="ce", distributed=False):
    """``(mean loss, accuracy)`` of ``model`` on the given sequences, in eval mode, without a tape.

    ``distributed``: in a multi-process run (``gt.distributed``) each process evaluates its
    contiguous share and the sums are all-reduced, so every process gets the figures of the
    whole set (every process must call it)."""
    n = len(labels)
    start, stop = dist.split_range(n) if distributed else (0, n)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    with gt.no_grad():
        for first in range(start, stop, batch_size):
            x, y = get_batch(images, labels, np.arange(first, min(first + batch_size, stop)))
            logits = model(x)
            total_loss += compute_loss(logits, y, loss, model.config.num_classes).item() * len(y)
            correct += int((logits.argmax(axis=-1) == y).sum().item())
    model.train(was_training)
    if distributed and dist.get_world_size() > 1:
        total_loss, correct = dist.all_reduce_sum([total_loss, correct])
    return total_loss / n, correct / n


class NonFiniteLoss(RuntimeError):
    """Training stopped because the loss (training or held-out) or the weights became NaN or infinite."""


def _position(state, cfg, steps):
    """Where a run stands, for messages: ``in epoch 2/8 after step 3/5 (step 8 in all)``."""
    if state.step_in_epoch:
        return (f"in epoch {state.epoch + 1}/{cfg.epochs} after step {state.step_in_epoch}/{steps} "
                f"(step {state.step} in all)")
    return f"after epoch {state.epoch}/{cfg.epochs} (step {state.step} in all)"


def _finite(model):
    return all(np.isfinite(v).all() for v in model.state_dict().values())


def _progress(total, desc, enabled, unit="batch"):
    """A tqdm bar when asked for, stdout is a terminal and tqdm is installed; else None."""
    if not (enabled and sys.stdout.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, unit=unit, dynamic_ncols=True)


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


# ---- the loop -----------------------------------------------------------------------------
def train(cfg, log=print, data=None):
    """Load the data, build the model and optimizer, train, and return what happened:

    ``{"losses", "train_accs", "eval_losses", "eval_accs", "eval_acc", "parameters", "seconds",
    "samples_per_s", "model", "config", "data", "checkpoint", "plots"}`` (the first four per epoch).
    ``log`` receives each output line; ``data`` may pass a ready ``lpm.datasets.Data`` or
    ``make_datasets`` output. With ``cfg.checkpoint_dir`` a checkpoint is saved after every
    epoch (and every ``cfg.save_every`` steps); ``cfg.resume`` continues the run saved there.
    Raises ``NonFiniteLoss`` naming the epoch and step (the last checkpoint is kept; none with
    non-finite values is written), ``DataError`` for bad data, ``CheckpointError`` for a
    checkpoint that does not fit or cannot be written, ``OutputError`` for an output folder that
    cannot be written (checked before the data is loaded) and ``TrainingInterrupted`` on Ctrl-C
    (the first lets the step in progress finish and saves there; a second stops at once).

    Data parallel over processes once ``gt.distributed.init()`` has joined a group of them
    (``main`` does, under torchrun): every process builds the same data and model, computes the
    loss on its contiguous slice of each global batch (``--batch-size`` sequences, as in one
    process) and the gradients are all-reduced, weighted by each slice's share of the batch, so
    the run computes what one process would. Only rank 0 logs and writes files.
    """
    world, main_process = dist.get_world_size(), dist.is_main_process()
    if not main_process:
        log = _quiet
    if not cfg.shard and get_mesh().size > 1:
        with use_mesh(1):  # the mesh was fixed before this call (e.g. in a notebook): leave it aside
            return train(cfg, log, data)
    problems = output_problems(cfg)
    if problems:
        raise OutputError(problems[0])
    t0 = time.perf_counter()
    show_progress = cfg.progress and main_process
    data = _as_data(data) if data is not None else load_data(cfg, progress=lambda n, desc: _progress(
        n, desc, show_progress, unit="sequence"))
    x_train, y_train, x_eval, y_eval = data.train_images, data.train_labels, data.eval_images, data.eval_labels
    num_classes = data.num_classes
    gt.manual_seed(cfg.seed)
    model = PixelTransformer(img_size=cfg.img_size, embed_dim=cfg.embed_dim, num_heads=cfg.num_heads,
                             num_layers=cfg.num_layers, ff_dim=cfg.ff_dim, num_classes=num_classes,
                             max_seq_len=max(32, cfg.seq_len), pos_encoding=cfg.pos_encoding)
    optimizer = make_optimizer(model, cfg)
    n, bs = len(y_train), cfg.batch_size
    steps = (n + bs - 1) // bs
    scheduler = make_scheduler(optimizer, cfg, cfg.epochs * steps)
    lr = optimizer.param_groups[0]["lr"]
    n_params = model.num_parameters()
    mesh = get_mesh()
    log(f"Devices: {mesh.describe()}, engine {gt.get_backend()}"
        + (f", {world} processes ({dist.get_backend()})" if world > 1 else "")
        + (", each batch split along its first axis" if mesh.size > 1 or world > 1 else ""))
    log(f"Data: {len(y_train)} training + {len(y_eval)} held-out sequences of {cfg.seq_len} "
        f"{cfg.img_size}x{cfg.img_size} images, {num_classes} classes ({data.description})")
    for note in data.notes:
        log(f"Note: {note}")
    log(f"Model: {n_params:,} parameters (embed_dim={cfg.embed_dim}, num_layers={cfg.num_layers}, "
        f"num_heads={cfg.num_heads}, ff_dim={cfg.ff_dim}); optimizer {cfg.optimizer}, lr {lr:g}"
        + (f" ({cfg.lr_schedule})" if scheduler is not None else "") + f", loss {cfg.loss}")

    order_rng = np.random.default_rng(cfg.seed + 1)   # batch order, independent of the data draw
    state = RunState()
    saver = Checkpointer(cfg, model, optimizer, scheduler, data, log) if cfg.checkpoint_dir else None
    restored = saver.restore() if saver is not None else None
    if restored is not None:
        state, order_state = restored
        order_rng = generator(order_state)
    writer = saver if main_process else None   # every process restores; rank 0 alone writes
    if world > 1:
        _check_same_start(state, cfg)
    width = max(2, len(str(cfg.epochs)))
    samples_run = 0               # in this process (a resumed run starts part way)
    bar, interrupt = None, StopOnCtrlC(enabled=world == 1)

    def diverged(what, where):
        if bar is not None:
            bar.close()
        return NonFiniteLoss(f"{what} at {where}: try a smaller --lr (now {optimizer.param_groups[0]['lr']:g})"
                             + (f"; {saver.describe_last()}" if saver is not None else ""))

    def save(order_state, where, best=False):
        # every process checks (their weights are the same), so all stop together
        if saver is not None and not _finite(model):
            raise diverged("the weights are no longer finite", where)
        if writer is not None:
            writer.save(state, order_state, best=best)

    def interrupted(order_state=None):
        """Ctrl-C: stop here; ``order_state`` given, this is a step boundary, saved so that
        --resume continues exactly from it (else the last checkpoint stays)."""
        if bar is not None:
            bar.close()
        where = _position(state, cfg, steps)
        if order_state is not None and writer is not None:
            if writer.last is None or writer.last[2] != state.step:
                save(order_state, where)
            return TrainingInterrupted(f"interrupted {where}; checkpoint: {writer.last[0]}", writer.last[0])
        if saver is None:
            return TrainingInterrupted(f"interrupted {where}; nothing was saved (no --checkpoint-dir)")
        return TrainingInterrupted(f"interrupted {where}; {saver.describe_last()}", saver.last and saver.last[0])

    t_train = time.perf_counter()
    try:
        # A diverging run overflows: it is caught below as a non-finite loss, so numpy's own
        # warnings about it would only repeat the news, several lines long.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), interrupt:
            for epoch in range(state.epoch + 1, cfg.epochs + 1):
                model.train()
                epoch_order = order_rng.bit_generator.state   # a mid-epoch checkpoint resumes from here
                perm = order_rng.permutation(n)
                bar = _progress(steps, f"epoch {epoch}", show_progress)
                if bar is not None and state.step_in_epoch:
                    bar.update(state.step_in_epoch)
                for step in range(state.step_in_epoch, steps):
                    batch = perm[step * bs:(step + 1) * bs]
                    lo, hi = dist.split_range(len(batch))             # this process's slice (all of it in one)
                    loss, value, correct = None, 0.0, 0
                    if hi > lo:
                        x, y = get_batch(x_train, y_train, batch[lo:hi])
                        with gt.autocast(cfg.autocast) if cfg.autocast else contextlib.nullcontext():
                            logits = model(x)                          # (b, C)
                            loss = compute_loss(logits, y, cfg.loss, num_classes)
                        value, correct = loss.item(), int((logits.argmax(axis=-1) == y).sum().item())
                    if world > 1:   # the whole batch's mean loss and correct count, the same in every process
                        loss_sum, correct = dist.all_reduce_sum([value * (hi - lo), correct])
                        value, correct = loss_sum / len(batch), round(correct)
                    if not math.isfinite(value):
                        raise diverged(f"loss is {value}", f"epoch {epoch}, step {step + 1}/{steps}")
                    optimizer.zero_grad()
                    if loss is not None:
                        loss.backward()
                    if world > 1:   # every process: the gradient of the whole batch's mean loss
                        dist.all_reduce_grads(model.parameters(), weight=(hi - lo) / len(batch))
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    state.step, state.step_in_epoch = state.step + 1, step + 1
                    state.loss_sum += value * len(batch)
                    state.correct += correct
                    samples_run += len(batch)
                    if bar is not None:
                        bar.set_postfix(loss=f"{value:.4f}")
                        bar.update()
                    if step + 1 < steps:          # the epoch's last step ends with its evaluation and save
                        if cfg.save_every and state.step % cfg.save_every == 0:
                            save(epoch_order, f"epoch {epoch}, step {step + 1}/{steps}")
                        if interrupt.requested:
                            raise interrupted(epoch_order)
                if bar is not None:
                    bar.close()
                eval_loss, eval_acc = evaluate(model, x_eval, y_eval, batch_size=max(bs, 32), loss=cfg.loss,
                                               distributed=True)
                if not math.isfinite(eval_loss):
                    raise diverged(f"held-out loss is {eval_loss}", f"the end of epoch {epoch} (step {state.step})")
                state.losses.append(state.loss_sum / n)
                state.train_accs.append(state.correct / n)
                state.eval_losses.append(eval_loss)
                state.eval_accs.append(eval_acc)
                state.epoch, state.step_in_epoch, state.loss_sum, state.correct = epoch, 0, 0.0, 0
                best = eval_acc > state.best_eval_acc
                if best:
                    state.best_eval_acc, state.best_epoch = eval_acc, epoch
                log(f"Epoch {epoch:{width}d}/{cfg.epochs}: Loss = {state.losses[-1]:.4f}, "
                    f"Acc = {100 * state.train_accs[-1]:.2f}%, Held-out Acc = {100 * eval_acc:.2f}%")
                save(order_rng.bit_generator.state, f"the end of epoch {epoch} (step {state.step})", best=best)
                if interrupt.requested and epoch < cfg.epochs:
                    raise interrupted(order_rng.bit_generator.state)
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:       # a second Ctrl-C, or one in a multi-process run: at once
        raise interrupted() from None
    t_end = time.perf_counter()
    plots = []
    if cfg.plot and main_process:
        from lpm.plots import save_plots

        try:
            plots = save_plots(cfg.plot, state, model, data)
        except OSError as exc:     # e.g. a full disk: the checkpoints, if any, are written already
            raise OutputError(f"cannot write the plots in {cfg.plot} ({exc.strerror or exc})") from None
        log(f"Plots: {', '.join(plots)}")
    if writer is not None and writer.last is not None:
        log(f"Checkpoints: {cfg.checkpoint_dir} (latest: {os.path.basename(writer.last[0])}; best held-out "
            f"accuracy {100 * state.best_eval_acc:.2f}% at epoch {state.best_epoch})")
    seconds, train_seconds = t_end - t0, t_end - t_train
    samples_per_s = samples_run / train_seconds if samples_run else 0.0
    eval_acc = state.eval_accs[-1] if state.eval_accs else float("nan")
    log(f"Done in {seconds:.1f} s (setup {t_train - t0:.1f} s, training {train_seconds:.1f} s, "
        f"{samples_per_s:.1f} samples/s), {n_params:,} parameters. "
        f"Held-out accuracy: {100 * eval_acc:.2f}% on {len(y_eval)} sequences")
    return dict(losses=state.losses, train_accs=state.train_accs, eval_losses=state.eval_losses,
                eval_accs=state.eval_accs, eval_acc=eval_acc, parameters=n_params, seconds=seconds,
                samples_per_s=samples_per_s, model=model, config=asdict(cfg), data=data,
                checkpoint=saver.last[0] if saver is not None and saver.last else None, plots=plots)


def main(argv=None, prog="train.py"):
    """``python train.py [flags]`` (or ``lpm train``): parse, train, print one line per epoch and a summary.

    Exit status: 0 done, 1 stopped (bad data, a checkpoint that does not fit or cannot be
    written, a non-finite loss, a bad torchrun environment), 2 invalid options, GT_* variables,
    output folders that cannot be written or a run too large for the memory available (all
    checked before any data is loaded), 130 interrupted (Ctrl-C; with a checkpoint folder, the
    ``--resume`` command that continues is printed). Messages go to stderr as one ``prog: ...``
    line (or a few, listing problems). Under torchrun (WORLD_SIZE > 1) the processes train
    together, data parallel (see ``train``); rank 0 prints.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    cfg = parse_args(argv, parser)
    check_environment(parser)       # GT_BACKEND, GT_DEVICES, ...: before anything reads them
    missing = missing_packages(cfg)
    if missing:
        parser.error(missing[0])
    problems = output_problems(cfg)
    if cfg.checkpoint_dir and not cfg.resume:     # with --resume, a damaged run is told after loading
        problems.append(run_folder_problem(cfg.checkpoint_dir, False))
    problems = [p for p in problems if p]
    if problems:                 # not an option's spelling: no "see --help"
        parser.refuse(problems[0])
    too_large = run_problem(cfg)    # before any data or weight is allocated
    if too_large:
        parser.refuse(too_large)
    # Sharding is on by default, as in the seed project, so that a multi-GPU box uses every GPU
    # with no setting; an explicit GT_AUTO_SHARD (e.g. 0) in the environment wins.
    if cfg.shard:
        os.environ.setdefault("GT_AUTO_SHARD", "1")
    else:
        os.environ["GT_AUTO_SHARD"] = "0"
    if cfg.autocast and not gt.backend.B.supports_bfloat16:
        parser.error(f"--autocast {cfg.autocast} needs the torch engine (the {gt.get_backend()} engine has no "
                     "bfloat16): GT_BACKEND=torch, with pip install 'lpm[torch]'")
    try:
        dist.init()
    except (ValueError, ImportError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    # the error lines of rank 0; other processes name themselves (their errors may be their own)
    who = prog if dist.is_main_process() else f"{prog} (rank {dist.get_rank()})"
    try:
        train(cfg)
    except NonFiniteLoss as exc:   # every process sees the same loss: rank 0 tells
        if dist.is_main_process():
            print(f"{prog}: stopped: {exc}", file=sys.stderr)
        sys.exit(1)
    except (DataError, CheckpointError, OutputError) as exc:
        print(f"{who}: error: {exc}", file=sys.stderr)
        if isinstance(exc, SaveFailed):
            _print_resume(cfg, argv, prog, "to continue once it can be written")
        sys.exit(1)
    except KeyboardInterrupt as exc:     # TrainingInterrupted says where; before training, nothing to say
        if dist.is_main_process():
            print(f"{prog}: {exc if isinstance(exc, TrainingInterrupted) else 'interrupted'}", file=sys.stderr)
            _print_resume(cfg, argv, prog, "to continue")
        sys.exit(130)
    finally:
        dist.destroy()


def _print_resume(cfg, argv, prog, why):
    """The ``--resume`` command, on stderr, when ``cfg.checkpoint_dir`` holds a checkpoint."""
    try:
        holds = cfg.checkpoint_dir and os.path.isdir(cfg.checkpoint_dir) and find_checkpoint(cfg.checkpoint_dir)
    except CheckpointError:
        holds = False
    if holds:
        print(f"{prog}: {why}: {resume_command(argv, prog)}", file=sys.stderr)
