"""The Pixel Prediction Transformer: a decoder-only transformer over the codebook tokens of a digit.

An image is ``tokens_per_image`` tokens (its patches, row by row, each replaced by the index of
the nearest codebook vector). The model reads a start token that carries the digit's class (or
"no class") and then the image's tokens, and predicts each next token:

    input  (B, T):  [start(class), t0, t1, ..., t_{T-2}]
    -> token embedding (start: class embedding) + learned position embedding
    -> num_layers causal pre-norm TransformerBlocks -> LayerNorm -> head Linear(D, num_codes)
    -> logits (B, T, num_codes): row i is the distribution of token t_i given t_0..t_{i-1}

The same model generates class-conditionally (start = the digit) and unconditionally (start =
``num_classes``, "no class", seen for a share of the training sequences), which is what
classifier-free guidance combines: ``logits = uncond + w * (cond - uncond)``.

    >>> model = PixelPredictionTransformer(num_codes=16, tokens_per_image=49, embed_dim=32,
    ...                                    num_layers=1, num_heads=2, ff_dim=64)
    >>> model(np.zeros((2, 49), np.int64), np.array([3, 10])).shape
    (2, 49, 16)
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

import gt
from gt import nn
from gt.nn import init, sampling
from lpm.model import input_tensor
from lpm.options import plain

EMBED_INIT_STD = 0.02      # GPT-2's (and nanoGPT's) init of the embedding tables
MNIST_SIDE = 28           # a digit's side: a grid padded past it (patch sizes not dividing 28) is cropped back


@dataclass(frozen=True)
class PPTConfig:
    """Hyperparameters of a ``PixelPredictionTransformer``; checked on creation."""

    num_codes: int = 256          # K, the codebook's size: the vocabulary
    tokens_per_image: int = 49    # T = ceil(28 / patch_size) ** 2
    embed_dim: int = 128          # D
    num_layers: int = 4
    num_heads: int = 4
    ff_dim: int = 512
    dropout: float = 0.0
    num_classes: int = 10         # class ids 0..num_classes - 1; num_classes itself means "no class"
    patch_size: int = 4           # the side of a patch (a codebook vector holds patch_size**2 pixels)

    def __post_init__(self):
        for name in ("num_codes", "tokens_per_image", "embed_dim", "num_layers", "num_heads", "ff_dim",
                     "num_classes", "patch_size"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"PixelPredictionTransformer: {name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))     # numpy ints too (as torch's modules take them), as int
        if self.num_codes < 2:
            raise ValueError(f"PixelPredictionTransformer: num_codes must be >= 2, got {self.num_codes}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"PixelPredictionTransformer: embed_dim ({self.embed_dim}) must be divisible by "
                             f"num_heads ({self.num_heads})")
        if math.isqrt(self.tokens_per_image) ** 2 != self.tokens_per_image:
            raise ValueError(f"PixelPredictionTransformer: tokens_per_image must be a square (a grid of patches), "
                             f"got {self.tokens_per_image}")
        if isinstance(self.dropout, bool) or not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"PixelPredictionTransformer: dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def grid(self):
        """Patches per side of an image."""
        return math.isqrt(self.tokens_per_image)

    @property
    def image_size(self):
        """The side of a decoded image in pixels: grid x patch_size, except that a grid of
        ceil(28 / patch_size) patches whose side passes 28 is a zero-padded 28x28 MNIST digit
        (the codebook's padding where patch_size does not divide 28), cropped back to 28."""
        side = self.grid * self.patch_size
        return MNIST_SIDE if side > MNIST_SIDE and self.grid == -(-MNIST_SIDE // self.patch_size) else side


class PixelPredictionTransformer(nn.Module):
    """A decoder-only transformer that draws digits token by token (see the module docstring).

    State dict (PyTorch layouts; D = embed_dim, K = num_codes, T = tokens_per_image, C =
    num_classes): ``tok_embedding.weight (K, D)``, ``class_embedding.weight (C + 1, D)`` (the
    start token; row C is "no class"), ``pos_embedding.weight (T, D)``, ``blocks.{i}.*`` (causal
    ``gt.nn.TransformerBlock``s), ``norm.*``, ``head.weight (K, D)``, ``head.bias (K)``, and the
    buffer ``codebook (K, patch_size**2)``: the pixel values of each code, so that a trained
    model turns its tokens into images on its own (zeros until ``set_codebook`` or a checkpoint
    fills it).
    """

    def __init__(self, num_codes=256, tokens_per_image=49, embed_dim=128, num_layers=4, num_heads=4, ff_dim=512,
                 dropout=0.0, num_classes=10, patch_size=4, codebook=None):
        super().__init__()
        self.config = cfg = PPTConfig(num_codes, tokens_per_image, embed_dim, num_layers, num_heads, ff_dim,
                                      dropout, num_classes, patch_size)
        self.tok_embedding = nn.Embedding(cfg.num_codes, cfg.embed_dim)
        self.class_embedding = nn.Embedding(cfg.num_classes + 1, cfg.embed_dim)
        self.pos_embedding = nn.Embedding(cfg.tokens_per_image, cfg.embed_dim)
        for table in (self.tok_embedding, self.class_embedding, self.pos_embedding):
            init.normal_(table.weight, std=EMBED_INIT_STD)
        self.blocks = nn.ModuleList([nn.TransformerBlock(cfg.embed_dim, cfg.num_heads, cfg.ff_dim, dropout=cfg.dropout,
                                                         causal=True) for _ in range(cfg.num_layers)])
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Linear(cfg.embed_dim, cfg.num_codes)
        self.register_buffer("codebook", gt.zeros(cfg.num_codes, cfg.patch_size ** 2))
        if codebook is not None:
            self.set_codebook(codebook)

    @classmethod
    def from_config(cls, config, codebook=None):
        """A model of a ``PPTConfig`` or of its dict (as a checkpoint stores it)."""
        return cls(**(asdict(config) if isinstance(config, PPTConfig) else dict(config)), codebook=codebook)

    # ---- the network --------------------------------------------------------------------------
    def forward(self, tokens, classes):
        """``tokens`` (B, n) ints in [0, num_codes), 1 <= n <= tokens_per_image, and ``classes`` (B,)
        in [0, num_classes] -> logits (B, n, num_codes); row i predicts token i from the start
        token and tokens 0..i-1 (so token n - 1 itself is never read, but it is checked: an id
        out of range there is refused as in any other position, by the embedding's IndexError)."""
        tokens = self._tokens(tokens, "tokens", min_len=1)
        classes = self._classes(classes, tokens.shape[0])
        self._check_last_token(tokens)
        return self._logits(classes, tokens[:, :-1])

    def _logits(self, classes, context, cache=None):
        """Logits of the positions after the start token (when ``cache`` is empty or None) and
        ``context`` (B, m) tokens: (B, 1 + m, K), or (B, m, K) when the cache holds the earlier
        positions."""
        start = 0 if cache is None else cache.seq_len
        parts = [self.class_embedding(classes).unsqueeze(1)] if start == 0 else []
        if context.shape[1]:
            parts.append(self.tok_embedding(context))
        x = parts[0] if len(parts) == 1 else gt.cat(parts, dim=1)
        x = x + self.pos_embedding(gt.arange(start, start + x.shape[1]))
        for block in self.blocks:
            x = block(x, cache=cache) if cache is not None else block(x)
        return self.head(self.norm(x))

    # ---- generation ---------------------------------------------------------------------------
    @gt.no_grad()
    def generate_tokens(self, num, digit=None, temperature=1.0, top_k=None, top_p=None, guidance=None, seed=None,
                        prefix=None, use_cache=True):
        """Draw ``num`` token sequences: (num, tokens_per_image) int64 numpy array.

        ``digit``: None (unconditional), an int class, or a sequence of ``num`` classes.
        ``temperature``, ``top_k``, ``top_p``: as ``gt.nn.sampling.sample``. ``guidance=w``
        (needs ``digit``): classifier-free guidance, each step's logits are
        ``uncond + w * (cond - uncond)`` (w = 1 is plain conditional sampling). ``seed`` seeds
        gt's generator first (``gt.manual_seed``), so the same seed draws the same digits.
        ``prefix`` (num, n) tokens: the first n tokens are given, the rest drawn (completion).
        ``use_cache``: decode with a ``gt.nn.KVCache`` (each step runs the new token only);
        without it every step runs the whole prefix again, with the same result.
        """
        # numpy numbers (np.float32(0.8)) as the Python ones gt.nn.sampling takes
        temperature, top_k, top_p, guidance = map(plain, (temperature, top_k, top_p, guidance))
        classes, prefix = self._generation_inputs(num, digit, temperature, top_k, top_p, guidance, seed, prefix)
        T = self.config.tokens_per_image
        guided = guidance is not None and guidance != 1
        if guided:       # one batch: the conditional rows, then the same rows without a class
            classes = np.concatenate([classes, np.full(num, self.config.num_classes, np.int64)])
        tokens = np.zeros((len(classes), T), np.int64)
        tokens[:, :prefix.shape[1]] = np.concatenate([prefix, prefix]) if guided else prefix
        if seed is not None:
            gt.manual_seed(seed)
        was_training = self.training
        self.eval()
        try:
            self._decode(tokens, gt.tensor(classes), prefix.shape[1], num if guided else None, guidance,
                         dict(temperature=temperature, top_k=top_k, top_p=top_p), use_cache)
        finally:
            self.train(was_training)
        return tokens[:num]

    def _decode(self, tokens, class_ids, n, guided_rows, guidance, options, use_cache):
        """Fill ``tokens`` (B, T) from column ``n`` on, one step per token; with ``guided_rows``,
        rows ``guided_rows:`` are the same sequences without a class, and each step samples from
        the guided logits of the first ``guided_rows`` and writes the draw into both halves."""
        cache = nn.KVCache() if use_cache else None
        while n < tokens.shape[1]:
            if cache is None or cache.seq_len == 0:       # the start token and every token so far
                logits = self._logits(class_ids, gt.tensor(tokens[:, :n]), cache)
            else:                                          # the last token only, over the cached keys
                logits = self._logits(class_ids, gt.tensor(tokens[:, n - 1:n]), cache)
            last = logits[:, -1]                                                  # (B, K)
            if guided_rows:
                cond, uncond = last[:guided_rows], last[guided_rows:]
                last = uncond + (cond - uncond) * float(guidance)
            ids = sampling.sample(last, **options).numpy()
            tokens[:, n] = np.concatenate([ids, ids]) if guided_rows else ids
            n += 1

    def generate(self, num, digit=None, temperature=1.0, top_k=None, top_p=None, guidance=None, seed=None,
                 prefix=None, use_cache=True):
        """Draw ``num`` digits as images: (num, image_size, image_size) float32 in [0, 1], decoded
        through the model's codebook (the tokens of ``generate_tokens``, with the same options).
        A model without a codebook (all zeros: not trained, nor given one) is a ValueError."""
        if not self.has_codebook:
            raise ValueError("PixelPredictionTransformer.generate: the model holds no codebook (train it, load a "
                             "checkpoint, or call set_codebook(vectors)); generate_tokens gives the tokens")
        return self.decode(self.generate_tokens(num, digit, temperature, top_k, top_p, guidance, seed, prefix,
                                                use_cache))

    # ---- codebook -----------------------------------------------------------------------------
    @property
    def has_codebook(self):
        """Whether the codebook buffer holds vectors (it is all zeros until set)."""
        return bool(np.any(self.codebook.numpy()))

    def set_codebook(self, vectors):
        """Store the codebook's vectors (num_codes, patch_size**2) float in [0, 1] in the model."""
        try:
            vectors = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise TypeError(f"PixelPredictionTransformer.set_codebook: expected an array of numbers, got "
                            f"{type(vectors).__name__}") from None
        want = (self.config.num_codes, self.config.patch_size ** 2)
        if vectors.shape != want:
            raise ValueError(f"PixelPredictionTransformer.set_codebook: expected vectors of shape {want}, "
                             f"got {vectors.shape}")
        if not np.isfinite(vectors).all():     # they become pixels: NaN would draw nothing, silently
            raise ValueError("PixelPredictionTransformer.set_codebook: the vectors hold non-finite values")
        self.codebook = gt.tensor(vectors)

    def decode(self, tokens):
        """Tokens (N, tokens_per_image) -> images (N, image_size, image_size) float32 in [0, 1]
        (the padding of a padded grid cropped off)."""
        tokens = np.asarray(tokens)
        cfg, vectors = self.config, self.codebook.numpy()
        if tokens.ndim != 2 or tokens.shape[1] != cfg.tokens_per_image or \
                (tokens.size and tokens.dtype.kind not in "iu"):
            raise ValueError(f"PixelPredictionTransformer.decode: expected tokens (N, {cfg.tokens_per_image}) of "
                             f"integer ids, got {tokens.dtype} of shape {tokens.shape}")
        if tokens.size and not 0 <= tokens.min() <= tokens.max() < cfg.num_codes:   # numpy would wrap -1
            raise ValueError(f"PixelPredictionTransformer.decode: token ids must lie in [0, {cfg.num_codes}), got "
                             f"{tokens.min()}..{tokens.max()}")
        g, p = cfg.grid, cfg.patch_size
        patches = vectors[tokens].reshape(len(tokens), g, g, p, p)               # (N, row, col, y, x)
        side = cfg.image_size
        images = patches.transpose(0, 1, 3, 2, 4).reshape(len(tokens), g * p, g * p)[:, :side, :side]
        return np.clip(images, 0.0, 1.0).astype(np.float32)

    # ---- checks -------------------------------------------------------------------------------
    def _generation_inputs(self, num, digit, temperature, top_k, top_p, guidance, seed, prefix):
        """``(classes (num,), prefix (num, n))`` as numpy int64, after checking every option."""
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
            raise ValueError(f"generate: num must be an int >= 1, got {num!r}")
        try:         # sample's own checks of the options, before any work
            sampling.sample(gt.zeros(1, 2), temperature=temperature, top_k=top_k, top_p=top_p, greedy=True)
        except ValueError as exc:        # its hint (greedy=True) is sample's: generate always samples
            raise ValueError(f"generate: {str(exc).split(' (for greedy')[0]}") from None
        if guidance is not None:
            if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance):
                raise ValueError(f"generate: guidance must be a finite number, got {guidance!r}")
            if digit is None:
                raise ValueError("generate: guidance needs a digit (it steers towards a class)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"generate: seed must be an int >= 0, got {seed!r}")
        C = self.config.num_classes
        if digit is None:
            classes = np.full(num, C, np.int64)
        else:
            classes = np.broadcast_to(np.asarray(digit), (num,)) if np.ndim(digit) == 0 else np.asarray(digit)
            if classes.shape != (num,) or classes.dtype.kind not in "iu" or classes.min() < 0 or classes.max() >= C:
                raise ValueError(f"generate: digit must be an int in [0, {C - 1}] or {num} of them, got {digit!r}")
            classes = classes.astype(np.int64)
        if prefix is None:
            return classes, np.zeros((num, 0), np.int64)
        prefix = np.asarray(prefix)
        T, K = self.config.tokens_per_image, self.config.num_codes
        if prefix.ndim != 2 or prefix.shape[0] != num or prefix.shape[1] > T or prefix.dtype.kind not in "iu" \
                or (prefix.size and (prefix.min() < 0 or prefix.max() >= K)):
            raise ValueError(f"generate: prefix must be ({num}, n) tokens in [0, {K}) with n <= {T}, got "
                             f"{prefix.dtype} {prefix.shape}")
        return classes, prefix.astype(np.int64)

    def _tokens(self, tokens, what, min_len):
        t = input_tensor(tokens, "PixelPredictionTransformer", what, "integer token ids")
        T = self.config.tokens_per_image
        if t.ndim != 2 or not min_len <= t.shape[1] <= T or t.shape[0] == 0:
            raise ValueError(f"PixelPredictionTransformer: {what} must have shape (batch, n) with batch >= 1 and "
                             f"{min_len} <= n <= {T}, got {t.shape}")
        if t.dtype.is_floating_point or t.dtype == gt.dtypes.bool_:
            raise TypeError(f"PixelPredictionTransformer: {what} must be integer token ids, got {t.dtype!r}")
        return t

    def _check_last_token(self, tokens):
        """The embedding's own check for the column ``forward`` does not embed: the same IndexError
        naming the lowest id when one is below 0, else the highest."""
        last, K = tokens[:, -1].numpy(), self.config.num_codes     # (B,) ints: a few us a step
        lo, hi = int(last.min()), int(last.max())
        if lo < 0 or hi >= K:
            raise IndexError(f"embedding: index {lo if lo < 0 else hi} is out of range for an embedding table of "
                             f"{K} rows (valid: 0..{K - 1})")

    def _classes(self, classes, batch):
        c = input_tensor(classes, "PixelPredictionTransformer", "classes", "integer class ids")
        if c.shape != (batch,) or c.dtype.is_floating_point or c.dtype == gt.dtypes.bool_:
            raise ValueError(f"PixelPredictionTransformer: classes must be ({batch},) ints in "
                             f"[0, {self.config.num_classes}], got {c.dtype!r} {c.shape}")
        if int(c.min()) < 0 or int(c.max()) > self.config.num_classes:
            raise ValueError(f"PixelPredictionTransformer: classes must lie in [0, {self.config.num_classes}] "
                             f"({self.config.num_classes}: no class), got {int(c.min())}..{int(c.max())}")
        return c
