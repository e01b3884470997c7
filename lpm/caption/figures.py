"""Pictures of a Pixel LLM run (``--plot DIR``): learning curves, and where each word looked.

- ``curves.png``: training and held-out loss (nats per token) and held-out exact match of greedy
  captions, at each validation;
- ``examples.png``: held-out images, each with its greedy caption, and for each word of it the
  last cross-attention layer's weights (mean over heads) over the image's patches, drawn over
  the image: where the decoder looked when it wrote that word. For frame sequences (the LPM
  encoder) the weights are over the frames instead.

matplotlib is optional (the ``plot`` extra). Figures are drawn on matplotlib's ``Figure``
directly, without pyplot, so no global backend is touched.
"""

import os

import numpy as np

import gt
from lpm.caption.dataset import require_float_images
from lpm.caption.decoding import GenerationConfig, generate_caption
from lpm.plots import new_figure, save_png


def save_curves(state, path):
    """Loss and held-out exact match at each validation of a ``CaptionRunState``, as a PNG."""
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, exact_ax = fig.subplots(1, 2)
    steps = np.asarray(state.val_steps)
    loss_ax.plot(steps, state.train_losses, "o-", label="training (mean since the last validation)")
    loss_ax.plot(steps, state.val_losses, "s-", label="held-out")
    loss_ax.set(xlabel="step", ylabel="nats per token", title="Caption token cross-entropy")
    exact_ax.plot(steps, 100 * np.asarray(state.val_exact), "s-", color="C2", label="held-out, greedy")
    exact_ax.set(xlabel="step", ylabel="exact match (%)", title="Whole captions right", ylim=(0, 100))
    for ax in (loss_ax, exact_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_png(fig, path)
    return path


def attention_over_image(model, images, vocab):
    """Greedy captions of ``images`` and each word's cross-attention map: ``[(words, maps)]`` with
    ``maps`` (len(words), P) numpy, row i the weights of the position that wrote word i."""
    images = _float_images(images, "attention_over_image")
    was_training = model.training
    model.eval()
    ids = generate_caption(model, gt.tensor(images), GenerationConfig(max_length=model.config.max_seq_len))
    out = []
    for image, row in zip(images, ids):
        inputs = np.array([[model.config.bos_id, *row]], dtype=np.int64)
        maps = model.cross_attention_maps(image[None], inputs)[0]           # (len(row) + 1, P)
        out.append(([vocab.decode([t]) for t in row], maps[:len(row)]))
    model.train(was_training)
    return out


def _float_images(images, where):
    """``images`` as float32; TypeError for integer pixels, which a cast would read as 0-255 values."""
    images = np.asarray(images)
    require_float_images(images, where)
    return images.astype(np.float32, copy=False)


def _patch_grid(config):
    (H, W), (ph, pw) = _pair(config.image_size), _pair(config.patch_size)
    return H // ph, W // pw


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def save_examples(model, vocab, images, path, references=None):
    """``examples.png``: for each image, the image and its caption, then one panel per word with
    that word's cross-attention over the image (or over the frames, for frame sequences)."""
    images = _float_images(images, "save_examples")
    found = attention_over_image(model, images, vocab)
    cols = 1 + max(1, max(len(words) for words, _ in found))
    vit = model.config.encoder == "vit"
    aspect = images.shape[-1] / images.shape[-2] if vit else 1.0
    fig = new_figure(figsize=(max(6.0, min(2.0 * aspect, 4) * cols * 0.8 + 0.5), 1.25 * len(images) + 0.4),
                     layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(images), cols, squeeze=False))
    for r, (image, (words, maps)) in enumerate(zip(images, found)):
        shown = image if vit else image[len(image) // 2]                  # a middle frame of a sequence
        axes[r, 0].imshow(shown, cmap="gray", vmin=0, vmax=1)
        title = " ".join(words) or "(empty)"
        if references is not None:
            title += "" if title == references[r] else f"\n(true: {references[r]})"
        axes[r, 0].set_title(title, fontsize=8)
        for c in range(1, cols):
            ax = axes[r, c]
            if c - 1 < len(words):
                _word_panel(ax, shown, maps[c - 1], model.config, vit)
                ax.set_title(words[c - 1], fontsize=8)
            else:
                ax.axis("off")
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Held-out images, greedy captions, and where each word looked (last cross-attention layer)",
                 fontsize=9)
    save_png(fig, path)
    return path


def _word_panel(ax, image, weights, config, vit):
    if vit:
        gh, gw = _patch_grid(config)
        grid = weights.reshape(gh, gw)
        heat = np.kron(grid, np.ones((image.shape[0] // gh, image.shape[1] // gw)))    # patch -> its pixels
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=max(float(heat.max()), 1e-6))
    else:
        ax.imshow(weights[None, :], cmap="inferno", vmin=0, aspect="auto")
        ax.set_xlabel("frame", fontsize=7)


def run_figures(folder, state, model, vocab, held_out, count=6):
    """``curves.png`` and ``examples.png`` (the first ``count`` held-out images) in ``folder``."""
    os.makedirs(folder, exist_ok=True)
    n = min(count, len(held_out))
    images, captions = held_out.batch(np.arange(n))
    refs = [vocab.decode(vocab.encode(c)) for c in captions]
    return [save_curves(state, os.path.join(folder, "curves.png")),
            save_examples(model, vocab, images, os.path.join(folder, "examples.png"), refs)]
