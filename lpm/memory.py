"""How much memory a run, or a model from a checkpoint, needs: estimated before anything is allocated.

A run whose sizes cannot fit (``--img-size 30000``: an embedding of 115 billion weights;
``--samples 100000000``: 128 TB of frames) is refused with the figure and the memory the machine has, instead
of failing with an allocation error minutes later. The estimate is rough but counts what
dominates, all float32 (4 bytes a value):

- the model: its parameters (the formula of ``parameter_count``, exact); when training, their
  gradients, the optimizer's state (Adam and AdamW: two running means; SGD with momentum: one
  buffer) and the weight-sized temporaries of the update (Adam: two; SGD with weight decay: one);
- the data that is kept in memory (``lpm.data.blobs.memory_bytes``: every generated blob frame;
  ``lpm.data.digits.memory_bytes``: the upscaled scans and the noise bank, the frames themselves are
  drawn per batch; ``lpm.data.files.memory_bytes``: the decoded frames of ``--data`` and of
  ``--eval-data`` when each set fits the 1 GiB cache, ``lpm.data.files.CACHE_BYTES``, a larger set
  being read from disk batch by batch, and a compressed .npz's images, read whole; counted from
  the class folders' listings and the .npz headers, no frame is read);
- one batch: its frames (twice: gathered from the data set, then as the model's input) and the
  activations the tape keeps for the backward (per block about 16 tensors of (S, D), 3 of (S, F)
  and 3 of (heads, S, S) per sequence; twice that while the backward runs), or the evaluation
  batch (at least 32 sequences, no tape) if that is larger;
- the classes of ``--data``, known only once it is read (10 are counted before): then
  ``classes_problem`` counts the model again with its head for them, and each batch's logits.

Not counted: Python, numpy and torch themselves (a few hundred MB), and GPU memory (the check
is of the host's memory). A run is refused only when the estimate exceeds the memory available
now (``available_bytes``); where the platform does not say, nothing is refused.
"""

import os

from lpm.data import blobs, digits, files

FLOAT_BYTES = 4
EVAL_BATCH = 32                # evaluation batches hold at least this many sequences (lpm.train)
OPTIMIZER_COPIES = {"sgd": 0, "adam": 4, "adamw": 4}   # weight-sized arrays besides parameter and gradient


def parameter_count(img_size, embed_dim, num_heads, num_layers, ff_dim, num_classes, max_seq_len=32,
                    pos_encoding="sinusoidal", pool="mean", **_):
    """The number of parameters of ``PixelTransformer(**config)``, without building it.

        >>> parameter_count(img_size=200, embed_dim=128, num_heads=4, num_layers=1, ff_dim=256, num_classes=4)
        5253380
    """
    P, D, F = img_size ** 2, embed_dim, ff_dim
    block = 4 * (D * D + D) + 2 * 2 * D + (F * D + F) + (D * F + D)   # attention, two norms, feed-forward
    cls = pool == "cls"                # a class token, and its row of the position table
    learned = (max_seq_len + cls) * D if pos_encoding == "learned" else 0
    return (P * D + D) + learned + cls * D + num_layers * block + 2 * D + (D * num_classes + num_classes)


def model_bytes(config, training=False, optimizer="sgd", momentum=0.0, weight_decay=0.0):
    """Bytes of the parameters, and when ``training`` of the gradients, optimizer state and
    update temporaries. ``config``: a dict of ``PixelTransformer``'s arguments."""
    copies = 1
    if training:
        copies += 1 + OPTIMIZER_COPIES.get(optimizer, 4)
        if optimizer == "sgd":
            copies += (momentum > 0) + (weight_decay > 0)
    return copies * parameter_count(**config) * FLOAT_BYTES


def batch_bytes(config, batch_size, seq_len, training=True, eval_batch=0):
    """Bytes one batch holds at once: its frames and the activations kept for the backward
    (``training``), or the larger of that and an evaluation batch of ``eval_batch`` sequences."""
    S, P, D, F, H = seq_len, config["img_size"] ** 2, config["embed_dim"], config["ff_dim"], config["num_heads"]
    activations = config["num_layers"] * (16 * S * D + 3 * S * F + 3 * H * S * S) + 8 * S * D
    per_sequence = 2 * S * P + (2 * activations if training else activations)
    evaluation = eval_batch * (2 * S * P + activations)       # no tape
    return max(batch_size * per_sequence, evaluation) * FLOAT_BYTES


def available_bytes():
    """The memory this process can have now, in bytes, or None where the platform does not say.

    Linux: ``MemAvailable`` of /proc/meminfo, lowered to what a cgroup (container) limit leaves;
    elsewhere the free physical pages (``os.sysconf``), where that exists."""
    found = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    limit = _cgroup_room()
    return min(found, limit) if limit is not None else found


def _cgroup_room():
    """What a cgroup v2 memory limit leaves (limit - usage), or None without a limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None


def human(n):
    """Bytes as a short figure in binary units: ``human(3 * 2**30) == '3.0 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def too_large(parts, what, hint, available=None):
    """A one-line refusal when the ``parts`` ({name: bytes}) add up to more than is available,
    else None. ``what`` names the job ("this run"), ``hint`` says what to change."""
    available = available_bytes() if available is None else available
    total = sum(parts.values())
    if available is None or total <= available:
        return None
    detail = ", ".join(f"{name} {human(b)}" for name, b in parts.items() if b)
    return f"{what} needs about {human(total)} of memory ({detail}) but {human(available)} is available: {hint}"


def _get(config, name, default=None):
    return config.get(name, default) if isinstance(config, dict) else getattr(config, name, default)


def data_bytes(config):
    """Bytes the data of a run keeps in memory (``config``: a ``TrainConfig`` or a dict of its fields)."""
    img_size, seq_len = _get(config, "img_size", 200), _get(config, "seq_len", 8)
    if _get(config, "data"):
        return sum(files.memory_bytes(path, seq_len, img_size) for path in (_get(config, "data"),
                                                                            _get(config, "eval_data")) if path)
    if str(_get(config, "dataset", "blobs")).startswith("digits"):
        return digits.memory_bytes(img_size)
    return blobs.memory_bytes(_get(config, "samples", 600), seq_len, img_size)


def model_config(config, num_classes=10):
    """``PixelTransformer``'s arguments for a run's ``TrainConfig`` (as ``lpm.train.train`` builds it)."""
    return dict(img_size=config.img_size, embed_dim=config.embed_dim, num_heads=config.num_heads,
                num_layers=config.num_layers, ff_dim=config.ff_dim, num_classes=num_classes,
                max_seq_len=max(32, config.seq_len), pos_encoding=config.pos_encoding,
                pool=config.pool)


def _assumed_classes(config):
    """The classes ``run_problem`` counts before the data is read: the generated sets' own, 10 for
    ``--data`` (not known yet: ``classes_problem`` checks the real number once it is)."""
    return len(blobs.DIRECTIONS) if not config.data and config.dataset == "blobs" else 10


def run_problem(config, available=None):
    """A one-line refusal if the training run ``config`` (a ``TrainConfig``) cannot fit in memory, else None."""
    model = model_config(config, num_classes=_assumed_classes(config))
    # A batch never holds more sequences than there are (files: not known yet); the held-out pass
    # after each epoch reads batches of at least EVAL_BATCH sequences (lpm.train.train).
    n = None if config.data else config.samples
    batch, eval_batch = (min(b, n) if n else b for b in (config.batch_size, max(config.batch_size, EVAL_BATCH)))
    parts = {"data": data_bytes(config),
             "model": model_bytes(model, True, config.optimizer, config.momentum, config.weight_decay),
             "a batch": batch_bytes(model, batch, config.seq_len, eval_batch=eval_batch)}
    digits_data = str(config.dataset).startswith("digits") and not config.data
    hints = {"data": ("use a smaller --img-size (the digit scans are kept upscaled to it)" if digits_data
                      else "use a smaller --img-size or --seq-len" if config.data
                      else "use fewer --samples, a smaller --img-size or --seq-len"),
             "model": "use a smaller --img-size (the embedding has img_size**2 x embed_dim weights) or --embed-dim",
             "a batch": "use a smaller --batch-size, --img-size or --seq-len"}
    return too_large(parts, "this run", hints[max(parts, key=parts.get)], available)


def classes_problem(config, num_classes, available=None):
    """A one-line refusal if the run ``config`` cannot fit in the memory left once its data is read
    and has ``num_classes`` classes (more than ``run_problem`` counted), else None: the model, its
    head ``num_classes x embed_dim`` weights, trained (gradients, optimizer state), and a batch
    with its logits (and their softmax, gradient and one-hot targets: four per class and sequence)."""
    if num_classes <= _assumed_classes(config):
        return None
    model = model_config(config, num_classes=num_classes)
    batch, eval_batch = config.batch_size, max(config.batch_size, EVAL_BATCH)
    logits = 4 * num_classes * eval_batch * FLOAT_BYTES
    parts = {"model": model_bytes(model, True, config.optimizer, config.momentum, config.weight_decay),
             "a batch": batch_bytes(model, batch, config.seq_len, eval_batch=eval_batch) + logits}
    return too_large(parts, f"this run of {num_classes:,} classes",
                     "use fewer classes, or a smaller --embed-dim (the head has num_classes x embed_dim weights) "
                     "or --batch-size", available)
