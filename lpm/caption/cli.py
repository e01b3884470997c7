"""``lpm caption ...``: the Pixel LLM's commands.

    lpm caption train --task digit-strings --checkpoint-dir runs/cap
    lpm caption train --data captions.json --image-root images/ --checkpoint-dir runs/mine
    lpm caption evaluate --checkpoint runs/cap [--num-beams 4] [--limit 200]
    lpm caption predict --checkpoint runs/cap img.png more.npy [--json] [--num-beams 4]
    lpm caption predict --checkpoint runs/cap img.png --num-beams 4 --sample --min-new-tokens 2 --early-stopping never

Bad options, files and environment variables are one line on stderr and exit status 2, found
before any work starts; a damaged checkpoint or missing data is exit 1; Ctrl-C 130.
"""

import json
import os
from dataclasses import fields

import gt
from gt.backend import B
from lpm.caption.dataset import ImageTextDataset, held_out_file, read_images, read_sequences
from lpm.caption.decoding import GenerationConfig
from lpm.caption.evaluate import caption_images, evaluate_captions, load_trained, report_lines
from lpm.caption.metrics import missing_packages
from lpm.caption.presets import PRESETS
from lpm.caption.store import blind_dir
from lpm.caption.model import PixelLLMConfig
from lpm.caption.tasks import CANVAS
from lpm.caption.train import CaptionTrainConfig, config_problem, load_captions, model_fields, option_problems, \
    preset_of, resolve, start_problems, train_checked
from lpm.caption.trainer import CaptionBatches
from lpm.commands import dispatch
from lpm.data.base import DataError
from lpm.options import OneLineParser, at_least, blank, check_environment, checkpoint_parser, parse_only_with, \
    positive, problems, seed_problem
from lpm.resume import NonFiniteLoss, WrongKind

USAGE = """usage: lpm caption {train,evaluate,predict} ...

  lpm caption train --checkpoint-dir DIR   train on a task (--task digit-strings, the default, or
                                           moving-digits) or on your pairs (--data JSON --image-root DIR)
  lpm caption evaluate --checkpoint DIR    exact match, CER, WER, BLEU-4, CIDEr-D beside the baselines
  lpm caption predict --checkpoint DIR FILES...
                                           one caption per image (.png, .npy image or .npy batch) or
                                           frame sequence (.npy, .npy batch or folder of frames)

'lpm caption COMMAND --help' describes each command's options.
"""
HELPS = {
    "task": "what to learn: digit-strings (1-4 MNIST digits in a 28x112 image, captioned in words) or "
            "moving-digits (a moving digit's frame sequence, LPM as the encoder)",
    "data": "a JSON list of {\"image\": path, \"caption\": text} to train on instead of a task "
            "(a seeded tenth is held out, or --eval-data)",
    "image_root": "folder the JSON's image paths are relative to (default: the JSON's folder)",
    "eval_data": "with --data: a JSON list of pairs to hold out, every one, instead of a tenth of --data "
                 "(images of --data's size; its words outside --data's captions read as <unk>)",
    "eval_image_root": "folder --eval-data's image paths are relative to (default: --image-root if given, "
                       "else that JSON's folder)",
    "checkpoint_dir": "folder of the run's checkpoints (latest, best by held-out exact match, final; the "
                      "blind baseline in DIR/blind)",
    "resume": "continue the run in --checkpoint-dir exactly (--val-interval, --checkpoint-interval, "
              "--save-total-limit and --num-beams may change)",
    "resume_from": "resume from this checkpoint instead of the latest: a checkpoint folder or a pointer file "
                   "(DIR/best.json, DIR/previous.json); implies --resume, in its run folder",
    "steps": "optimizer steps in all (default: --epochs of the training set)",
    "blind_fraction": "the blind baseline (images zeroed) trains for this share of the steps: it only "
                      "learns the captions' statistics, which takes little (task default: 0.1)",
    "val_interval": "steps between validations and checkpoints (default: one epoch)",
    "checkpoint_interval": "steps between extra checkpoints (default: at validations only)",
    "save_total_limit": "newest checkpoints kept (the best and final ones are kept too; default: 2)",
    "num_beams": "beams of the beam-search row of the final table (default: 4)",
    "autocast": "run the matrix products in bfloat16 (needs the torch engine: GT_BACKEND=torch)",
    "plot": "folder for curves.png and examples.png (captions and cross-attention maps; needs matplotlib)",
}


def main(argv):
    """``lpm caption COMMAND ...``; returns the exit status."""
    commands = {"train": train_command, "evaluate": evaluate_command, "predict": predict_command}
    return dispatch(argv, "caption", commands, USAGE, stopped=(NonFiniteLoss,))


# ---- train --------------------------------------------------------------------------------------
def _train_parser(prog):
    p = OneLineParser(prog=prog, description="Train a Pixel LLM (image encoder + text decoder with cross-attention) "
                                             "to caption images, then its blind baseline; prints the held-out table. "
                                             "Options left out take the task's defaults (lpm/caption/presets.py).")
    types = {"task": str, "data": str, "image_root": str, "checkpoint_dir": str, "resume_from": str, "autocast": str,
             "plot": str, "eval_data": str, "eval_image_root": str,
             "lr": float, "weight_decay": float, "grad_clip": float, "blind_fraction": float}
    for f in fields(CaptionTrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "progress":
            p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
        elif f.name == "resume":
            p.add_argument(flag, action="store_true", help=HELPS[f.name])
        else:
            choices = {"task": list(PRESETS), "autocast": ["bfloat16"]}.get(f.name)
            p.add_argument(flag, type=types.get(f.name, int), default=f.default, choices=choices,
                           help=HELPS.get(f.name, _preset_help(f.name) if f.default is None else
                                          f"(default: {f.default})"))
    return p


def _preset_help(name):
    """``(default: the task's: 4 for digit-strings, 6 for moving-digits)`` from the presets."""
    key = {"num_heads": "text_num_heads"}.get(name, name)
    values = [f"{part[key]} for {task}" for task, preset in PRESETS.items() for part in preset.values()
              if key in part]
    return f"(default: the task's: {', '.join(values)})" if values else "(default: the task's)"


def train_command(argv, prog):
    p = _train_parser(prog)
    args = p.parse_args(argv)
    check_environment(p, one_process=True)
    cfg = CaptionTrainConfig(**vars(args))
    bad = option_problems(cfg) or missing_packages()
    if bad:
        p.error(bad[0])
    if cfg.autocast and not B.supports_bfloat16:
        p.refuse(f"--autocast bfloat16 needs an engine with bfloat16 arithmetic; the {B.name} engine has none: "
                 f"run with GT_BACKEND=torch")
    refused = [problem for _, problem in start_problems(cfg)]
    refused.append(_data_problem(cfg) if cfg.data else config_problem(cfg) or _memory_problem(cfg))
    refused = [r for r in refused if r]
    if refused:
        p.refuse(refused[0])
    train_checked(cfg, log=lambda line: print(line, flush=True))    # each line as it comes, also into a file
    return 0


def _memory_problem(cfg):
    """A one-line refusal when a task's run cannot fit in memory (its model with AdamW's state, its
    canvases and one batch's activations, float32), else None; from the options alone, before any
    data is made. (``--data``'s pairs are read, so counted, by ``_data_problem``.)"""
    from lpm import memory

    cfg = resolve(cfg)
    vit = preset_of(cfg)["model"].get("encoder", "vit") == "vit"
    c = PixelLLMConfig(vocab_size=64, **model_fields(cfg, CANVAS if vit else (8, 32, 32), 4))
    pixels, s, d, layers, heads = _encoder_sizes(c)
    t, dt, ff = c.max_seq_len, c.text_embed_dim, c.ff_mult
    params = (pixels // s) * d + layers * (4 + 2 * ff) * d * d + c.text_num_layers * (8 + 2 * ff) * dt * dt \
        + 2 * (t + c.vocab_size) * dt
    per_row = pixels + 2 * (layers * s * ((16 + 2 * ff) * d + heads * s)
                            + c.text_num_layers * t * ((24 + 2 * ff) * dt + c.text_num_heads * (t + s)))
    kept = (cfg.samples + cfg.val_samples) * (pixels if vit else 128)      # uint8 canvases; frames drawn per batch
    batch = max(min(cfg.batch_size, cfg.samples), min(max(cfg.batch_size, 250), cfg.val_samples))  # as drawn
    parts = {"model": 24 * params, "data": kept, "a batch": 4 * batch * per_row}
    hints = {"model": "a smaller --vision-embed-dim, --text-embed-dim or fewer layers", "data": "fewer --samples",
             "a batch": "a smaller --batch-size or a larger --patch-size"}
    return memory.too_large(parts, "this run", "use " + hints[max(parts, key=parts.get)])


def _encoder_sizes(c):
    """``(pixels, tokens, width, layers, heads)`` of the encoder of a ``PixelLLMConfig``."""
    if c.encoder == "vit":
        pixels = c.image_size[0] * c.image_size[1]
        return (pixels, pixels // (c.patch_size[0] * c.patch_size[1]), c.vision_embed_dim, c.vision_num_layers,
                c.vision_num_heads)
    return c.seq_len * c.frame_size ** 2, c.seq_len, c.lpm_embed_dim, c.lpm_num_layers, c.lpm_num_heads


def _refuse_if_decoding_too_large(p, model, rows, hint):
    """Exit 2 when captioning ``rows`` (images x beams) at once cannot fit in memory: per row, the
    encoder's output, each decoder block's self- and cross-attention keys and values, one block's
    activations over the caption and the logits, float32."""
    from lpm import memory

    c = model.config
    _, s, d, _, _ = _encoder_sizes(c)
    t, dt = c.max_seq_len, c.text_embed_dim
    per_row = s * d + 2 * c.text_num_layers * (t + s) * dt + t * ((24 + 2 * c.ff_mult) * dt
                                                                  + c.text_num_heads * (t + s)) + 4 * c.vocab_size
    too_large = memory.too_large({"the captions decoded at once": 4 * rows * per_row}, "this command", hint)
    if too_large:
        p.refuse(too_large)


def _data_problem(cfg):
    """The first problem of ``--data`` (a missing image, an empty caption...) or of the model options
    for its images, or None."""
    if not os.path.isfile(cfg.data):
        return (f"--data {cfg.data}: {'a folder' if os.path.isdir(cfg.data) else 'no such file'} (expected a JSON "
                f"list of {{\"image\", \"caption\"}})")
    try:
        pairs = ImageTextDataset(cfg.data, image_root=cfg.image_root)
    except DataError as exc:     # most of its messages name the file already
        return str(exc) if str(exc).startswith(f"--data {cfg.data}:") else f"--data {cfg.data}: {exc}"
    problem = config_problem(cfg, pairs.image_shape)
    if problem:
        return f"--data {cfg.data}: its images do not fit the model: {problem}"
    if cfg.eval_data and os.path.isfile(cfg.eval_data) and os.path.samefile(cfg.data, cfg.eval_data):
        return f"--eval-data {cfg.eval_data} is --data {cfg.data}: the held-out pairs must not be training ones"
    try:             # read now: a bad held-out file is told before training, not after it
        if cfg.eval_data:
            held_out_file(cfg.eval_data, resolve(cfg).eval_image_root, pairs.image_shape, pairs.paths)
    except DataError as exc:
        return str(exc)
    return None


# ---- evaluate and predict -----------------------------------------------------------------------
def _load(p, args):
    """``(model, vocab, checkpoint)`` of ``--checkpoint``; exit 2 for a checkpoint of another model kind."""
    try:
        return load_trained(args.checkpoint, "best" if args.best else "latest")
    except WrongKind as exc:
        p.refuse(str(exc))


def _add_decoding_options(p):
    """The decoding rules ``evaluate`` and ``predict`` share (Hugging Face's, see GenerationConfig)."""
    p.add_argument("--min-new-tokens", type=int, default=0,
                   help="captions of at least N tokens: <eos> is banned until then (default: 0)")
    p.add_argument("--early-stopping", choices=["false", "true", "never"],
                   help="when beam search stops: false (the default), Hugging Face's heuristic, once the best running "
                        "beam at its current length cannot beat the finished captions; true, as soon as --num-beams "
                        "captions are finished; never, once no running beam could beat them at any length")


def _decoding_problem(args):
    """The first problem of the decoding options that needs no model, or None."""
    if args.early_stopping and args.num_beams == 1:
        return f"--early-stopping {args.early_stopping} needs --num-beams > 1 (it decides when beam search stops)"
    return at_least("--min-new-tokens", args.min_new_tokens, 0)


def _decoding_rules(p, args, model):
    """``GenerationConfig`` fields of the decoding options; exit 2 for a ``--min-new-tokens`` the
    model's captions cannot reach."""
    longest = model.config.max_seq_len - 2         # <bos>, the caption and <eos> fill max_seq_len tokens
    if args.min_new_tokens > longest:
        p.refuse(f"--min-new-tokens {args.min_new_tokens}: this model's captions have at most {longest} tokens "
                 f"(its max_seq_len {model.config.max_seq_len} counts <bos> and <eos>)")
    return dict(min_new_tokens=args.min_new_tokens or None,
                early_stopping={None: False, "false": False, "true": True}.get(args.early_stopping, "never"))


def evaluate_command(argv, prog):
    p = checkpoint_parser(prog, "Caption the held-out images of the run's data and score them (exact match, CER, WER, "
                                "BLEU-4, CIDEr-D) beside the blind model, the most frequent caption and shuffled "
                                "images.", "the run's best checkpoint (held-out exact match)")
    p.add_argument("--num-beams", type=int, default=4, help="beams of the beam-search row (default: 4; 1: none)")
    p.add_argument("--limit", type=int, help="score only the first N held-out images")
    _add_decoding_options(p)
    args = p.parse_args(argv)
    check_environment(p)
    bad = problems(blank("--checkpoint", args.checkpoint), at_least("--num-beams", args.num_beams, 1),
                   at_least("--limit", args.limit, 1), _decoding_problem(args)) \
        + missing_packages()
    if bad:
        p.error(bad[0])
    model, vocab, ckpt = _load(p, args)
    rules = _decoding_rules(p, args, model)
    rows = min(250, args.limit or 250) * args.num_beams           # held-out images go 250 a batch
    _refuse_if_decoding_too_large(p, model, rows, "use a smaller --num-beams")
    saved = {k: v for k, v in (ckpt.meta.get("train_config") or {}).items() if k in CAPTION_FIELDS}
    cfg = resolve(CaptionTrainConfig(**saved))
    train_set, held_out, _ = load_captions(cfg, print)
    blind, run_dir, is_blind = None, os.path.dirname(ckpt.path), bool(ckpt.meta.get("blind"))
    if os.path.isdir(blind_dir(run_dir)) and not is_blind:
        blind, _, _ = load_trained(blind_dir(run_dir))
    batches = CaptionBatches(held_out, vocab, 250, model.config.max_seq_len)
    table = evaluate_captions(model, blind, vocab, batches, list(train_set.captions), num_beams=args.num_beams,
                              limit=args.limit, seed=cfg.seed, model_is_blind=is_blind, rules=rules)
    progress = ckpt.meta.get("progress") or {}
    print(f"Checkpoint: {ckpt.path} (step {progress.get('step')}" + ("; a blind baseline: its images zeroed)" if
          is_blind else f"); blind baseline: {blind_dir(run_dir) if blind is not None else 'none'}"))
    print("\n".join(report_lines(table, min(args.limit or len(held_out), len(held_out)), args.num_beams)))
    return 0


CAPTION_FIELDS = {f.name for f in fields(CaptionTrainConfig)}


def predict_command(argv, prog):
    p = checkpoint_parser(prog, "One caption per image: a .png, an .npy image (H, W) or an .npy batch (N, H, W), "
                                "of the size the model was trained on; for a model with the LPM encoder "
                                "(moving-digits), one per frame sequence: an .npy (T, H, W), an .npy batch "
                                "(N, T, H, W) or a folder of T frame images (in name order), T frames of the "
                                "model's count and size.", "the run's best checkpoint")
    p.add_argument("files", nargs="+", metavar="FILES", help="images: .png, .npy (H, W) or .npy (N, H, W); frame "
                                                             "sequences: .npy (T, H, W), (N, T, H, W) or a folder")
    p.add_argument("--json", action="store_true", help="a JSON list of {\"file\", \"index\", \"caption\"}")
    p.add_argument("--num-beams", type=int, default=1, help="beam search with N beams (default: 1, greedy)")
    p.add_argument("--sample", action="store_true", help="sample the words instead of taking the most likely (with "
                                                         "--num-beams: beam sampling, each step's beams drawn)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of --sample (default: 1.0)")
    p.add_argument("--top-k", type=int, help="with --sample: among the k most likely words")
    p.add_argument("--top-p", type=float, help="with --sample: among the most likely words of probability p")
    p.add_argument("--seed", type=int, default=0, help="random seed of --sample (default: 0)")
    _add_decoding_options(p)
    args, ignored = parse_only_with(p, argv, ("temperature", "top_k", "top_p", "seed"), "sample",
                                    "the most likely words are taken without it")
    check_environment(p)
    bad = problems(at_least("--num-beams", args.num_beams, 1), positive("--temperature", args.temperature),
                   at_least("--top-k", args.top_k, 1), seed_problem("--seed", args.seed),
                   blank("--checkpoint", args.checkpoint), _decoding_problem(args),
                   None if args.top_p is None or 0 < args.top_p <= 1
                   else f"--top-p must be in (0, 1], got {args.top_p}", ignored)
    if bad:
        p.error(bad[0])
    missing = [f for f in args.files if not os.path.exists(f)]
    if missing:
        p.refuse(f"{missing[0]}: no such file or folder")
    model, vocab, ckpt = _load(p, args)
    rules = _decoding_rules(p, args, model)
    c = model.config
    try:
        images, sources = read_images(args.files, tuple(c.image_size)) if c.encoder == "vit" else \
            read_sequences(args.files, (c.seq_len, c.frame_size, c.frame_size))
    except DataError as exc:
        p.refuse(str(exc))
    _refuse_if_decoding_too_large(p, model, len(images) * args.num_beams, "use a smaller --num-beams or fewer images")
    config = GenerationConfig(max_length=model.config.max_seq_len, num_beams=args.num_beams, do_sample=args.sample,
                              temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, **rules)
    gt.manual_seed(args.seed)
    captions = caption_images(model, images, vocab, config, blind=bool(ckpt.meta.get("blind")))
    if args.json:
        print(json.dumps([{"file": f, "index": i, "caption": c} for (f, i), c in zip(sources, captions)], indent=1))
    else:
        batches = {f for f, i in sources if i > 0}           # files of several images: each row named
        for (f, i), c in zip(sources, captions):
            print(f"{f}[{i}]: {c}" if f in batches else f"{f}: {c}")
    return 0
