"""Pictures of the Pixel Prediction Transformer: grids of digits, completions, learning curves.

``--plot DIR`` of ``lpm ppt train`` writes ``curves.png`` (training and held-out bits/token per
epoch) and ``samples_epochN.png`` (class-conditional samples, one row per digit) after every
epoch. matplotlib is optional (the ``plot`` extra); figures are drawn on matplotlib's
``Figure`` directly, without pyplot, so no global backend is touched.
"""

import os

import numpy as np

from lpm.plots import new_figure, save_png


def tile(images, cols):
    """Images (N, H, W) -> one (rows*(H+1)+1, cols*(W+1)+1) array with a grey 1-pixel gap."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1), 0.35, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img
    return out


def save_grid(images, path, cols, title=None, row_labels=None):
    """A grid of digits (N, H, W) in [0, 1], ``cols`` per row, as a PNG at ``path``."""
    grid = tile(images, cols)
    rows = -(-len(images) // cols)
    fig = new_figure(figsize=(max(3.0, 0.45 * cols + 0.6), 0.45 * rows + (0.5 if title else 0.2)),
                     layout="constrained")
    ax = fig.subplots()
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    h = np.asarray(images).shape[1] + 1
    if row_labels is not None:
        ax.set_yticks([1 + r * h + h / 2 for r in range(len(row_labels))], [str(x) for x in row_labels])
        ax.tick_params(length=0)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    save_png(fig, path)
    return path


def save_completions(originals, completed, rows_given, path, title=None):
    """For each digit: the original, its top ``rows_given`` pixel rows alone, and completions
    (completed: (N, k, H, W)), one row per digit, as a PNG at ``path``."""
    originals, completed = np.asarray(originals), np.asarray(completed)
    n, k = completed.shape[:2]
    half = originals.copy()
    half[:, rows_given:] = 0.0
    rows = np.concatenate([originals[:, None], half[:, None], completed], axis=1)    # (N, 2 + k, H, W)
    return save_grid(rows.reshape(-1, *originals.shape[1:]), path, 2 + k, title=title)


def save_curves(state, path):
    """Training and held-out bits/token per epoch (a ``lpm.ppt.store.RunState``), as a PNG."""
    fig = new_figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(state.losses) + 1)
    ax.plot(epochs, state.losses, "o-", label="training")
    ax.plot(epochs, state.eval_bits, "s-", label="held-out")
    ax.set(xlabel="epoch", ylabel="bits/token", title="Next-token cross-entropy")
    ax.grid(alpha=0.3)
    ax.legend()
    save_png(fig, path)
    return path


def epoch_figures(folder, state, model, epoch, seed=0, per_digit=8):
    """``curves.png`` and ``samples_epoch<epoch>.png`` (``per_digit`` samples of each class) in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    C = model.config.num_classes
    images = model.generate(C * per_digit, digit=np.repeat(np.arange(C), per_digit), seed=seed)
    return [save_curves(state, os.path.join(folder, "curves.png")),
            save_grid(images, os.path.join(folder, f"samples_epoch{epoch}.png"), per_digit,
                      title=f"epoch {epoch}: samples, one row per digit", row_labels=range(C))]
