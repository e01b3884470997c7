"""The ``lpm`` command (installed by ``pip install``; ``python -m lpm.cli`` runs it too).

    lpm train [options]                              # what python train.py runs (lpm train --help)
    lpm evaluate --checkpoint DIR [--best] [--dataset NAME | --data PATH [--all]]
                                                     # accuracy and a confusion matrix
    lpm predict --checkpoint DIR [--best] [--top K | --json] FILES...
                                                     # class probabilities for each sequence
    lpm ppt train|evaluate|generate|codebook ...     # the Pixel Prediction Transformer (lpm.ppt.cli)
    lpm caption train|evaluate|predict ...           # the Pixel LLM: captions of images (lpm.caption.cli)

``--checkpoint`` takes a run's ``--checkpoint-dir`` (its latest checkpoint, or its best with
``--best``) or one checkpoint folder. Exit status: 0 done, 1 bad data or checkpoint, 2 bad options,
GT_* variables or input paths that are not there (checked as ``train.py`` checks them, by
``lpm.options``, before the checkpoint is read)."""

import json
import os
import sys
from dataclasses import asdict

import numpy as np

USAGE = """usage: lpm {train,evaluate,predict,ppt,caption} ...

  lpm train [options]            train the Pixel Transformer (same options as python train.py)
  lpm evaluate --checkpoint DIR  accuracy and confusion matrix on held-out data
  lpm predict --checkpoint DIR FILES...
                                 class probabilities for each sequence in FILES
  lpm ppt {train,evaluate,generate,codebook} ...
                                 the Pixel Prediction Transformer: digits drawn patch by patch
  lpm caption {train,evaluate,predict} ...
                                 the Pixel LLM: an image encoder and a text decoder that write captions

'lpm COMMAND --help' describes each command's options.
"""


def main(argv=None):
    """Entry point of the ``lpm`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from lpm.train import main as train_main

        train_main(rest, prog="lpm train")
        return 0
    if command == "evaluate":
        return _run(evaluate_command, rest, "lpm evaluate")
    if command == "predict":
        return _run(predict_command, rest, "lpm predict")
    if command == "ppt":
        from lpm.ppt.cli import main as ppt_main

        return ppt_main(rest)
    if command == "caption":
        from lpm.caption.cli import main as caption_main

        return caption_main(rest)
    print(f"lpm: error: unknown command {command!r}: expected train, evaluate, predict, ppt or caption "
          f"(see lpm --help)",
          file=sys.stderr)
    return 2


def _run(command, argv, prog):
    from lpm.checkpoint import CheckpointError
    from lpm.data import DataError
    from lpm.outputs import silence_stdout

    try:
        status = command(argv, prog)
        sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's flush at exit
        return status
    except (CheckpointError, DataError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:     # stdout's reader went away (| head): stop without a word
        silence_stdout()
        return 1
    except KeyboardInterrupt:   # Ctrl-C: nothing is written by these commands, nothing to keep
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _parser(prog, description):
    from lpm.options import checkpoint_parser

    p = checkpoint_parser(prog, description, "use the run's best checkpoint by held-out accuracy")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default: %(default)s)")
    return p


def _parse(p, argv, **minimums):
    """Parse ``argv`` and check it as ``train.py`` checks its options (``lpm.options``): the
    environment, then each ``name=low`` minimum. Exit 2 with one line on the first problem."""
    from lpm.options import at_least, blank, check_environment, problems

    args = p.parse_args(argv)
    check_environment(p)
    bad = problems(blank("--checkpoint", args.checkpoint), blank("--data", getattr(args, "data", None)),
                   *(at_least(f"--{name.replace('_', '-')}", getattr(args, name), low)
                     for name, low in minimums.items()))
    if bad:
        p.error(bad[0])
    return args


# ---- lpm evaluate -----------------------------------------------------------------------------
def evaluate_command(argv, prog="lpm evaluate"):
    from lpm.data import DATASETS, DataError, load_data, match_classes
    from lpm.inference import confusion_report, load_model, predict_labels

    p = _parser(prog, "Accuracy and confusion matrix of a trained model. By default on the held-out part of "
                      "the data it was trained on (rebuilt from the checkpoint's options).")
    p.add_argument("--dataset", choices=DATASETS, help="evaluate on this generated data set's held-out part")
    p.add_argument("--data", metavar="PATH", help="evaluate on these sequences (same layouts as training); "
                                                   "their held-out part unless --all")
    p.add_argument("--all", action="store_true", help="with --data: every sequence in PATH (a separate test set)")
    p.add_argument("--samples", type=int, help="with a generated data set: how many sequences to generate")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable sequences in --data (counted)")
    args = _evaluate_args(p, argv)
    model, ckpt = load_model(args.checkpoint, "best" if args.best else "latest")
    names, offset = _checkpoint_classes(ckpt)
    if args.dataset and (unknown := _unknown_classes(args.dataset, names)):
        p.refuse(f"--dataset {args.dataset}: {unknown}")
    cfg = dict(ckpt.meta.get("train_config") or {})
    if args.samples is not None and not args.dataset and cfg.get("data"):
        p.error(f"--samples applies to generated data: this run trained on --data {cfg['data']} (give --dataset "
                "to evaluate on a generated data set)")
    if args.data:        # its own held-out part, not the training run's --eval-data
        cfg.update(data=args.data, eval_data=None, dataset="blobs", skip_bad=args.skip_bad)
    elif args.dataset:
        cfg.update(data=None, eval_data=None, dataset=args.dataset)
    if args.samples is not None:
        cfg["samples"] = args.samples
    cfg.update(img_size=model.config.img_size)
    _check_memory(p, cfg, args, model)
    if args.all:
        from lpm.data import files

        images = files.open_dataset(args.data, cfg.get("seq_len", 8), model.config.img_size, skip_bad=args.skip_bad)
        labels, data_names, what = images.labels, images.class_names, f"all {len(images)} sequences in {args.data}"
        current = 0.0
    else:
        data = load_data(cfg)
        images, labels, data_names = data.eval_images, data.eval_labels, data.class_names
        what = f"{len(labels)} held-out sequences ({data.description})"
        current = data.pixel_offset
    labels = match_classes(labels, data_names, names)
    images = _with_offset(images, current, offset)
    preds, p_true = predict_labels(model, images, labels, args.batch_size)
    if len(labels) == 0:
        raise DataError("no sequences to evaluate")
    loss = float(-np.log(np.maximum(p_true, 1e-300)).mean())
    correct = int((preds == labels).sum())
    progress = ckpt.meta.get("progress") or {}
    print(f"Checkpoint: {ckpt.path} (epoch {progress.get('epoch')}, step {progress.get('step')})")
    print(f"Data: {what}")
    print(f"Accuracy: {100 * correct / len(labels):.2f}% ({correct}/{len(labels)}), cross-entropy {loss:.4f}")
    print(confusion_report(labels, preds, names))
    return 0


def _evaluate_args(p, argv):
    """``lpm evaluate``'s options, parsed and checked (exit 2) before the checkpoint is read."""
    from lpm.data.files import layout_problem

    args = _parse(p, argv, batch_size=1, samples=2)
    if args.dataset and args.data:
        p.error(f"--data and --dataset are alternatives: got --data {args.data} and --dataset {args.dataset}")
    if args.all and not args.data:
        p.error("--all applies to --data only")
    if args.skip_bad and not args.data:
        p.error("--skip-bad applies to --data only")
    if args.samples is not None and args.data:
        p.error(f"--samples applies to generated data (--dataset), not to --data {args.data}")
    if args.data and (why := layout_problem(args.data, "--data")):    # as train.py refuses it
        p.refuse(why)
    return args


def _unknown_classes(dataset, names):
    """Why a generated ``dataset``'s classes are not the model's (``names``), or None: told before
    any sequence is generated."""
    from lpm.data import DIRECTIONS, DataError, digits, match_classes

    try:
        match_classes(np.zeros(0, np.int64), DIRECTIONS if dataset == "blobs" else digits.CLASS_NAMES, names)
    except DataError as exc:
        return str(exc)
    return None


def _check_memory(p, cfg, args, model):
    """Refuse (exit 2) data that cannot fit in what memory the loaded model leaves."""
    from lpm import memory

    seq_len = cfg.get("seq_len", 8)
    batch = min(args.batch_size, cfg.get("samples", 600))
    too_large = memory.too_large({"data": memory.data_bytes(cfg),     # --all reads the same files
                                  "a batch": memory.batch_bytes(asdict(model.config), batch, seq_len, training=False)},
                                 "this evaluation", "use fewer --samples or a smaller --batch-size")
    if too_large:
        p.refuse(too_large)


def _checkpoint_classes(ckpt):
    from lpm.inference import checkpoint_data

    names, offset, _, _ = checkpoint_data(ckpt)
    return names, offset


class _Shifted:
    """Sequences with the pixel offset the model was trained with, whatever offset they carry now."""

    def __init__(self, images, shift):
        self.images, self.shift = images, np.float32(shift)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index] - self.shift


def _with_offset(images, current, wanted):
    """``images`` centred by ``wanted`` (the checkpoint's offset) instead of ``current``."""
    if hasattr(images, "offset"):             # a lazy data set applies its offset when read
        images.offset = wanted
        return images
    return _Shifted(images, wanted - current) if wanted != current else images


# ---- lpm predict ------------------------------------------------------------------------------
def predict_command(argv, prog="lpm predict"):
    from lpm.inference import checkpoint_data, load_model, probability_batches, read_inputs, top_classes
    from lpm.options import blank, problems

    p = _parser(prog, "Class probabilities for each sequence: a folder of frames, an .npy (frames, H, W) or an "
                      ".npz of sequences, read as in training (grayscale, resized, padded or cut).")
    p.add_argument("files", nargs="+", metavar="FILES", help="sequences: frame folders, .npy or .npz files")
    p.add_argument("--top", type=int, default=3, help="classes to print per sequence, most likely first "
                                                      "(0: all; default: %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per sequence with every probability")
    args = _parse(p, argv, batch_size=1, top=0)
    missing = problems(*(blank("FILES", f) for f in args.files)) or \
        [f"{f}: no such file or folder" for f in args.files if not os.path.exists(f)]
    if missing:                  # before the checkpoint is read
        p.refuse(missing[0])
    model, ckpt = load_model(args.checkpoint, "best" if args.best else "latest")
    names, offset, seq_len, img_size = checkpoint_data(ckpt)
    inputs = read_inputs(args.files, seq_len, img_size)
    images = np.stack([frames for _, frames in inputs]) - np.float32(offset)
    k = len(names) if args.top == 0 else min(args.top, len(names))
    # a batch of probabilities at a time (not all N x classes), only the top classes sorted
    rows = (p_row for probs in probability_batches(model, images, args.batch_size) for p_row in probs)
    for (name, _), p_row in zip(inputs, rows):
        order = top_classes(p_row, 1 if args.json else k)
        if args.json:
            print(json.dumps({"input": name, "prediction": names[order[0]],
                              "probabilities": {n: round(float(v), 6) for n, v in zip(names, p_row)}}))
        else:
            print(f"{name}: " + ", ".join(f"{names[c]} {100 * p_row[c]:.1f}%" for c in order))
    return 0


if __name__ == "__main__":
    sys.exit(main())
