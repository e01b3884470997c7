"""Every option of a training run, written once: ``TrainConfig``'s fields carry their default,
help, choices and check, and the command line (``build_parser``) and its validation
(``check_config``) are generated from them.

    >>> check_config(TrainConfig(batch_size=0))
    ['--batch-size must be >= 1, got 0']
"""

import os
from dataclasses import dataclass, field, fields

import gt
from lpm.data import DATASETS, DataError, has_extension
from lpm.data.files import layout_problem
from lpm.options import (OneLineParser, at_least, blank, missing_package, non_negative, plain_numbers, positive,
                         refuse_config, seed_problem, type_problems, within)
from lpm.resume import lpm_resume_from_problem, settle_resume_from, start_path_problems

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


# ---- what a field says about its flag ----------------------------------------------------------
def minimum(low):
    """A check: the value is an int >= ``low``."""
    def check(flag, value):
        return at_least(flag, value, low)
    check.count = True          # check_config tells the counts first
    return check


def between(low, high, closed_low=False):
    """A check: the value lies in (low, high), or [low, high) with ``closed_low``."""
    return lambda flag, value: within(flag, value, low, high, closed_low)


def option(default, help, group, check=None, choices=None, type=None, flag=None, metavar=None,
           show_default=True, per_dataset=False):
    """A ``TrainConfig`` field and its command-line flag: ``--name-with-dashes`` (or ``flag``; a
    bool field is a switch), in ``--help``'s ``group`` (None: the general options). Its help ends
    with the default unless ``show_default`` is off; a ``per_dataset`` default (None in the field)
    is shown from ``DATASET_DEFAULTS``. ``check(flag, value)`` returns a message or None."""
    return field(default=default, metadata=dict(help=help, group=group, check=check, choices=choices, type=type,
                                                 flag=flag, metavar=metavar, show_default=show_default,
                                                 per_dataset=per_dataset))


DATA, MODEL, OPTIMIZATION, OUTPUT = "data", "model", "optimization", "checkpoints and output"


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

    dataset: str = option("blobs", "generated data: blobs (direction of a moving blob), digits (a moving handwritten "
                          "digit, scikit-learn's scans; needs the data extra), digits-majority (the digit shown in "
                          "most frames)", DATA, choices=DATASETS)
    data: str | None = option(None, "train on your own sequences instead: PATH/<class>/<sequence>/<frame>.png|jpg, "
                              "PATH/<class>/<sequence>.npy (frames, H, W), or one .npz with images (N, frames, H, W) "
                              "and labels (N,); frames become grayscale --img-size squares and sequences are padded "
                              "or cut to --seq-len", DATA, metavar="PATH", show_default=False)
    eval_data: str | None = option(None, "with --data: hold out every sequence in this PATH instead of a split of "
                                   "--data (same layouts; its classes must be among --data's), and train on all of "
                                   "--data; --eval-split is then not used", DATA, metavar="PATH", show_default=False)
    skip_bad: bool = option(False, "skip unreadable or corrupt sequences in --data and --eval-data (they are counted) "
                            "instead of stopping", DATA)
    samples: int | None = option(None, "number of image sequences to generate (blobs, digits)", DATA,
                                 minimum(2), type=int, per_dataset=True)
    seq_len: int = option(8, "images per sequence", DATA, minimum(1))
    img_size: int = option(200, "image side in pixels (images are square)", DATA, minimum(4))
    noise: float = option(0.3, "amplitude of the uniform pixel noise, in [0, 1)", DATA, between(0, 1, True))
    eval_split: float = option(0.2, "fraction of the sequences held out for evaluation, in (0, 1)", DATA,
                               between(0, 1))
    embed_dim: int = option(128, "width D of the residual stream", MODEL, minimum(1))
    num_heads: int = option(4, "attention heads (must divide --embed-dim)", MODEL, minimum(1))
    num_layers: int = option(1, "transformer blocks", MODEL, minimum(0))
    ff_dim: int = option(256, "hidden width of each feed-forward network", MODEL, minimum(1))
    pos_encoding: str = option("sinusoidal", "fixed sinusoidal positional encodings, or a learned table "
                               "(starting sinusoidal)", MODEL,
                               choices=("sinusoidal", "learned"))
    pool: str = option("mean", "how the frames' features become one: their mean, or cls: a learned class token "
                       "before the frames (ViT's), whose output is classified", MODEL, choices=("mean", "cls"))
    epochs: int | None = option(None, "passes over the training sequences", OPTIMIZATION, minimum(1), type=int,
                                per_dataset=True)
    batch_size: int = option(16, "sequences per step", OPTIMIZATION, minimum(1))
    lr: float | None = option(None, f"learning rate (default: for sgd, %(sgd_lr)s, times batch size / 16; for adam "
                              f"and adamw, {ADAPTIVE_LR:g})", OPTIMIZATION, positive, type=float, show_default=False)
    optimizer: str = option("sgd", "sgd is plain gradient descent unless --momentum is set; it holds out best on the "
                            "generated data sets (blobs: 95.8%% held-out, against 83.3%% for adam and adamw at their "
                            "default lr)", OPTIMIZATION, choices=OPTIMIZERS)
    momentum: float = option(0.0, "SGD momentum, in [0, 1)", OPTIMIZATION, between(0, 1, True))
    weight_decay: float = option(0.0, "weight decay, on matrices only (not on biases and norm gains)", OPTIMIZATION,
                                 non_negative)
    lr_schedule: str | None = option(None, "constant, or cosine: from --lr down to 0 over the whole run",
                                     OPTIMIZATION, choices=LR_SCHEDULES, per_dataset=True)
    loss: str = option("ce", "ce: cross-entropy; mse: mean squared error against one-hot targets", OPTIMIZATION,
                       choices=LOSSES)
    seed: int = option(0, "seeds the data, the initial weights and the batch order (same seed, same losses)",
                       OPTIMIZATION, seed_problem)
    checkpoint_dir: str | None = option(None, "save checkpoints here every epoch and at the end (safetensors weights "
                                        "and optimizer state, a JSON file with the rest; DIR/latest.json and "
                                        "DIR/best.json name the latest and the best by held-out accuracy)", OUTPUT,
                                        metavar="DIR", show_default=False)
    resume: bool = option(False, "continue the run saved in --checkpoint-dir from its latest checkpoint, with the "
                          "same data order and random draws (--epochs may grow and --lr change, with the constant "
                          "--lr-schedule; --lr takes effect from the resumed step)", OUTPUT)
    resume_from: str | None = option(None, "resume from this checkpoint instead of the latest: a checkpoint folder "
                                     "(DIR/epoch0003-step00000012) or a pointer file (DIR/best.json, "
                                     "DIR/previous.json); implies --resume, in the checkpoint's run folder (a "
                                     "--checkpoint-dir given must be that folder)", OUTPUT, metavar="PATH",
                                     show_default=False)
    save_every: int = option(0, "also save a checkpoint every N optimizer steps inside an epoch (0: only at epoch "
                             "ends)", OUTPUT, minimum(0))
    save_every_minutes: float = option(0.0, "also save a checkpoint inside an epoch once M minutes have passed since "
                                       "the last one (0: off); a long run on shared or preemptible machines then "
                                       "loses at most about M minutes", OUTPUT, non_negative, metavar="M")
    plot: str | None = option(None, "write loss and accuracy curves and attention maps of held-out samples here as "
                              "PNG (needs matplotlib: the plot extra)", OUTPUT, metavar="DIR", show_default=False)
    progress: bool = option(True, "no progress bar (it only shows when stdout is a terminal and tqdm is installed)",
                            None, flag="--no-progress")
    autocast: str | None = option(None, "mixed precision: matrix products in bfloat16, everything else float32 "
                                  "(gt.autocast; needs the torch engine: GT_BACKEND=torch, chosen by itself on a GPU "
                                  "machine)", None, choices=("bfloat16",), show_default=False)
    shard: bool = option(True, "one device only: GT_AUTO_SHARD stays off (by default it is on, so every local GPU, "
                         "or the GT_DEVICES virtual devices, holds a slice of each batch; an explicit GT_AUTO_SHARD=0 "
                         "also turns it off)", None, flag="--no-shard")

    def __post_init__(self):
        defaults = DATASET_DEFAULTS.get(self.dataset, DATASET_DEFAULTS["blobs"])   # an unknown name is
        for name in ("samples", "epochs", "lr_schedule"):                           # load_data's error
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])
        settle_resume_from(self)


def flag_name(f):
    """The command-line flag of a ``TrainConfig`` field: ``--batch-size`` for ``batch_size``."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


# ---- the command line --------------------------------------------------------------------------
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
    """The command-line interface, one flag per ``TrainConfig`` field. The flags whose default
    depends on ``--dataset`` (``--samples``, ``--epochs``, ``--lr``, ``--lr-schedule``) parse to
    None when not given, and ``TrainConfig`` fills them in."""
    p = OneLineParser(prog=prog, description=(
        "Train the Pixel Transformer (a transformer whose tokens are whole images) on image sequences "
        "and report held-out accuracy. By default: tell the direction of a blob moving across noisy "
        "frames; --dataset digits: moving handwritten digits; --data PATH: your own sequences. "
        "--samples, --epochs, --lr and --lr-schedule default to values tuned for each --dataset (listed "
        "with each flag); a flag given always wins."))
    groups = {None: p}
    for f in fields(TrainConfig):
        m = f.metadata
        if m["group"] not in groups:
            groups[m["group"]] = p.add_argument_group(m["group"])
        help = m["help"].replace("%(sgd_lr)s", per_dataset("sgd_lr"))
        if m["per_dataset"]:
            help += f" (default: {per_dataset(f.name)})"
        elif m["show_default"] and not isinstance(f.default, bool):
            help += " (default: %(default)s)"
        kw = dict(dest=f.name, default=f.default, help=help)
        if isinstance(f.default, bool):
            kw["action"] = "store_false" if f.default else "store_true"
        else:
            kw.update(type=m["type"] or (type(f.default) if f.default is not None and not m["choices"] else None),
                      choices=m["choices"], metavar=m["metavar"])
            kw = {k: v for k, v in kw.items() if v is not None or k == "default"}
        groups[m["group"]].add_argument(flag_name(f), **kw)
    return p


def parse_args(argv=None, parser=None):
    """Parse and check the command line into a ``TrainConfig``; bad values exit with status 2."""
    parser = parser or build_parser()
    cfg = TrainConfig(**vars(parser.parse_args(argv)))
    problems = check_config(cfg)
    if problems:
        parser.error(problems[0])
    return cfg


PATHS = (("data", "--data"), ("eval_data", "--eval-data"), ("checkpoint_dir", "--checkpoint-dir"), ("plot", "--plot"),
         ("resume_from", "--resume-from"))
PATH_FIELDS = tuple(name for name, _ in PATHS)


def check_config(cfg):
    """Every problem with ``cfg`` as a message naming the flag (an empty list if none): each
    field's own check, then the ones between fields.

        >>> check_config(TrainConfig(embed_dim=30))
        ['--embed-dim (30) must be divisible by --num-heads (4)']
    """
    # the others compare numbers: types first
    return type_problems(plain_numbers(cfg), PATH_FIELDS) or value_problems(cfg)


def value_problems(cfg):
    """``check_config``'s problems once every field of ``cfg`` has the right type."""
    problems = [f"{flag_name(f)} must be one of {', '.join(map(repr, f.metadata['choices']))}, got "
                f"{getattr(cfg, f.name)!r}" for f in fields(cfg)
                if f.metadata["choices"] and getattr(cfg, f.name) not in (*f.metadata["choices"], f.default)]
    if problems:
        return problems
    checked = [(f, f.metadata["check"]) for f in fields(cfg) if f.metadata["check"]]
    # the counts first (the sizes a run is made of), then whether the heads divide the width
    problems = [check(flag_name(f), getattr(cfg, f.name)) for f, check in checked if getattr(check, "count", False)]
    if cfg.embed_dim >= 1 and cfg.num_heads >= 1 and cfg.embed_dim % cfg.num_heads:
        problems.append(f"--embed-dim ({cfg.embed_dim}) must be divisible by --num-heads ({cfg.num_heads})")
    problems += [check(flag_name(f), getattr(cfg, f.name)) for f, check in checked if not getattr(check, "count", False)]
    problems += [blank(flag, getattr(cfg, name)) for name, flag in PATHS]
    if cfg.momentum and cfg.optimizer != "sgd":
        problems.append(f"--momentum applies to --optimizer sgd only (got --optimizer {cfg.optimizer})")
    if cfg.data and cfg.dataset != "blobs":
        problems.append(f"--data and --dataset are alternatives: got --data {cfg.data} and --dataset {cfg.dataset}")
    if cfg.dataset.startswith("digits") and cfg.img_size < 8:
        problems.append(f"--dataset {cfg.dataset} needs --img-size >= 8, got {cfg.img_size}")
    if cfg.dataset == "digits-majority" and cfg.seq_len < 3:
        problems.append(f"--dataset digits-majority needs --seq-len >= 3 (a majority and a minority digit), "
                        f"got {cfg.seq_len}")
    asks = [flag for flag, given in (("--resume", cfg.resume), ("--save-every", cfg.save_every),
                                     ("--save-every-minutes", cfg.save_every_minutes)) if given]
    if asks and not cfg.checkpoint_dir:
        problems.append(f"{asks[0]} needs --checkpoint-dir")
    if cfg.skip_bad and not cfg.data:
        problems.append("--skip-bad applies to --data only")
    if cfg.eval_data and not cfg.data:
        problems.append("--eval-data applies to --data only (generated data sets hold out their own sequences)")
    elif cfg.eval_data and str(cfg.eval_data).strip() and str(cfg.data).strip():
        problems.append(_eval_data_problem(cfg))
    if cfg.checkpoint_dir and os.path.exists(cfg.checkpoint_dir) and not os.path.isdir(cfg.checkpoint_dir):
        problems.append(f"--checkpoint-dir {cfg.checkpoint_dir} is a file, not a folder")
    return [p for p in problems if p]


def _eval_data_problem(cfg):
    """``--eval-data`` that would hold out training sequences (the same path, or one inside the
    other), or beside an ``--eval-split`` it makes unused; None if fine."""
    data, held = (os.path.realpath(p) for p in (cfg.data, cfg.eval_data))
    if data == held or os.path.commonpath([data, held]) in (data, held):
        return (f"--eval-data {cfg.eval_data} overlaps --data {cfg.data}: the held-out sequences must not be "
                "training ones (give a separate folder or file)")
    if cfg.eval_split != TrainConfig.eval_split:
        return f"--eval-split does not apply with --eval-data (every sequence there is held out), got {cfg.eval_split}"
    return None


def missing_packages(cfg):
    """Optional packages this run needs but cannot import, as install hints (checked before training)."""
    needs = []
    if cfg.dataset.startswith("digits"):
        needs.append(("sklearn", "scikit-learn", "data", "--dataset " + cfg.dataset))
    for path, flag in ((cfg.data, "--data"), (cfg.eval_data, "--eval-data")):
        if path and not has_extension(path, ".npz"):
            needs.append(("PIL", "pillow", "data", f"{flag} with image files"))
    if cfg.checkpoint_dir:
        needs.append(("safetensors", "safetensors", None, "--checkpoint-dir"))
    if cfg.plot:
        needs.append(("matplotlib", "matplotlib", "plot", "--plot"))
    if gt.config.backend_name() == "torch":
        needs.append(("torch", "torch", "torch", "GT_BACKEND=torch"))
    return [hint for hint in (missing_package(*need) for need in needs) if hint]


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


def path_problems(cfg):
    """``[(exception class, message)]`` for the paths of ``cfg`` a run cannot use, cheap (nothing
    is loaded): the inputs first (a bad --eval-data is told before --data's files are all read),
    then the output folders, a run folder already holding a run, and --resume-from's checkpoint."""
    inputs = [(DataError, layout_problem(path, flag))
              for path, flag in ((cfg.data, "--data"), (cfg.eval_data, "--eval-data")) if path]
    # with --resume, a damaged run is told after loading
    folders = [cfg.checkpoint_dir] if cfg.checkpoint_dir and not cfg.resume else []
    return start_path_problems(cfg, folders, lambda: lpm_resume_from_problem(cfg), first=inputs)


def check_start(cfg):
    """What ``train`` refuses before any work (as ``python train.py`` does, here as exceptions for
    the Python API): a ``cfg`` that is not a ``TrainConfig`` or holds a value of the wrong type
    (``TypeError``), a bad value or combination (``ValueError`` naming the option), a missing
    package (``ImportError``), and the paths of ``path_problems``."""
    refuse_config(cfg, TrainConfig, value_problems, PATH_FIELDS)
    missing = missing_packages(cfg)
    if missing:
        raise ImportError(missing[0])
    for kind, problem in path_problems(cfg):
        raise kind(problem)
