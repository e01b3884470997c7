"""Caption metrics, predictions against references: exact match, CER, WER, BLEU-4 and CIDEr-D.

Every function takes ``preds`` (one string per item) and ``refs`` (per item one string or a list of
reference strings). Texts are compared as their lowercase whitespace-separated words (the
vocabulary's view of a caption). Scales, as each metric is usually printed:

- ``exact_match``: the fraction of items whose prediction equals one of its references (0-1).
- ``cer``, ``wer``: character and word error rates over the whole corpus (edits / reference
  length; 0 is perfect, above 1 possible), by jiwer, against each item's first reference.
- ``bleu4``: sacrebleu's ``corpus_bleu`` with its defaults, on sacrebleu's 0-100 scale.
- ``cider_d``: CIDEr-D as the coco-caption code computes it (about 0-10; 10 x the mean cosine).

    >>> m = caption_metrics(["seven two", "one"], ["seven two", "one nine"])
    >>> m["exact_match"], m["wer"]
    (0.5, 0.25)
"""

import collections
import importlib
import importlib.util
import math

CIDER_SIGMA = 6.0        # the Gaussian length penalty's width, in words (coco-caption's CIDEr-D)
CIDER_N = 4              # n-grams of 1 to 4 words
METRICS = ("exact_match", "cer", "wer", "bleu4", "cider_d")
HEADERS = {"exact_match": "exact match", "cer": "CER", "wer": "WER", "bleu4": "BLEU-4", "cider_d": "CIDEr-D"}


def missing_packages():
    """Install hints for the metric libraries that cannot be imported (check before any work)."""
    return [f"caption metrics need {name}: pip install 'lpm[caption]' or pip install {name}"
            for name in ("sacrebleu", "jiwer") if importlib.util.find_spec(name) is None]


def _library(name):
    """sacrebleu or jiwer, imported when a metric needs it: both are optional (the ``caption`` extra)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise RuntimeError(f"caption metrics need {name}: pip install 'lpm[caption]' or pip install {name}") from None


def normalize(text):
    """``text`` as the metrics read it: lowercase words joined by single spaces."""
    return " ".join(str(text).lower().split())


def _pairs(preds, refs):
    """``(preds, refs)`` normalised, every ``refs[i]`` a non-empty list; ``ValueError`` on a mismatch.
    One caption may be a string (as jiwer takes it): ``refs`` is then its reference or list of them.
    ``TypeError`` for a string of references beside a list of captions (its characters would be
    read as references) and for an item that is not a string (``None`` would be scored as "none")."""
    if isinstance(preds, str):
        preds, refs = [preds], [refs]
    elif isinstance(refs, str):
        raise TypeError(f"caption metrics: refs is one string {refs!r} but preds is a list of captions; "
                        "give one reference (or a list of them) per caption")
    preds, refs = list(preds), list(refs)
    if len(preds) != len(refs):
        raise ValueError(f"caption metrics: {len(preds)} predictions but {len(refs)} references")
    if not preds:
        raise ValueError("caption metrics: no captions to score")
    lists = [[r] if isinstance(r, str) or not hasattr(r, "__iter__") else list(r) for r in refs]
    for i, (p, item) in enumerate(zip(preds, lists)):
        bad = [x for x in [p, *item] if not isinstance(x, str)]
        if bad:
            bad = bad[0]
            raise TypeError(f"caption metrics: item {i} holds {bad!r} ({type(bad).__name__}); captions and "
                            "references must be strings")
        if not item or not all(normalize(r) for r in item):
            raise ValueError(f"caption metrics: item {i} has an empty reference {refs[i]!r}")
    return [normalize(p) for p in preds], [[normalize(r) for r in item] for item in lists]


def exact_match(preds, refs):
    """The fraction of predictions equal (word for word, any case) to one of their references."""
    preds, refs = _pairs(preds, refs)
    return sum(p in r for p, r in zip(preds, refs)) / len(preds)


def cer(preds, refs):
    """Character error rate over the corpus (jiwer): character edits / reference characters."""
    preds, refs = _pairs(preds, refs)
    return float(_library("jiwer").cer(reference=[r[0] for r in refs], hypothesis=preds))


def wer(preds, refs):
    """Word error rate over the corpus (jiwer): word edits / reference words."""
    preds, refs = _pairs(preds, refs)
    return float(_library("jiwer").wer(reference=[r[0] for r in refs], hypothesis=preds))


def bleu4(preds, refs):
    """Corpus BLEU-4 (sacrebleu ``corpus_bleu``, its default tokenizer and smoothing), 0-100."""
    preds, refs = _pairs(preds, refs)
    # sacrebleu takes reference streams: stream j holds every item's j-th reference (None where missing)
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(max(len(r) for r in refs))]
    return float(_library("sacrebleu").corpus_bleu(preds, streams).score)


def _ngrams(text):
    """Counter of the 1- to 4-grams (tuples of words) of ``text``."""
    words = text.split()
    return collections.Counter(tuple(words[i:i + n]) for n in range(1, CIDER_N + 1)
                               for i in range(len(words) - n + 1))


def cider_d(preds, refs):
    """CIDEr-D (Vedantam et al. 2015, as coco-caption's ``CiderD`` computes it), mean over items.

    Each caption is a tf-idf vector per n (1-4): term frequency times log(N / df), df the number
    of items whose references hold the n-gram (N items). An item scores, for each reference and
    n, the cosine of candidate and reference with the candidate's counts clipped by the
    reference's, times exp(-(length difference)^2 / (2 sigma^2)), sigma = 6; averaged over n and
    the references, times 10. The idf comes from the references given, so score a whole set at once.
    """
    preds, refs = _pairs(preds, refs)
    ref_grams = [[_ngrams(r) for r in item] for item in refs]
    df = collections.Counter(g for item in ref_grams for g in set().union(*item))
    log_n = math.log(len(preds))

    def vector(counts):
        vec = {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in counts.items()}
        norms = [0.0] * CIDER_N
        for g, v in vec.items():
            norms[len(g) - 1] += v * v
        return vec, [math.sqrt(s) for s in norms]

    total = 0.0
    for pred, item in zip(preds, ref_grams):
        hyp, hyp_norm = vector(_ngrams(pred))
        score = 0.0
        for counts in item:
            ref, ref_norm = vector(counts)
            # coco-caption counts lengths in bigrams (words - 1): the same difference for non-empty
            # captions, and an empty candidate scores 0 either way
            delta = len(pred.split()) - sum(c for g, c in counts.items() if len(g) == 1)
            sims = [0.0] * CIDER_N
            for g, v in hyp.items():
                sims[len(g) - 1] += min(v, ref.get(g, 0.0)) * ref.get(g, 0.0)
            for n in range(CIDER_N):
                if hyp_norm[n] and ref_norm[n]:
                    sims[n] /= hyp_norm[n] * ref_norm[n]
                sims[n] *= math.exp(-delta * delta / (2 * CIDER_SIGMA ** 2))
            score += sum(sims) / CIDER_N
        total += 10.0 * score / len(item)
    return total / len(preds)


def caption_metrics(preds, refs):
    """All five metrics: ``{"exact_match", "cer", "wer", "bleu4", "cider_d"}`` (scales: module doc)."""
    return {"exact_match": exact_match(preds, refs), "cer": cer(preds, refs), "wer": wer(preds, refs),
            "bleu4": bleu4(preds, refs), "cider_d": cider_d(preds, refs)}


def format_metrics(table):
    """``table`` ({system name: caption_metrics dict}) as text: one row per system (the model, the
    baselines), one column per metric; rates in percent, BLEU-4 on 0-100, CIDEr-D as is.

        >>> print(format_metrics({"model": dict(exact_match=0.9, cer=0.02, wer=0.05, bleu4=88.0, cider_d=8.5)}))
        system  exact match    CER    WER  BLEU-4  CIDEr-D
        model         90.0%   2.0%   5.0%    88.0    8.500
    """
    width = max([len("system")] + [len(name) for name in table])
    lines = [f"{'system':<{width}}  {'exact match':>11}  {'CER':>5}  {'WER':>5}  {'BLEU-4':>6}  {'CIDEr-D':>7}"]
    for name, m in table.items():
        lines.append(f"{name:<{width}}  {m['exact_match']:>11.1%}  {m['cer']:>5.1%}  {m['wer']:>5.1%}  "
                     f"{m['bleu4']:>6.1f}  {m['cider_d']:>7.3f}")
    return "\n".join(lines)


def most_frequent_caption(train_captions):
    """The training set's most frequent caption (normalised; a tie goes to the first in sorted order):
    the baseline that says the same thing for every image."""
    if isinstance(train_captions, str):
        raise TypeError(f"most_frequent_caption takes a list of captions, got one string {train_captions!r}")
    counts = collections.Counter(normalize(c) for c in train_captions)
    counts.pop("", None)
    if not counts:
        raise ValueError("most_frequent_caption: no non-empty training caption")
    top = max(counts.values())
    return min(c for c, n in counts.items() if n == top)
