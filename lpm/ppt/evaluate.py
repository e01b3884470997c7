"""How well a Pixel Prediction Transformer predicts held-out digits: bits per token, beside the
baselines of the same codebook (``lpm.ppt.baselines``), and the quality of its samples as an
independent judge sees them (``lpm.ppt.judge``).

Bits per token are the mean cross-entropy of the held-out tokens in base 2. The headline figure
is the model's with "no class" at the start: it then knows what the baselines know (the tokens
so far), nothing of the digit's label; the class-conditional figure is given beside it.
"""

import math

import numpy as np

import gt
from gt import nn
from lpm.ppt.baselines import baseline_bits
from lpm.ppt.judge import DigitJudge, format_sample_quality, sample_quality

LN2 = math.log(2.0)
BASELINES = ("uniform", "unigram", "position", "bigram")


def bits_per_token(model, tokens, classes, batch_size=250):
    """Mean held-out cross-entropy in bits per token of ``tokens`` (N, T) given ``classes`` (N,)
    (an int: the same class for all, e.g. ``model.config.num_classes`` for "no class")."""
    tokens = np.asarray(tokens, dtype=np.int64)
    classes = np.broadcast_to(np.asarray(classes, dtype=np.int64), (len(tokens),))
    was_training, total = model.training, 0.0
    model.eval()
    with gt.no_grad():
        for first in range(0, len(tokens), batch_size):
            t, c = tokens[first:first + batch_size], classes[first:first + batch_size]
            logits = model(gt.tensor(t), gt.tensor(np.ascontiguousarray(c)))
            total += nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gt.tensor(t.reshape(-1)),
                                                 reduction="sum").item()
    model.train(was_training)
    return total / tokens.size / LN2


def heldout_figures(model, data, batch_size=250):
    """``{"bits", "bits_conditional", "bits_per_image"}`` of ``model`` on ``data``'s held-out tokens
    (a ``lpm.ppt.data.TokenData``): "bits" with no class, "bits_conditional" with the true labels."""
    bits = bits_per_token(model, data.heldout_tokens, model.config.num_classes, batch_size)
    cond = bits_per_token(model, data.heldout_tokens, data.heldout_labels, batch_size)
    return {"bits": bits, "bits_conditional": cond, "bits_per_image": bits * data.heldout_tokens.shape[1]}


def report_lines(figures, data):
    """The evaluation's lines: held-out bits/token and per image, then the baselines of the same
    codebook and split, with the model's bits as a fraction of the bigram's."""
    base = baseline_bits(data.train_tokens, data.heldout_tokens, data.codebook.num_codes)
    n, T = data.heldout_tokens.shape
    return [f"held-out bits/token {figures['bits']:.3f} (bits/image {figures['bits_per_image']:.1f}; with the "
            f"digit's class given: {figures['bits_conditional']:.3f} bits/token), {n} digits x {T} tokens",
            "baselines (bits/token, same codebook and split): "
            + ", ".join(f"{name} {base[name]:.3f}" for name in BASELINES)
            + f"; model / bigram = {figures['bits'] / base['bigram']:.3f}"], base


def sample_figures(model, data, per_class=30, unconditional=300, guidance=None, temperature=1.0, top_k=None,
                   top_p=None, seed=0, log=print):
    """Draw ``per_class`` samples of each digit and ``unconditional`` samples without a class, judge
    them with a ``DigitJudge`` fitted on the training digits, and return ``(figures, text)``:
    ``lpm.ppt.judge.sample_quality``'s dict (plus the samples) and its formatted lines."""
    judge = DigitJudge.fit(data.train_images, data.train_labels, seed=seed)
    C = model.config.num_classes
    asked = np.repeat(np.arange(C), per_class)
    cond = model.generate(len(asked), digit=asked, guidance=guidance, temperature=temperature, top_k=top_k,
                          top_p=top_p, seed=seed)
    uncond = model.generate(unconditional, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed + 1)
    figures = sample_quality(judge, cond, asked, uncond, data.train_images, data.heldout_images,
                             data.heldout_labels)
    return dict(figures, cond_samples=cond, cond_labels=asked, uncond_samples=uncond), \
        format_sample_quality(figures)
