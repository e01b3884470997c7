"""Sample quality, measured rather than eyeballed: an independent judge of digits and the metrics it drives.

The judge is a classifier of real digits that knows nothing of the generative model: scikit-learn's
``SVC`` (RBF kernel) on the 784 raw pixels of the real training digits (95.5% on the 1,000
held-out MNIST digits of ``lpm.data.mnist``). ``sample_quality`` then scores generated digits
against real ones:

- conditional accuracy: the fraction of class-conditional samples the judge reads as the digit asked for;
- unconditional entropy: the entropy in bits of the classes the judge reads in unconditional
  samples (log2 10 = 3.32 when every digit is equally frequent, 0 when one digit is all it draws);
- diversity ratio: per class, the mean pairwise L2 distance among the samples of that class over
  the same among the real held-out digits of that class, averaged over the classes sampled
  (1 = as varied as real digits, 0 = one image repeated);
- memorisation ratio: the median L2 distance of a sample to its nearest training image over the
  same median for real held-out digits (1 = as far from the training set as unseen real digits,
  0 = copies of training images).

    >>> judge = DigitJudge.fit(*mnist.load("train"))
    >>> quality = sample_quality(judge, cond, cond_labels, uncond, train_images, *mnist.load("test"))
    >>> print(format_sample_quality(quality))
"""

import numpy as np

from lpm.data.base import SKLEARN_SEED_MAX, require_seed
from lpm.data.mnist import SIDE, check_digit_images

NUM_CLASSES = 10
# The pass marks: conditional accuracy, unconditional entropy (bits), diversity and memorisation ratios.
THRESHOLDS = {"conditional_accuracy": 0.85, "unconditional_entropy_bits": 3.0, "diversity_ratio": 0.6,
              "memorisation_ratio": 0.8}
_SVC_C = 5.0      # held-out accuracy with C = 1, 5, 10 on the 4,000 training digits: 94.9%, 95.5%, 95.4%


class DigitJudge:
    """An RBF support-vector classifier of 28x28 digits in [0, 1], fitted on real training digits."""

    def __init__(self, classifier):
        self.classifier = classifier

    @classmethod
    def fit(cls, images, labels, seed=0):
        """Fit on ``images`` (N, 28, 28) and ``labels`` (N,) in 0..9. ``seed`` is kept for the record:
        an SVC without probability estimates is deterministic."""
        require_seed("DigitJudge.fit", seed, high=SKLEARN_SEED_MAX)
        images = _check_images(images, "DigitJudge.fit")
        labels = _check_labels(labels, len(images), "DigitJudge.fit")
        from sklearn.svm import SVC        # here, not at the top: importing sklearn costs seconds
        return cls(SVC(kernel="rbf", C=_SVC_C, gamma="scale", random_state=seed).fit(_flat(images), labels))

    def predict(self, images):
        """The digit (M,) int64 the judge reads in each of ``images`` (M, 28, 28)."""
        images = _check_images(images, "DigitJudge.predict")
        if len(images) == 0:
            return np.zeros(0, dtype=np.int64)
        return self.classifier.predict(_flat(images)).astype(np.int64)

    def accuracy(self, images, labels):
        """The fraction of ``images`` the judge reads as their ``labels``."""
        labels = _check_labels(labels, len(np.asarray(images)), "DigitJudge.accuracy")
        return float(np.mean(self.predict(images) == labels))


def sample_quality(judge, cond_samples, cond_labels, uncond_samples, train_images, heldout_images, heldout_labels):
    """The judge's figures of generated digits against real ones (see the module's docstring), a dict:
    ``judge_heldout_accuracy``, ``conditional_accuracy``, ``unconditional_entropy_bits``,
    ``diversity_ratio``, ``memorisation_ratio`` (NaN where there is nothing to measure: no samples
    of that kind, or no class with two samples). Memorisation is measured on every sample,
    conditional and unconditional together. All images (M, 28, 28) float in [0, 1]."""
    cond = _check_images(cond_samples, "sample_quality: cond_samples")
    cond_labels = _check_labels(cond_labels, len(cond), "sample_quality: cond_labels")
    uncond = _check_images(uncond_samples, "sample_quality: uncond_samples")
    train = _check_images(train_images, "sample_quality: train_images")
    heldout = _check_images(heldout_images, "sample_quality: heldout_images")
    heldout_labels = _check_labels(heldout_labels, len(heldout), "sample_quality: heldout_labels")
    if len(train) == 0 or len(heldout) == 0:
        raise ValueError("sample_quality: train_images and heldout_images must not be empty")
    samples = np.concatenate([cond, uncond])
    return {
        "judge_heldout_accuracy": judge.accuracy(heldout, heldout_labels),
        "conditional_accuracy": float(np.mean(judge.predict(cond) == cond_labels)) if len(cond) else float("nan"),
        "unconditional_entropy_bits": class_entropy_bits(judge.predict(uncond)),
        "diversity_ratio": diversity_ratio(cond, cond_labels, heldout, heldout_labels),
        "memorisation_ratio": memorisation_ratio(samples, train, heldout),
    }


def class_entropy_bits(classes):
    """The entropy in bits of the spread of ``classes`` (ints in 0..9) over the ten digits; NaN if empty."""
    counts = np.bincount(np.asarray(classes, dtype=np.int64), minlength=NUM_CLASSES)
    if counts.sum() == 0:
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, -np.sum(p * np.log2(p))))     # max: -0.0 when one class holds everything


def diversity_ratio(samples, labels, real, real_labels):
    """Per class with at least two samples (and two real digits): mean pairwise L2 distance among
    the samples over the same among the real digits; the mean over those classes (NaN if none)."""
    from scipy.spatial.distance import pdist      # here, not at the top: only the metrics need scipy
    ratios = []
    for c in range(NUM_CLASSES):       # ten classes: the per-pair work is inside pdist
        mine, theirs = _flat(samples[labels == c]), _flat(real[real_labels == c])
        if len(mine) >= 2 and len(theirs) >= 2:
            ratios.append(pdist(mine).mean() / pdist(theirs).mean())
    return float(np.mean(ratios)) if ratios else float("nan")


def memorisation_ratio(samples, train, heldout):
    """The median distance of ``samples`` to their nearest training image over the same median for
    the real ``heldout`` digits. NaN where it is undefined: no samples, or held-out digits that are
    all copies of training images (a median of 0) while the samples are too; infinite where only
    the held-out digits are."""
    if len(samples) == 0:
        return float("nan")
    mine, real = float(np.median(nearest_distance(samples, train))), float(np.median(nearest_distance(heldout, train)))
    if real == 0.0:
        return float("nan") if mine == 0.0 else float("inf")
    return mine / real


def nearest_distance(images, references):
    """(M,) float64: the L2 distance of each image to its nearest image of ``references``."""
    from sklearn.metrics import pairwise_distances_argmin     # chunked over rows: bounded memory
    a, b = _flat(images).astype(np.float64), _flat(references).astype(np.float64)
    # sklearn finds the nearest with |a|^2 - 2 a.b + |b|^2, whose rounding depends on the BLAS
    # (an exact copy came out 1e-8 away with OpenBLAS on AVX-512); the distance itself is
    # measured directly, so a copy is at 0 on every machine
    nearest = pairwise_distances_argmin(a, b)
    return np.linalg.norm(a - b[nearest], axis=1)


def format_sample_quality(d):
    """A few lines, one figure each, beside the issue's pass mark (from ``sample_quality``'s dict)."""
    def mark(key):
        value = d[key]
        return "n/a" if np.isnan(value) else ("pass" if value >= THRESHOLDS[key] else "FAIL")
    return "\n".join([
        f"judge accuracy on real held-out digits    {100 * d['judge_heldout_accuracy']:5.1f}%",
        f"conditional samples judged as asked       {100 * d['conditional_accuracy']:5.1f}%   "
        f"(>= 85%: {mark('conditional_accuracy')})",
        f"unconditional class entropy               {d['unconditional_entropy_bits']:5.2f} bits "
        f"(max {np.log2(NUM_CLASSES):.2f}; >= 3.0: {mark('unconditional_entropy_bits')})",
        f"within-class diversity / real digits'     {d['diversity_ratio']:5.2f}   "
        f"(>= 0.6: {mark('diversity_ratio')})",
        f"nearest-training distance / real held-out {d['memorisation_ratio']:5.2f}   "
        f"(>= 0.8: {mark('memorisation_ratio')})",
    ])


def _flat(images):
    return np.asarray(images, dtype=np.float32).reshape(len(images), SIDE * SIDE)


def _check_images(images, where):
    """``images`` as float32 (M, 28, 28) after checking shape, finiteness and range [0, 1]."""
    return check_digit_images(images, where, "M")


def _check_labels(labels, count, where):
    """``labels`` as int64 (count,) after checking they are digits 0..9, one per image."""
    labels = np.asarray(labels)
    if labels.shape != (count,) or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{where}: labels must be {count} integers (one per image), got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{where}: labels must be digits 0..9, got values from {labels.min()} to {labels.max()}")
    return labels.astype(np.int64, copy=False)
