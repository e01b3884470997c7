"""Using a trained model: load it from a checkpoint, read sequences as training did, predict, score.

    >>> model, ckpt = load_model("runs/digits")                    # the latest checkpoint
    >>> probs = predict_proba(model, preprocess(frames, ckpt))     # (N, num_classes)
    >>> confusion_matrix(labels, probs.argmax(1), model.config.num_classes)
"""

import os
from dataclasses import asdict

import numpy as np

import gt
from lpm import memory
from lpm.checkpoint import POINTERS, CheckpointError, load_into
from lpm.model import PixelTransformer, PixelTransformerConfig
from lpm.resume import read_kind_checkpoint

MATRIX_CLASSES = 100      # lpm evaluate prints the whole confusion matrix up to this many classes

# what a user who gave another model's checkpoint to lpm evaluate/predict wants instead
ADVICE = ("use lpm ppt evaluate/generate for a Pixel Prediction Transformer, lpm caption evaluate/predict for "
          "a Pixel LLM, or give the --checkpoint of an lpm train run")


def load_model(path, which="latest"):
    """``(model in eval mode, Checkpoint)`` from a checkpoint folder or a run's folder (its
    ``which`` checkpoint: "latest" or "best"). ``CheckpointError`` if it cannot be used."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_model: path must be a checkpoint or run folder (str), got {type(path).__name__}")
    if which not in POINTERS:
        raise ValueError(f"load_model: which must be one of {POINTERS}, got {which!r}")
    ckpt = read_kind_checkpoint(path, "lpm", ADVICE, which)
    try:
        config = PixelTransformerConfig(**ckpt.meta["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt.path}: unusable model_config ({exc})") from None
    too_large = memory.too_large({"parameters": memory.model_bytes(asdict(config))},
                                 f"checkpoint {ckpt.path}: its model ({memory.parameter_count(**asdict(config)):,} "
                                 f"parameters, img_size {config.img_size}, embed_dim {config.embed_dim})",
                                 "is model_config in checkpoint.json the one the weights were trained with?")
    if too_large:
        raise CheckpointError(too_large)
    model = PixelTransformer.from_config(config)
    load_into(ckpt, model)
    model.eval()
    return model, ckpt


def checkpoint_data(ckpt):
    """What the checkpoint says about its data: ``(class_names, pixel_offset, seq_len, img_size)``."""
    data, train = ckpt.meta.get("data") or {}, ckpt.meta.get("train_config") or {}
    names = data.get("class_names") or [str(c) for c in range(ckpt.meta["model_config"]["num_classes"])]
    return (tuple(names), float(data.get("pixel_offset", 0.0)), int(train.get("seq_len", 8)),
            int(ckpt.meta["model_config"]["img_size"]))


def predict_proba(model, images, batch_size=32):
    """Class probabilities (N, C) float64 for ``images`` (N, S, H, W): an array or a lazy data set."""
    out = list(probability_batches(model, images, batch_size))
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes))


def predict_labels(model, images, labels, batch_size=32):
    """``(predicted class (N,), probability of the true class ``labels`` (N,))``, as from
    ``predict_proba``, holding one batch's probabilities at a time, never all (N, C) of them
    (N x C float64 is gigabytes with tens of thousands of classes)."""
    labels, predicted, p_true = _class_indices("labels", labels, len(images), model.config.num_classes), [], []
    for start, p in zip(range(0, len(images), batch_size), probability_batches(model, images, batch_size)):
        predicted.append(p.argmax(axis=1))
        p_true.append(p[np.arange(len(p)), labels[start:start + len(p)]])
    if not predicted:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(predicted), np.concatenate(p_true)


def probability_batches(model, images, batch_size=32):
    """``predict_proba``'s rows, one (batch, C) array at a time."""
    _check_classifier(model, batch_size)
    if isinstance(images, (list, tuple)):      # sequences one by one: indexed below as one array
        images = np.asarray(images)
    with gt.no_grad():
        for start in range(0, len(images), batch_size):
            batch = np.ascontiguousarray(images[np.arange(start, min(start + batch_size, len(images)))])
            x = gt.from_numpy(batch)
            if x.dtype.is_floating_point and x.dtype != model.embed.weight.dtype:
                x = x.to(model.embed.weight.dtype)    # float64 arrays (numpy's default) as the model's dtype
            logits = model(x).numpy().astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)          # stable softmax
            p = np.exp(logits)
            yield p / p.sum(axis=1, keepdims=True)


def _check_classifier(model, batch_size):
    """TypeError / ValueError unless ``model`` gives class scores (B, C) (a ``PixelTransformer``
    with its head, pooled) and ``batch_size`` is an int >= 1: a probability of something else
    would be a silent wrong answer."""
    if not isinstance(model, PixelTransformer):
        raise TypeError("expected a PixelTransformer classifier (lpm.inference.load_model), got "
                        f"{type(model).__name__}")
    cfg = model.config
    if cfg.head != "linear" or cfg.pool == "none":
        raise ValueError(f"the model gives features, not class scores (head={cfg.head!r}, pool={cfg.pool!r}): "
                         "class probabilities need head='linear' and pool 'mean' or 'cls'")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")


def _class_indices(name, values, n, num_classes):
    """``values`` as int64 (n,) class indices in [0, num_classes); ValueError naming ``name`` if not."""
    array = np.asarray(values)
    if array.shape != (n,) or (n and array.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be {n} integer class indices, got {array.dtype} of shape {array.shape}")
    if n and not 0 <= array.min() <= array.max() < num_classes:
        raise ValueError(f"{name} must lie in [0, {num_classes}) ({num_classes} classes), got "
                         f"{array.min()}..{array.max()}")
    return array.astype(np.int64)


def confusion_matrix(labels, predictions, num_classes):
    """(C, C) counts: row = true class, column = predicted class."""
    labels = _class_indices("labels", labels, np.size(labels), num_classes)
    predictions = _class_indices("predictions", predictions, len(labels), num_classes)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (labels, predictions), 1)
    return cm


def confusion_report(labels, predictions, class_names, top=20):
    """What lpm evaluate prints of its confusions: the whole matrix up to ``MATRIX_CLASSES``
    classes; beyond (a 20,000-class matrix is 3 GB and unreadable), counted from the pairs that
    occur: how many classes the data has and how many were always right, and the ``top`` most
    frequent confusions (most first; ties by true, then predicted class)."""
    k = len(class_names)
    if k <= MATRIX_CLASSES:
        return ("Confusion matrix (rows: true class, columns: predicted class):\n"
                + format_confusion(confusion_matrix(labels, predictions, k), class_names))
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    wrong = labels != predictions
    present = np.bincount(labels, minlength=k) > 0
    erring = np.bincount(labels[wrong], minlength=k) > 0
    lines = [f"Confusion matrix: not printed for {k:,} classes (more than {MATRIX_CLASSES}). {int(present.sum()):,} "
             f"classes are in this data, {int((present & ~erring).sum()):,} of them with every sequence right."]
    if not wrong.any():
        return "\n".join(lines + ["No confusions: every sequence was classified right."])
    pairs, counts = np.unique(np.stack([labels[wrong], predictions[wrong]]), axis=1, return_counts=True)
    order = np.lexsort((pairs[1], pairs[0], -counts))[:top]
    lines.append(f"The most frequent confusions ({min(top, len(counts))} of {len(counts):,}; true -> predicted: "
                 "sequences):")
    names = [str(n) for n in class_names]
    lines += [f"  {names[pairs[0, i]]} -> {names[pairs[1, i]]}: {counts[i]}" for i in order]
    return "\n".join(lines)


def format_confusion(cm, class_names):
    """The confusion matrix as aligned text, with the class names on both axes."""
    names = [str(n) for n in class_names]
    width = max(max(len(n) for n in names), len(str(int(cm.max()) if cm.size else 0)), 3)
    lines = [" " * (width + 2) + " ".join(n[:width].rjust(width) for n in names) + "   <- predicted"]
    for name, row in zip(names, cm):
        lines.append(name[:width].rjust(width) + "  " + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def top_classes(p_row, k):
    """The ``k`` most likely classes of the probabilities ``p_row`` (C,), most likely first, ties in
    class order: ``np.argsort(-p_row, kind="stable")[:k]`` without sorting all C of them."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"top_classes: k must be an int >= 0, got {k!r}")
    p_row = np.asarray(p_row)
    if p_row.ndim != 1:     # partitioning a (N, C) array would mix the rows into one answer
        raise ValueError(f"top_classes takes one row of probabilities (C,), got shape {p_row.shape}")
    if k == 0:
        return np.zeros(0, np.int64)
    if k >= len(p_row) or np.isnan(p_row).any():       # NaN: argsort's order (last), k of them
        return np.argsort(-p_row, kind="stable")[:k]
    kth = np.partition(p_row, len(p_row) - k)[len(p_row) - k]       # the k-th largest
    candidates = np.flatnonzero(p_row >= kth)                         # ties with it included
    return candidates[np.argsort(-p_row[candidates], kind="stable")[:k]]


def read_inputs(paths, seq_len, img_size):
    """``[(name, frames (seq_len, img_size, img_size) float32 in [0, 1])]`` for each input: a folder
    of frames, an .npy sequence, or an .npz (each of its sequences, named ``file.npz[i]``)."""
    from lpm.data import files

    if isinstance(paths, (str, os.PathLike)):      # its characters would each be read as a path
        raise TypeError(f"read_inputs: paths must be a list of paths, got one {type(paths).__name__}: {paths!r}")
    out = []
    for path in paths:
        if os.path.isfile(path) and files.has_extension(path, ".npz"):
            dataset = files.NpzSequences(path, seq_len, img_size, labelled=False)
            out += [(f"{path}[{i}]", dataset._read(i)) for i in range(len(dataset))]
        elif os.path.isdir(path) or files.has_extension(path, ".npy"):
            if not os.path.exists(path):
                raise files.DataError(f"{path}: no such file or folder")
            out.append((path, files.read_sequence(path, seq_len, img_size)))
        else:
            raise files.DataError(f"{path}: expected a folder of frames, an .npy sequence or an .npz file")
    return out
