"""``lpm ppt ...``: the Pixel Prediction Transformer's commands.

    lpm ppt train --checkpoint-dir runs/ppt          # codebook (if none), then training
    lpm ppt evaluate --checkpoint runs/ppt [--samples]
    lpm ppt generate --checkpoint runs/ppt --num 64 --out samples.png
    lpm ppt generate --checkpoint runs/ppt --digit 7 --num 30 --seed 0 --out sevens.npy
    lpm ppt generate --checkpoint runs/ppt --complete heldout.npy --out completed.png
    lpm ppt codebook --patch-size 4 --codes 256 --out runs/ppt/codebook.safetensors

Bad options, files and environment variables are one line on stderr and exit status 2, found
before any work starts (an --out that exists already is kept unless --overwrite is given); a
damaged checkpoint or missing data is exit 1; Ctrl-C 130.
"""

import os
import time
from dataclasses import fields

import numpy as np

from lpm.checkpoint import load_into
from lpm.commands import dispatch
from lpm.options import (OneLineParser, at_least, blank, check_environment, checkpoint_parser, existing_output,
                         folder_given, missing_package, parse_only_with, positive, problems, seed_problem)
from lpm.outputs import writable_problem
from lpm.ppt.codebook import grid_side
from lpm.ppt.data import load_tokens, tokens_of
from lpm.ppt.evaluate import heldout_figures, report_lines, sample_figures
from lpm.ppt.generate import complete, read_digits, rows_given, write_images
from lpm.ppt.model import PixelPredictionTransformer
from lpm.ppt.store import read_ppt_checkpoint
from lpm.ppt.train import OPTIMIZERS, PPTTrainConfig, patch_size_problem, option_problems, start_problems, \
    train_checked
from lpm.resume import NonFiniteLoss, WrongKind

USAGE = """usage: lpm ppt {train,evaluate,generate,codebook} ...

  lpm ppt train --checkpoint-dir DIR       build the codebook if there is none, then train
  lpm ppt evaluate --checkpoint DIR        held-out bits/token beside the baselines [--samples]
  lpm ppt generate --checkpoint DIR --out FILE
                                           new digits (.png grid or .npy), or completions (--complete)
  lpm ppt codebook --out FILE              fit the patch codebook on its own

'lpm ppt COMMAND --help' describes each command's options.
"""
OUT_TYPES = (".png", ".npy")
# Classifier-free guidance when a digit is asked and --guidance is not given: on the default run
# it took the samples judged as the asked digit from 69% (plain conditional, w = 1) to 87%.
DEFAULT_GUIDANCE = 2.0


def main(argv):
    """``lpm ppt COMMAND ...``; returns the exit status."""
    commands = {"train": train_command, "evaluate": evaluate_command, "generate": generate_command,
                "codebook": codebook_command}
    return dispatch(argv, "ppt", commands, USAGE, stopped=(NonFiniteLoss,))


# ---- train --------------------------------------------------------------------------------------
def train_command(argv, prog):
    defaults = PPTTrainConfig()
    p = OneLineParser(prog=prog, description="Train the Pixel Prediction Transformer on MNIST's codebook tokens "
                                             "(the codebook is fitted first when there is none).")
    helps = {"checkpoint_dir": "folder of the run's checkpoints (latest, best by held-out bits/token, final) and "
                               "of its codebook",
             "resume": "continue the run in --checkpoint-dir exactly (--threads may change)",
             "resume_from": "resume from this checkpoint instead of the latest: a checkpoint folder or a pointer "
                            "file (DIR/best.json, DIR/previous.json); implies --resume, in its run folder",
             "codebook": "codebook file to read, or to write when absent (default: CHECKPOINT_DIR/"
                         "codebook.safetensors)", "limit": "use at most this many training and held-out digits",
             "lr": "learning rate (default: 2e-3 for adamw, 0.1 for sgd), cosine decay to 0",
             "uncond_prob": "share of training sequences that start with 'no class'",
             "patch_size": "side of a patch, 1 to 28; digits are zero-padded on the bottom/right to a multiple "
                           "(default: 4)",
             "codebook_inits": "k-means initialisations when the codebook is fitted here, the best by inertia kept "
                               "(default: 1; an existing codebook file is read as it is)",
             "threads": "BLAS threads, or 'auto' (the default: every free core, one on a busy machine)",
             "plot": "folder for curves.png and a sample grid per epoch (needs matplotlib)"}
    for f in fields(PPTTrainConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if f.name == "progress":
            p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
        elif f.name == "resume":
            p.add_argument(flag, action="store_true", help=helps[f.name])
        else:
            kind = {int: int, float: float}.get(type(default), str) if default is not None else \
                {"limit": int, "lr": float}.get(f.name, str)
            p.add_argument(flag, type=kind, default=default, choices=OPTIMIZERS if f.name == "optimizer" else None,
                           help=helps.get(f.name, f"(default: {default})"))
    p.set_defaults(momentum=None)       # told apart from not given: AdamW has none (the field's 0.9 is SGD's)
    args = p.parse_args(argv)
    check_environment(p, one_process=True)
    if args.momentum is not None and args.optimizer != "sgd":
        p.error(f"--momentum applies to --optimizer sgd only (got --optimizer {args.optimizer})")
    args.momentum = defaults.momentum if args.momentum is None else args.momentum
    cfg = PPTTrainConfig(**vars(args))
    bad = option_problems(cfg)
    if bad:
        p.error(bad[0])
    refused = start_problems(cfg)
    if refused:
        p.refuse(refused[0][1])
    too_large = _memory_problem(cfg)
    if too_large:
        p.refuse(too_large)
    train_checked(cfg, log=lambda line: print(line, flush=True))    # each line as it comes, also into a file
    return 0


def _memory_problem(cfg):
    """A one-line refusal when the model and one batch cannot fit in memory (a lower bound:
    float32 weights, gradients and the optimizer's state, two AdamW moments or SGD's momentum
    buffer; a batch's block activations), else None."""
    from lpm import memory

    tokens = grid_side(cfg.patch_size) ** 2 + 1       # the patches (a padded grid) and the class token
    d, ff = cfg.embed_dim, cfg.ff_dim
    params = 2 * cfg.codes * d + (tokens + 11) * d + cfg.num_layers * (4 * d * d + 2 * d * ff)
    digits = min(cfg.batch_size, cfg.limit or 60000)    # a batch holds no more than MNIST's 60,000 digits
    batch = digits * tokens * cfg.num_layers * (8 * d + 2 * ff + cfg.num_heads * tokens)
    per_param = 16 if cfg.optimizer == "adamw" else 12 if cfg.momentum else 8    # bytes: weight, grad, state
    return memory.too_large({"model": per_param * params, "a batch": 4 * batch}, "this run",
                            "use a smaller --embed-dim, --ff-dim, --num-layers, --codes or --batch-size")


# ---- evaluate ------------------------------------------------------------------------------------
def _checkpoint_parser(prog, description):
    p = checkpoint_parser(prog, description, "the run's best checkpoint (held-out bits/token)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the samples (default: 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default: 1.0)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, help="sample among the most likely tokens that make up probability p")
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight w when a digit is asked: "
                                                  f"uncond + w * (cond - uncond) (default: {DEFAULT_GUIDANCE:g}; 1: "
                                                  "plain conditional sampling)")
    return p


def _sampling_problems(args):
    return problems(blank("--checkpoint", args.checkpoint), seed_problem("--seed", args.seed),
                    positive("--temperature", args.temperature),
                    at_least("--top-k", args.top_k, 1),
                    None if args.top_p is None or 0 < args.top_p <= 1
                    else f"--top-p must be in (0, 1], got {args.top_p}",
                    None if args.guidance is None or np.isfinite(args.guidance)
                    else f"--guidance must be a finite number, got {args.guidance}")


def _load(p, args):
    """The model of ``args.checkpoint`` (exit 2 for a checkpoint of another kind) and its checkpoint."""
    try:
        ckpt = read_ppt_checkpoint(args.checkpoint, "best" if args.best else "latest")
    except WrongKind as exc:
        p.refuse(str(exc))
    model = PixelPredictionTransformer.from_config(ckpt.meta["model_config"])
    load_into(ckpt, model)
    return model, ckpt


def evaluate_command(argv, prog):
    p = _checkpoint_parser(prog, "Held-out bits/token of a trained model beside the baselines of its codebook; "
                                 "with --samples, the quality of its samples as an independent judge sees it.")
    p.add_argument("--samples", action="store_true", help="also draw samples and measure their quality")
    p.add_argument("--per-class", type=int, default=30, help="with --samples: conditional samples per digit")
    p.add_argument("--unconditional", type=int, default=300, help="with --samples: unconditional samples")
    args, ignored = parse_only_with(p, argv, SAMPLING, "samples", "the held-out figures draw no samples")
    check_environment(p)
    bad = _sampling_problems(args) + problems(at_least("--per-class", args.per_class, 2),
                                              at_least("--unconditional", args.unconditional, 1), ignored)
    if bad:
        p.error(bad[0])
    model, ckpt = _load(p, args)
    if args.samples:
        guided = 10 * args.per_class * (1 if args.guidance == 1 else 2)
        _refuse_if_too_large(p, model, max(guided, args.unconditional), "fewer --per-class or --unconditional")
    data = tokens_of(model, (ckpt.meta.get("train_config") or {}).get("limit"))
    progress = ckpt.meta.get("progress") or {}
    print(f"Checkpoint: {ckpt.path} (epoch {progress.get('epoch')}, step {progress.get('step')})")
    lines, _ = report_lines(heldout_figures(model, data), data)
    print("\n".join(lines))
    if args.samples:
        t0 = time.perf_counter()
        guidance = DEFAULT_GUIDANCE if args.guidance is None else args.guidance
        _, text = sample_figures(model, data, args.per_class, args.unconditional, guidance, args.temperature,
                                 args.top_k, args.top_p, args.seed)
        print(text)
        print(f"({args.per_class} samples of each digit with guidance {guidance:g} and {args.unconditional} "
              f"unconditional ones; temperature {args.temperature:g}, top-k {args.top_k}, top-p {args.top_p}, "
              f"seed {args.seed}; {time.perf_counter() - t0:.0f} s)")
    return 0


# the options only --samples reads: given without it, they would be ignored silently
SAMPLING = ("seed", "temperature", "top_k", "top_p", "guidance", "per_class", "unconditional")


# ---- generate ------------------------------------------------------------------------------------
def generate_command(argv, prog):
    p = _generate_parser(prog)
    args = p.parse_args(argv)
    check_environment(p, one_process=True)
    bad = _generate_problems(args)
    if bad:
        p.error(bad[0])
    refused = writable_problem(os.path.dirname(os.path.abspath(args.out)))
    if refused:
        p.refuse(f"--out {args.out}: {refused}")
    given = _read_complete(p, args.complete) if args.complete else None
    model, _ = _load(p, args)
    asks_digit = args.digit is not None or args.each_digit
    guidance = (DEFAULT_GUIDANCE if args.guidance is None else args.guidance) if asks_digit else None
    # --num's default: 8 of each digit, 1 completion of each given digit, else 64 digits
    num = args.num or (8 if args.each_digit else 1 if given is not None else 64)
    rows = num * 10 if args.each_digit else num * len(given) if given is not None else num
    _refuse_if_too_large(p, model, rows * (2 if guidance not in (None, 1) else 1), "a smaller --num")
    t0, options = time.perf_counter(), dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                           guidance=guidance, seed=args.seed, use_cache=args.cache)
    images, what, given_tokens = _draw(model, args, given, num, options)
    seconds = time.perf_counter() - t0
    drawn = len(images.reshape(-1, 28, 28)) * model.config.tokens_per_image - given_tokens
    write_images(args.out, images, given, args.digit, num if args.each_digit else None, rows_given(model))
    print(f"Wrote {args.out}: {what} in {seconds:.1f} s "
          f"({drawn / seconds:.0f} tokens/s"
          f"{'' if args.cache else ', no cache'})")
    return 0


def _generate_parser(prog):
    """The parser of ``lpm ppt generate``: the checkpoint and sampling options, and what to draw where."""
    p = _checkpoint_parser(prog, "New digits from a trained model, as a .png grid or a .npy array (N, 28, 28) "
                                 "float32 in [0, 1]; with --complete, given digits drawn on from their top rows.")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write: FILE.png (a grid) or FILE.npy")
    p.add_argument("--num", type=int, help="digits to draw (default 64); with --complete: completions of each "
                                           "digit (default 1; the .npy is then (N, num, 28, 28))")
    p.add_argument("--digit", type=int, help="draw this digit (0-9); default: unconditional")
    p.add_argument("--each-digit", action="store_true", help="draw --num of each digit, one row per digit")
    p.add_argument("--complete", metavar="FILE.npy", help="digits (N, 28, 28) or (28, 28) in [0, 1] whose top "
                                                          "rows of patches (half the grid, rounded down) are kept")
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="decode without the key/value cache (the same digits, slower)")
    p.add_argument("--overwrite", action="store_true", help="replace the file --out names if there is one")
    return p


def _generate_problems(args):
    """What is wrong with ``generate``'s options, first problem first (checked before the model loads)."""
    bad = _sampling_problems(args) + problems(at_least("--num", args.num, 1), blank("--out", args.out))
    if args.digit is not None and not 0 <= args.digit <= 9:
        bad.append(f"--digit must be a digit from 0 to 9, got {args.digit}")
    if args.guidance is not None and args.digit is None and not args.each_digit:
        bad.append("--guidance needs --digit or --each-digit (it steers towards a class)")
    if args.each_digit and (args.digit is not None or args.complete):
        bad.append("--each-digit draws every digit: it goes with neither --digit nor --complete")
    if folder_given("--out", args.out):
        bad.append(folder_given("--out", args.out))
    elif os.path.splitext(args.out)[1].lower() not in OUT_TYPES:
        bad.append(f"--out must end in .png or .npy, got {args.out}")
    elif args.out.lower().endswith(".png"):
        no_png = missing_package("matplotlib", "matplotlib", "plot", "--out *.png")
        if no_png:
            bad.append(no_png + "; or write an .npy")
    return bad + problems(existing_output("--out", args.out, args.overwrite))


def _draw(model, args, given, num, options):
    """``num`` digits (of each digit with --each-digit, or completions of each ``given`` one): the
    images, what they are in words, and how many of their tokens were given rather than drawn."""
    if args.each_digit:
        images = model.generate(10 * num, digit=np.repeat(np.arange(10), num), **options)
        return images, f"{num} of each digit", 0
    if given is None:
        images = model.generate(num, digit=args.digit, **options)
        return images, f"{num} digits" + (f" ({args.digit})" if args.digit is not None else ""), 0
    images, given_tokens = complete(model, given, num, args.digit, **options)
    what = f"{num} completion(s) of each of {len(given)} digits from their top {rows_given(model)} rows"
    return images, what, given_tokens


def _refuse_if_too_large(p, model, rows, hint):
    """Exit 2 when drawing ``rows`` digits in one batch cannot fit in memory: per row, the tokens
    and image, the key/value cache of every block, one block's activations over a whole prefix (the
    first step, or every step without the cache; no tape) and the logits, float32."""
    from lpm import memory

    c = model.config
    n = c.tokens_per_image + 1
    per_row = 4 * (2 * c.num_layers * n * c.embed_dim + n * (8 * c.embed_dim + 2 * c.ff_dim + c.num_heads * n)
                   + 4 * c.num_codes + 28 * 28) + 8 * n
    too_large = memory.too_large({"the digits drawn at once": rows * per_row}, "this command", f"ask for {hint}")
    if too_large:
        p.refuse(too_large)


def _read_complete(p, path):
    """The digits of ``--complete`` (``generate.read_digits``); exit 2 with one line if they are not."""
    try:
        return read_digits(path)
    except ValueError as exc:
        p.refuse(f"--complete {path}: {exc}")


# ---- codebook ------------------------------------------------------------------------------------
def codebook_command(argv, prog):
    p = OneLineParser(prog=prog, description="Fit the k-means patch codebook on MNIST's training digits and save "
                                             "it (safetensors); prints the held-out reconstruction PSNR.")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="where to write it (e.g. runs/ppt/codebook.safetensors)")
    p.add_argument("--patch-size", type=int, default=4, help="side of a patch, 1 to 28; digits are zero-padded on "
                                                            "the bottom/right to a multiple (default: 4)")
    p.add_argument("--codes", type=int, default=256, help="number of codes (default: 256)")
    p.add_argument("--limit", type=int, help="fit on at most this many training digits")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    p.add_argument("--codebook-inits", type=int, default=1,
                   help="k-means initialisations, the best by inertia kept (default: 1)")
    p.add_argument("--overwrite", action="store_true", help="replace the file --out names if there is one")
    args = p.parse_args(argv)
    check_environment(p, one_process=True)
    bad = problems(at_least("--patch-size", args.patch_size, 1), at_least("--codes", args.codes, 2),
                   at_least("--codebook-inits", args.codebook_inits, 1), patch_size_problem(args.patch_size),
                   at_least("--limit", args.limit, 1), seed_problem("--seed", args.seed), blank("--out", args.out),
                   folder_given("--out", args.out), existing_output("--out", args.out, args.overwrite))
    if bad:
        p.error(bad[0])
    refused = writable_problem(os.path.dirname(os.path.abspath(args.out)))
    if refused:
        p.refuse(f"--out {args.out}: {refused}")
    t0 = time.perf_counter()
    data = load_tokens(None, args.patch_size, args.codes, args.limit, args.seed, log=print, n_init=args.codebook_inits)
    data.codebook.save(args.out)
    print(f"Wrote {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0
