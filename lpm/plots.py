"""Pictures of a training run (``--plot DIR``): learning curves, and what attention looks at.

- ``curves.png``: training and held-out loss, training and held-out accuracy, per epoch;
- ``attention.png``: for a few held-out sequences, the frames (true and predicted class above
  them) and the attention weights between frames of each transformer block (mean over heads):
  row i is how much frame i attends to each frame j.

matplotlib is optional (the ``plot`` extra). Figures are drawn on matplotlib's ``Figure``
directly, without pyplot, so nothing depends on (or changes) a global backend.
"""

import os

import numpy as np

import gt
from lpm.outputs import PNG_SOFTWARE, write_atomically


def new_figure(**kw):
    """A matplotlib ``Figure`` (no pyplot); RuntimeError with the install line where matplotlib is absent."""
    try:
        from matplotlib.figure import Figure     # optional: the plot extra
    except ImportError:
        raise RuntimeError("pictures need matplotlib: pip install 'lpm[plot]' or pip install matplotlib") from None
    return Figure(**kw)



def save_png(fig, path, dpi=110):
    """Write ``fig`` to ``path`` atomically (a temporary file renamed into place), marked as lpm's
    (``lpm.outputs.written_by_lpm``)."""
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, metadata={"Software": PNG_SOFTWARE}), ".png")


def save_plots(out_dir, history, model, data, samples=3):
    """Write ``curves.png`` and ``attention.png`` into ``out_dir``; return their paths.

    ``history`` has per-epoch ``losses``, ``eval_losses``, ``train_accs``, ``eval_accs`` (a
    ``RunState`` or a dict); ``data`` is an ``lpm.data.Data`` (its held-out sequences are shown).
    """
    os.makedirs(out_dir, exist_ok=True)
    curves = plot_curves(history, os.path.join(out_dir, "curves.png"))
    n = min(samples, len(data.eval_labels))
    images = np.asarray(data.eval_images[np.arange(n)])
    attention = plot_attention(model, images, data.eval_labels[:n], data.class_names,
                               os.path.join(out_dir, "attention.png"), pixel_offset=data.pixel_offset)
    return [curves, attention]


def _get(history, name):
    return list(history[name] if isinstance(history, dict) else getattr(history, name))


def plot_curves(history, path):
    """Loss (left) and accuracy in % (right) per epoch, training and held-out; saved as PNG at ``path``."""
    fig = new_figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = np.arange(1, len(_get(history, "losses")) + 1)
    loss_ax.plot(epochs, _get(history, "losses"), "o-", label="training")
    loss_ax.plot(epochs, _get(history, "eval_losses"), "s-", label="held-out")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    acc_ax.plot(epochs, 100 * np.asarray(_get(history, "train_accs")), "o-", label="training")
    acc_ax.plot(epochs, 100 * np.asarray(_get(history, "eval_accs")), "s-", label="held-out")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy", ylim=(0, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    save_png(fig, path, dpi=100)
    return path


def attention_weights(model, images):
    """``(logits (B, C), [weights (B, num_heads, S, S) per block])`` of ``model`` on ``images`` (B, S, H, W).

    Runs the model once in eval mode, without a tape, asking each block's attention for its
    weights (``need_weights=True``) through a temporary per-instance ``forward``.
    """
    captured, was_training = [], model.training
    for block in model.blocks:
        attn = block.attn

        def forward(x, *args, need_weights=False, _forward=attn.forward, **kwargs):
            out, weights = _forward(x, *args, need_weights=True, **kwargs)
            captured.append(weights.numpy())
            return out

        attn.forward = forward
    model.eval()
    try:
        with gt.no_grad():
            logits = model(images).numpy()
    finally:
        for block in model.blocks:
            del block.attn.forward              # back to the class's forward
        model.train(was_training)
    return logits, captured


def plot_attention(model, images, labels, class_names, path, pixel_offset=0.0):
    """Frames and between-frame attention of each block (mean over heads) for each sequence; PNG at ``path``.

    ``images`` (B, S, H, W) as the model sees them (``pixel_offset`` already subtracted; it is
    added back for display), ``labels`` (B,) their true classes.
    """
    logits, weights = attention_weights(model, images)
    B, S = images.shape[:2]
    L = len(weights)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    cols = S + L
    fig = new_figure(figsize=(1.3 * S + 2.2 * L, 1.6 * B + 0.4), layout="constrained")
    grid = fig.add_gridspec(B, cols, width_ratios=[1] * S + [1.8] * L)
    for b in range(B):
        pred = int(probs[b].argmax())
        for t in range(S):
            ax = fig.add_subplot(grid[b, t])
            ax.imshow(images[b, t] + pixel_offset, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"frame {t}", fontsize=7)
            if t == 0:
                ax.set_ylabel(f"true {class_names[int(labels[b])]}\npred {class_names[pred]} "
                              f"({probs[b, pred]:.0%})", fontsize=8)
        for layer, w in enumerate(weights):
            ax = fig.add_subplot(grid[b, S + layer])
            # With a class token (pool="cls") the maps have S + 1 rows, the token's first: drawn at
            # -1, so that frame t stays at t.
            first = S - w.shape[-1]
            im = ax.imshow(w[b].mean(axis=0), cmap="viridis", vmin=0,
                           extent=(first - 0.5, S - 0.5, S - 0.5, first - 0.5))
            ax.set_title(f"block {layer} attention" + (" (-1: class token)" if first else ""), fontsize=7)
            ax.set_xlabel("key frame", fontsize=7)
            ax.set_ylabel("query frame", fontsize=7)
            ax.tick_params(labelsize=6)
            fig.colorbar(im, ax=ax, shrink=0.8)
    if L == 0:
        fig.suptitle("(the model has no transformer block: no attention to show)", fontsize=8)
    save_png(fig, path, dpi=100)
    return path
