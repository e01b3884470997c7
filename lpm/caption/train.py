"""The run behind ``lpm caption train``: data, vocabulary, model, training, the blind baseline and
the held-out evaluation.

1. The data: a task (``digit-strings``, ``moving-digits``: training and held-out sets from
   disjoint sources) or the user's own pairs (``--data JSON --image-root DIR``: a seeded tenth
   of them held out, or every pair of ``--eval-data JSON``). The vocabulary is the training
   captions' words; held-out words outside it are counted and reported (they read as ``<unk>``).
2. The model (``PixelLLM``, the task's preset with the options given) trained by
   ``PixelLLMTrainer`` for ``steps`` (or ``epochs``) with checkpoints in ``--checkpoint-dir``.
3. The blind baseline: the same architecture trained on the captions with the images zeroed,
   for ``blind_fraction`` of the steps (it learns the caption statistics fast: a tenth of the
   budget by default), checkpointed in ``<checkpoint-dir>/blind``.
4. The table of ``lpm.caption.evaluate``: the model (greedy and ``num_beams``), the blind model,
   the most frequent caption and the shuffled-image check, on the held-out set.
"""

import dataclasses
import math
import os
import time
from dataclasses import asdict, dataclass

import gt
from gt.sharding import get_mesh
from lpm.caption import figures, presets
from lpm.caption.presets import PRESETS
from lpm.caption.dataset import ImageTextDataset, held_out_file, held_out_split
from lpm.caption.evaluate import evaluate_captions, report_lines
from lpm.caption.metrics import missing_packages
from lpm.caption.model import PixelLLM, PixelLLMConfig
from lpm.caption.store import CaptionStore, blind_dir
from lpm.caption.tasks import CANVAS, TASKS
from lpm.caption.trainer import CaptionBatches, PixelLLMTrainer
from lpm.caption.vocab import SimpleVocabulary
from lpm.options import (at_least, blank, missing_package, non_negative, plain_numbers, positive, problems,
                         refuse_config, seed_problem, type_problems, within)
from lpm.resume import WITH_FINAL, settle_resume_from, start_path_problems

MODEL_OPTIONS = ("patch_size", "vision_embed_dim", "vision_num_layers", "text_embed_dim", "text_num_layers",
                 "num_heads")
# the fields that name files or folders
PATHS = ("data", "image_root", "checkpoint_dir", "plot", "resume_from", "eval_data", "eval_image_root")
TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "warmup", "weight_decay", "grad_clip", "samples", "val_samples",
                 "blind_fraction")


@dataclass
class CaptionTrainConfig:
    """Options of ``lpm caption train`` (each field is the flag of the same name); None: the task's preset."""

    task: str | None = "digit-strings"
    data: str | None = None            # a JSON list of {"image", "caption"} instead of a task
    image_root: str | None = None
    eval_data: str | None = None       # a JSON of pairs to hold out instead of a tenth of --data
    eval_image_root: str | None = None  # its images' folder (default: image_root, else its own folder)
    checkpoint_dir: str | None = None
    resume: bool = False
    resume_from: str | None = None     # a checkpoint folder or pointer file (implies resume, in its run folder)
    epochs: int | None = None
    steps: int | None = None           # optimizer steps in all (default: epochs x batches per epoch)
    batch_size: int | None = None
    lr: float | None = None
    warmup: int | None = None          # steps of linear warmup, then cosine decay to 0
    weight_decay: float | None = None
    grad_clip: float | None = None     # max gradient norm (0: no clipping)
    samples: int | None = None         # training pairs drawn (tasks)
    val_samples: int | None = None     # held-out pairs drawn (tasks)
    blind_fraction: float | None = None
    patch_size: int | None = None
    vision_embed_dim: int | None = None
    vision_num_layers: int | None = None
    text_embed_dim: int | None = None
    text_num_layers: int | None = None
    num_heads: int | None = None
    val_interval: int | None = None         # steps between validations (default: one epoch)
    checkpoint_interval: int | None = None  # steps between extra checkpoints (default: at validations only)
    save_total_limit: int | None = 2        # newest checkpoints kept (the best and final ones too)
    num_beams: int = 4                      # the beam row of the final table
    autocast: str | None = None
    seed: int = 0
    plot: str | None = None
    progress: bool = True

    def __post_init__(self):
        settle_resume_from(self)


def preset_of(cfg):
    """The preset of ``cfg.task`` (``--data`` runs start from digit-strings')."""
    return presets.PRESETS[cfg.task] if cfg.task in presets.PRESETS else presets.DIGIT_STRINGS


def resolve(cfg):
    """``cfg`` with every None the preset fills filled (``steps`` is filled once the data is known)."""
    preset = preset_of(cfg)
    filled = {name: preset["train"][name] for name in TRAIN_OPTIONS if getattr(cfg, name) is None}
    if cfg.eval_data:       # resolved: a resumed run or `lpm caption evaluate` reads the same files from anywhere
        root = cfg.eval_image_root or cfg.image_root or os.path.dirname(os.path.abspath(cfg.eval_data))
        filled.update(eval_data=os.path.realpath(cfg.eval_data), eval_image_root=os.path.realpath(root))
    return dataclasses.replace(cfg, task=None if cfg.data else cfg.task, **filled)


def model_config(cfg, vocab, image_shape, longest):
    """The ``PixelLLMConfig`` of a run: the preset's model, the options given, the data's image size."""
    return PixelLLMConfig(vocab_size=len(vocab), pad_id=vocab.pad_id, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                          **model_fields(cfg, image_shape, longest))


def config_problem(cfg, image_shape=None):
    """Why the model options of ``cfg`` cannot make a model for images of ``image_shape`` (default:
    the task's), as one line; None if they can. Cheap: checked before any data is made."""
    if image_shape is None:
        model = preset_of(cfg)["model"]
        image_shape = CANVAS if model.get("encoder", "vit") == "vit" else \
            (model["seq_len"], model["frame_size"], model["frame_size"])
    try:
        PixelLLMConfig(vocab_size=8, **model_fields(resolve(cfg), image_shape, 4))
    except ValueError as exc:
        given = [f"--{name.replace('_', '-')} {getattr(cfg, name)}" for name in MODEL_OPTIONS
                 if getattr(cfg, name) is not None]
        return f"{exc} (model options given: {', '.join(given) or 'none'})"
    return None


def model_fields(cfg, image_shape, longest):
    """The ``PixelLLMConfig`` fields of a run but the vocabulary's."""
    fields = dict(preset_of(cfg)["model"])
    heads = {"num_heads": ("vision_num_heads", "text_num_heads", "lpm_num_heads")}
    for name in MODEL_OPTIONS:
        value = getattr(cfg, name)
        if value is not None:
            for target in heads.get(name, (name,)):
                if target in fields or name != "num_heads":
                    fields[target] = value
    if fields.get("encoder", "vit") == "vit":
        fields["image_size"] = tuple(image_shape[-2:])
    else:                                                   # frame sequences (S, H, W), square frames
        fields["seq_len"], fields["frame_size"] = int(image_shape[0]), int(image_shape[-1])
    fields["max_seq_len"] = max(fields.get("max_seq_len", 0), longest)
    return fields


def load_captions(cfg, log):
    """``(train, held_out, description)``: two ``CaptionData`` sets."""
    if cfg.data:
        pairs = ImageTextDataset(cfg.data, image_root=cfg.image_root)
        if cfg.eval_data:
            held_out = held_out_file(cfg.eval_data, cfg.eval_image_root, pairs.image_shape, pairs.paths)
            return pairs, held_out, f"{len(pairs)} image-caption pairs of {cfg.data}, held out: {cfg.eval_data}"
        train, held_out = held_out_split(pairs, seed=cfg.seed)
        return train, held_out, f"{len(pairs)} image-caption pairs of {cfg.data}"
    train, held_out = TASKS[cfg.task](cfg.samples, cfg.val_samples, seed=cfg.seed)
    return train, held_out, f"task {cfg.task}"


def prepare(cfg, log=print):
    """Data, vocabulary, loaders and model of a run: a dict (``cfg`` resolved, steps filled)."""
    cfg = resolve(cfg)
    train_set, held_out, description = load_captions(cfg, log)
    vocab = SimpleVocabulary(list(train_set.captions))
    unknown = vocab.unknown_words(list(held_out.captions))
    if unknown:
        log(f"warning: {sum(unknown.values())} held-out word(s) outside the training vocabulary read as <unk> "
            f"({len(unknown)} distinct, e.g. {', '.join(w for w, _ in unknown.most_common(5))})")
    longest = max(len(vocab.encode(c)) for c in list(train_set.captions) + list(held_out.captions))
    gt.manual_seed(cfg.seed)
    config = model_config(cfg, vocab, train_set.image_shape, longest)
    model = PixelLLM(config)
    train_batches = CaptionBatches(train_set, vocab, cfg.batch_size, config.max_seq_len)
    val_batches = CaptionBatches(held_out, vocab, max(cfg.batch_size, 250), config.max_seq_len)
    if cfg.steps is None:
        cfg = dataclasses.replace(cfg, steps=cfg.epochs * len(train_batches))
    info = {"task": cfg.task, "data": description}
    return dict(cfg=cfg, train=train_set, held_out=held_out, vocab=vocab, model=model, config=config,
                train_batches=train_batches, val_batches=val_batches, info=info, description=description)


def train_blind(run, log):
    """The blind baseline: a model of the same configuration trained with the images zeroed."""
    cfg = run["cfg"]
    steps = max(1, math.ceil(cfg.blind_fraction * cfg.steps))
    blind_cfg = dataclasses.replace(cfg, checkpoint_dir=blind_dir(cfg.checkpoint_dir) if cfg.checkpoint_dir
                                    else None, resume_from=None, plot=None, steps=steps, val_interval=steps,
                                    checkpoint_interval=None, save_total_limit=1)
    gt.manual_seed(cfg.seed + 2)
    model = PixelLLM(run["config"])
    trainer = PixelLLMTrainer(model, blind_cfg, run["train_batches"], run["val_batches"], max_steps=steps,
                              blind=True, info=run["info"], log=log)
    trainer.train()
    return model


def option_problems(cfg):
    """Every problem with the options of ``cfg`` (a ``CaptionTrainConfig``) as messages naming the
    flag, the types first, alone (an empty list if none)."""
    return type_problems(plain_numbers(cfg), PATHS) or value_problems(cfg)


def value_problems(cfg):
    """``option_problems``' problems once every field of ``cfg`` has the right type."""
    ints = ("epochs", "steps", "batch_size", "samples", "val_samples", "patch_size", "vision_embed_dim",
            "vision_num_layers", "text_embed_dim", "text_num_layers", "num_heads", "val_interval",
            "checkpoint_interval", "save_total_limit", "num_beams")
    bad = problems(*(at_least("--" + n.replace("_", "-"), getattr(cfg, n), 1) for n in ints),
                   positive("--lr", cfg.lr), at_least("--warmup", cfg.warmup, 0), seed_problem("--seed", cfg.seed),
                   non_negative("--weight-decay", cfg.weight_decay), non_negative("--grad-clip", cfg.grad_clip),
                   within("--blind-fraction", cfg.blind_fraction, 0, 1),
                   *(blank("--" + n.replace("_", "-"), getattr(cfg, n)) for n in PATHS))
    if not cfg.data and cfg.task not in PRESETS:
        bad.append(f"--task must be one of {', '.join(PRESETS)}, got {cfg.task!r}")
    if cfg.autocast not in (None, "bfloat16"):
        bad.append(f"--autocast must be bfloat16 or None, got {cfg.autocast!r}")
    if cfg.image_root and not cfg.data:
        bad.append(f"--image-root {cfg.image_root} goes with --data (the JSON whose images it holds)")
    if cfg.eval_data and not cfg.data:
        bad.append(f"--eval-data {cfg.eval_data} goes with --data (the tasks hold out their own pairs)")
    if cfg.eval_image_root and not cfg.eval_data:
        bad.append(f"--eval-image-root {cfg.eval_image_root} goes with --eval-data (the JSON whose images it holds)")
    if cfg.resume and not cfg.checkpoint_dir:
        bad.append("--resume needs --checkpoint-dir (the run to continue)")
    no_plot = missing_package("matplotlib", "matplotlib", "plot", "--plot") if cfg.plot else None
    if no_plot:
        bad.append(no_plot)
    return bad


def check_start(cfg):
    """What ``train`` refuses before any work, as ``lpm caption train`` does: a ``cfg`` that is not a
    ``CaptionTrainConfig`` or holds a value of the wrong type (``TypeError``), a bad option or model
    size (``ValueError`` naming it), a missing package, an output folder that cannot be written or
    a run folder that holds another run."""
    refuse_config(cfg, CaptionTrainConfig, value_problems, PATHS)
    for kind, problem in start_problems(cfg):
        raise kind(problem)
    problem = None if cfg.data else config_problem(cfg)     # --data's images: once read
    if problem:
        raise ValueError(problem)


def start_problems(cfg):
    """``[(exception class, message)]`` for the folders and files a run of ``cfg`` writes or resumes
    from, as ``lpm caption train`` refuses them: the output folders, a run folder (or its blind
    baseline's) holding another run, and --resume-from's checkpoint (read and verified now)."""
    folders = (cfg.checkpoint_dir, blind_dir(cfg.checkpoint_dir)) if cfg.checkpoint_dir else ()
    # the blind baseline's folder is made inside the run's: a file there failed at the blind run's first save
    blind = (("--checkpoint-dir's blind baseline folder", folders[1]),) if folders else ()
    return start_path_problems(cfg, folders, lambda: CaptionStore.resume_from_problem(resolve(cfg)),
                               ("curves.png", "examples.png"), more=blind, pointers=WITH_FINAL)


def train(cfg, log=print):
    """Run ``cfg`` (a ``CaptionTrainConfig``); returns ``{"model", "blind", "state", "table", "vocab",
    "held_out", "seconds", "config"}``. Raises ``lpm.resume.NonFiniteLoss``,
    ``lpm.interrupt.TrainingInterrupted`` and ``lpm.checkpoint.CheckpointError``; RuntimeError,
    before any work, when a metric library the evaluation needs is not installed, and
    ``check_start``'s errors for bad options."""
    missing = missing_packages()
    if missing:         # the scores come after training: say it now, not when the run is over
        raise RuntimeError("; ".join(missing))
    check_start(cfg)
    return train_checked(cfg, log)


def train_checked(cfg, log=print):
    """``train`` for a ``cfg`` that passed ``check_start``'s checks (``lpm caption train`` makes
    them itself, as one-line errors), so that they run once."""
    t0 = time.perf_counter()
    run = prepare(cfg, log)
    cfg, model = run["cfg"], run["model"]
    log(f"Data: {run['description']}: {len(run['train'])} training and {len(run['held_out'])} held-out pairs, "
        f"images {tuple(run['train'].image_shape)}, vocabulary {len(run['vocab'])} tokens; devices "
        f"{get_mesh().describe()}, engine {gt.get_backend()}")
    log(f"Model: {model.num_parameters():,} parameters; {cfg.steps} steps of batch {cfg.batch_size} "
        f"({cfg.steps / len(run['train_batches']):.1f} epochs), AdamW lr {cfg.lr:g} (warmup {cfg.warmup}, cosine)")
    trainer = PixelLLMTrainer(model, cfg, run["train_batches"], run["val_batches"], info=run["info"], log=log)
    state = trainer.train()
    t_model = time.perf_counter() - t0
    blind = train_blind(run, log)
    t_blind = time.perf_counter() - t0 - t_model
    table = evaluate_captions(model, blind, run["vocab"], run["val_batches"], list(run["train"].captions),
                              num_beams=cfg.num_beams, seed=cfg.seed)
    for line in report_lines(table, len(run["held_out"]), cfg.num_beams):
        log(line)
    if cfg.plot:
        paths = figures.run_figures(cfg.plot, state, model, run["vocab"], run["held_out"])
        log(f"Figures: {', '.join(paths)}")
    seconds = time.perf_counter() - t0
    log(f"Done in {seconds:.1f} s (model {t_model:.1f} s, blind baseline {t_blind:.1f} s, evaluation "
        f"{seconds - t_model - t_blind:.1f} s)")
    return dict(model=model, blind=blind, state=state, table=table, vocab=run["vocab"], held_out=run["held_out"],
                seconds=seconds, config=asdict(cfg), checkpoint=trainer.store.last if trainer.store else None)

