"""The Pixel LLM: an image encoder and a text decoder with cross-attention that writes captions.

    images (B, H, W) or (B, C, H, W)  --VisionEncoder (ViT)-->  features (B, P, Dv)
    or frames (B, S, H, W)             --LPMEncoder (LPM)---->  features (B, S, Dv)
    features --Linear(Dv, Dt) when the widths differ--> context (B, P, Dt)
    input_ids (B, L) -> token + position embeddings -> causal pre-norm TransformerBlocks (the last
    n of them with cross-attention over the context) -> LayerNorm -> Linear(Dt, V) -> logits (B, L, V)

Row i of the logits predicts token i + 1 from tokens 0..i and the whole image (teacher forcing:
``input_ids`` starts with ``<bos>``, the targets are the same caption shifted left, ending in
``<eos>``). Decoding (greedy, sampling, beam search with the key/value cache) lives in
``lpm.caption.decoding``.

    >>> model = create_pixel_llm(vocab_size=14, image_size=(28, 112), patch_size=7)
    >>> model(np.zeros((2, 28, 112), np.float32), np.ones((2, 5), np.int64)).shape
    (2, 5, 14)
"""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

import gt
from gt import nn
from gt.nn import init
from lpm.caption import search
from lpm.model import PixelTransformer, input_tensor
from lpm.options import plain

EMBED_INIT_STD = 0.02      # GPT-2's (and nanoGPT's) init of embedding and position tables
ENCODERS = ("vit", "lpm")
ACTIVATIONS = ("gelu", "relu")


def _pair(value):
    """An int or an (h, w) pair as a tuple of two (lists come back from JSON checkpoints)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return tuple(value)
    return (value, value) if isinstance(value, int) and not isinstance(value, bool) else value


def _positive(name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"PixelLLMConfig: {name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class PixelLLMConfig:
    """Hyperparameters of a ``PixelLLM``; checked on creation (one clear ``ValueError`` each).

    ``encoder="vit"`` reads images of ``image_size`` (int or (H, W)) in ``patch_size`` patches
    with the ``vision_*`` fields; ``encoder="lpm"`` reads sequences of up to ``seq_len`` square
    frames of ``frame_size`` pixels with the ``lpm_*`` fields (a ``PixelTransformer``).
    ``cross_attention_dim`` is the encoder's width (the default; a different value is refused);
    ``num_cross_attention_layers`` (default: all) is how many of the LAST decoder blocks have
    cross-attention. Feed-forward widths are ``ff_mult`` times each stack's width.

        >>> PixelLLMConfig(vocab_size=10, text_embed_dim=30, text_num_heads=4)
        Traceback (most recent call last):
        ...
        ValueError: PixelLLMConfig: text_embed_dim (30) must be divisible by text_num_heads (4)
    """

    image_size: object = (28, 112)
    patch_size: object = (7, 7)
    vision_embed_dim: int = 64
    vision_num_layers: int = 2
    vocab_size: int = None          # required: the vocabulary's size, specials included
    text_embed_dim: int = 64
    text_num_layers: int = 2
    max_seq_len: int = 16           # the longest token sequence (bos + caption + eos) the decoder reads
    in_channels: int = 1
    vision_num_heads: int = 4
    text_num_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    cross_attention_dim: int = None
    num_cross_attention_layers: int = None
    activation: str = "gelu"
    encoder: str = "vit"
    seq_len: int = 8                # lpm encoder: the longest frame sequence
    frame_size: int = 32            # lpm encoder: frames are frame_size x frame_size
    lpm_embed_dim: int = 64
    lpm_num_layers: int = 2
    lpm_num_heads: int = 4
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        set_ = object.__setattr__            # frozen: normalise the pairs and defaults once, here
        set_(self, "image_size", _pair(self.image_size))
        set_(self, "patch_size", _pair(self.patch_size))
        if self.encoder not in ENCODERS:
            raise ValueError(f"PixelLLMConfig: encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"PixelLLMConfig: activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        for name in ("vision_embed_dim", "vision_num_heads", "vocab_size", "text_embed_dim", "text_num_heads",
                     "max_seq_len", "in_channels", "ff_mult", "seq_len", "frame_size", "lpm_embed_dim",
                     "lpm_num_heads", "text_num_layers"):
            _positive(name, getattr(self, name))
            set_(self, name, int(getattr(self, name)))         # numpy ints too, stored as int (JSON)
        for name in ("vision_num_layers", "lpm_num_layers", "pad_id", "bos_id", "eos_id"):
            _positive(name, getattr(self, name), minimum=0)
            set_(self, name, int(getattr(self, name)))
        if self.cross_attention_dim is None:
            set_(self, "cross_attention_dim", self.encoder_dim)
        if self.num_cross_attention_layers is None:
            set_(self, "num_cross_attention_layers", self.text_num_layers)
        _positive("cross_attention_dim", self.cross_attention_dim)
        _positive("num_cross_attention_layers", self.num_cross_attention_layers)
        self._check_relations()

    def _check_relations(self):
        for width, heads in (("vision_embed_dim", "vision_num_heads"), ("text_embed_dim", "text_num_heads"),
                             ("lpm_embed_dim", "lpm_num_heads")):
            if getattr(self, width) % getattr(self, heads):
                raise ValueError(f"PixelLLMConfig: {width} ({getattr(self, width)}) must be divisible by "
                                 f"{heads} ({getattr(self, heads)})")
        if self.cross_attention_dim != self.encoder_dim:
            raise ValueError(f"PixelLLMConfig: cross_attention_dim ({self.cross_attention_dim}) must be the "
                             f"{self.encoder} encoder's width ({self.encoder_dim})")
        if self.num_cross_attention_layers > self.text_num_layers:
            raise ValueError(f"PixelLLMConfig: num_cross_attention_layers ({self.num_cross_attention_layers}) "
                             f"must be at most text_num_layers ({self.text_num_layers})")
        for name in ("image_size", "patch_size"):
            pair = getattr(self, name)
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)):
                raise ValueError(f"PixelLLMConfig: {name} must be a positive int or an (h, w) pair, got {pair!r}")
        if self.encoder == "vit" and any(s % p for s, p in zip(self.image_size, self.patch_size)):
            raise ValueError(f"PixelLLMConfig: image_size {self.image_size} must be a whole number of patches "
                             f"of patch_size {self.patch_size}")
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                and 0 <= self.dropout < 1):
            raise ValueError(f"PixelLLMConfig: dropout must be a number in [0, 1), got {self.dropout!r}")
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        if len(set(ids.values())) < 3 or max(ids.values()) >= self.vocab_size:
            raise ValueError(f"PixelLLMConfig: pad_id, bos_id and eos_id must be distinct ids below vocab_size "
                             f"({self.vocab_size}), got {ids}")

    @property
    def encoder_dim(self):
        """The width of the image features: ``vision_embed_dim`` (vit) or ``lpm_embed_dim`` (lpm)."""
        return self.vision_embed_dim if self.encoder == "vit" else self.lpm_embed_dim

    def to_dict(self):
        """The fields as plain JSON values (pairs as lists), for checkpoints."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        """The config of ``to_dict``'s output; an unknown key is a ValueError naming it."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"PixelLLMConfig: unknown field {unknown[0]!r} (a checkpoint of another model?)")
        return cls(**values)


class VisionEncoder(nn.Module):
    """ViT-style encoder: images (B, H, W) or (B, C, H, W) float32 -> features (B, P, D).

    Non-overlapping ``patch_size`` patches, row by row (P = (H/ph) * (W/pw)), each flattened
    channel-major (C, ph, pw) and embedded by ``patch_embed = Linear(C*ph*pw, D)``, plus a learned
    ``pos_embedding (P, D)``; then ``num_layers`` pre-norm ``TransformerBlock``s (no mask) and a
    final ``norm``.
    """

    def __init__(self, image_size, patch_size, embed_dim, num_layers, num_heads, in_channels=1, ff_mult=4,
                 dropout=0.0, activation="gelu"):
        super().__init__()
        self.image_size, self.patch_size, self.in_channels = _pair(image_size), _pair(patch_size), in_channels
        (H, W), (ph, pw) = self.image_size, self.patch_size
        self.grid = (H // ph, W // pw)
        self.num_patches = self.grid[0] * self.grid[1]
        self.patch_embed = nn.Linear(in_channels * ph * pw, embed_dim)
        self.pos_embedding = nn.Parameter(gt.zeros(self.num_patches, embed_dim))
        init.normal_(self.pos_embedding, std=EMBED_INIT_STD)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([nn.TransformerBlock(embed_dim, num_heads, ff_mult * embed_dim, dropout=dropout,
                                                         activation=activation) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(embed_dim)

    def patches(self, images):
        """Images (B, C, H, W) -> patches (B, P, C*ph*pw), row by row."""
        Bsz, C = images.shape[:2]
        (gh, gw), (ph, pw) = self.grid, self.patch_size
        x = images.reshape(Bsz, C, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5)   # (B, gh, gw, C, ph, pw)
        return x.reshape(Bsz, gh * gw, C * ph * pw)

    def forward(self, images):
        x = self.patch_embed(self.patches(check_images(images, self.in_channels, self.image_size)))  # (B, P, D)
        x = self.drop(x + self.pos_embedding)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class LPMEncoder(nn.Module):
    """The Large Pixel Model as the encoder of frame sequences: (B, S, H, W) -> (B, S, D), one
    feature per whole frame (``PixelTransformer.encode``, the model built with ``head=None``).
    Its parameters sit under ``lpm.*`` with ``PixelTransformer``'s own state-dict keys."""

    def __init__(self, frame_size, embed_dim, num_layers, num_heads, max_seq_len, ff_mult=4, dropout=0.0,
                 activation="gelu"):
        super().__init__()
        self.lpm = PixelTransformer(img_size=frame_size, embed_dim=embed_dim, num_heads=num_heads,
                                    num_layers=num_layers, ff_dim=ff_mult * embed_dim, max_seq_len=max_seq_len,
                                    dropout=dropout, activation=activation, head=None, pool="none")

    def forward(self, frames):
        cfg = self.lpm.config
        x = frames if isinstance(frames, gt.Tensor) else np.asarray(frames)
        if x.ndim != 4 or tuple(x.shape[2:]) != (cfg.img_size,) * 2 or not 1 <= x.shape[1] <= cfg.max_seq_len:
            raise ValueError(f"PixelLLM: expected frame sequences of shape (batch, S, {cfg.img_size}, "
                             f"{cfg.img_size}) with 1 <= S <= {cfg.max_seq_len}, got {tuple(x.shape)}")
        return self.lpm.encode(x)


class LanguageDecoder(nn.Module):
    """Causal text decoder over image features: ``forward(input_ids (B, L), context (B, P, Dc))
    -> logits (B, L, V)``.

    ``tok_embedding (V, D)`` + ``pos_embedding (max_seq_len, D)``, ``num_layers`` causal pre-norm
    ``TransformerBlock``s of which the last ``num_cross_attention_layers`` attend to the context
    (projected by ``context_proj = Linear(Dc, D)`` when ``cross_attention_dim`` differs from
    ``embed_dim``), ``norm``, ``head = Linear(D, V)``. With a ``gt.nn.KVCache``, ``input_ids``
    holds only the new positions (their positions start at ``cache.seq_len``) and the context's
    projection and cross-attention keys/values are computed once per context tensor.
    """

    def __init__(self, vocab_size, embed_dim, num_layers, num_heads, cross_attention_dim=None,
                 num_cross_attention_layers=None, max_seq_len=16, ff_mult=4, dropout=0.0, activation="gelu"):
        super().__init__()
        cross_attention_dim = embed_dim if cross_attention_dim is None else cross_attention_dim
        n_cross = num_layers if num_cross_attention_layers is None else num_cross_attention_layers
        self.vocab_size, self.max_seq_len = vocab_size, max_seq_len
        self.tok_embedding = nn.Embedding(vocab_size, embed_dim)
        self.pos_embedding = nn.Embedding(max_seq_len, embed_dim)
        for table in (self.tok_embedding, self.pos_embedding):
            init.normal_(table.weight, std=EMBED_INIT_STD)
        self.context_proj = nn.Linear(cross_attention_dim, embed_dim) if cross_attention_dim != embed_dim else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([
            nn.TransformerBlock(embed_dim, num_heads, ff_mult * embed_dim, dropout=dropout, causal=True,
                                activation=activation, cross_attention=i >= num_layers - n_cross)
            for i in range(num_layers)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, vocab_size)

    def forward(self, input_ids, context, attention_mask=None, cache=None):
        """``attention_mask`` (B, cached + L): 1/True at tokens, 0/False at padding keys (Hugging
        Face's convention); with right padding (captions) it changes no row that is a token."""
        x, context = self._embed(input_ids, context, cache)
        extra = {}
        if attention_mask is not None:
            mask = input_tensor(attention_mask, "PixelLLM", "attention_mask", "1/0 or True/False per token")
            want = (x.shape[0], (0 if cache is None else cache.seq_len) + x.shape[1])
            if tuple(mask.shape) != want:
                raise ValueError(f"PixelLLM: attention_mask must have shape (batch, cached + L) = {want}, got "
                                 f"{tuple(mask.shape)}")
            if mask.dtype != gt.dtypes.bool_:
                # torch's additive float masks (0 / -inf) would read as "attend everywhere": only 0 and 1 mean
                # something here (not a training-step cost: the trainer passes no mask)
                with gt.no_grad():
                    gt.checks.require(((mask == 0) | (mask == 1)).all(), ValueError, lambda: (
                        f"PixelLLM: attention_mask must hold 1/True at tokens and 0/False at padding (Hugging "
                        f"Face's convention), got values from {mask.min().item()} to {mask.max().item()}"))
            extra["key_padding_mask"] = mask == 0
        for block in self.blocks:
            ctx = context if block.cross_attention else None
            x = block(x, context=ctx, cache=cache, **extra)
        return self.head(self.norm(x))

    def _embed(self, input_ids, context, cache):
        """The embedded tokens (B, L, D) after the cached positions, and the context in the
        decoder's width (projected once per context while ``cache`` holds it)."""
        start = 0 if cache is None else cache.seq_len
        ids = input_tensor(input_ids, "PixelLLM", "input_ids", "token ids")
        if ids.ndim != 2 or ids.dtype.is_floating_point or ids.dtype == gt.dtypes.bool_ or ids.shape[1] == 0 \
                or start + ids.shape[1] > self.max_seq_len:
            raise ValueError(f"PixelLLM: input_ids must be (batch, L) token ids with 1 <= L and {start} cached + L <= "
                             f"max_seq_len={self.max_seq_len}, got {ids.dtype!r} {ids.shape}")
        if ids.shape[0] != context.shape[0]:
            raise ValueError(f"PixelLLM: input_ids has batch size {ids.shape[0]}, the images {context.shape[0]}")
        if self.context_proj is not None:
            context = cache.reuse(self, context, self.context_proj) if cache is not None else self.context_proj(context)
        x = self.tok_embedding(ids) + self.pos_embedding(gt.arange(start, start + ids.shape[1]))
        return self.drop(x), context

    @gt.no_grad()
    def cross_attention_weights(self, input_ids, context):
        """The attention weights (B, heads, L, P) of the last block with cross-attention: how much
        each position's query looks at each image feature."""
        x, context = self._embed(input_ids, context, None)
        last = max(i for i, b in enumerate(self.blocks) if b.cross_attention)
        for block in self.blocks[:last]:
            x = block(x, context=context if block.cross_attention else None)
        block = self.blocks[last]
        x = x + block.attn(block.ln1(x))           # the block's own first half, then its cross-attention
        return block.cross_attn(block.ln_cross(x), context=context, need_weights=True)[1]


class PixelLLM(nn.Module):
    """An image (or frame-sequence) encoder and a text decoder: see the module docstring.

    State dict: ``encoder.*`` (``VisionEncoder``'s keys, or ``encoder.lpm.*`` with LPM's) and
    ``decoder.*`` (``LanguageDecoder``'s), PyTorch layouts throughout.
    """

    def __init__(self, config):
        super().__init__()
        self.config = cfg = config if isinstance(config, PixelLLMConfig) else PixelLLMConfig.from_dict(config)
        if cfg.encoder == "vit":
            self.encoder = VisionEncoder(cfg.image_size, cfg.patch_size, cfg.vision_embed_dim, cfg.vision_num_layers,
                                         cfg.vision_num_heads, cfg.in_channels, cfg.ff_mult, cfg.dropout,
                                         cfg.activation)
        else:
            self.encoder = LPMEncoder(cfg.frame_size, cfg.lpm_embed_dim, cfg.lpm_num_layers, cfg.lpm_num_heads,
                                      cfg.seq_len, cfg.ff_mult, cfg.dropout, cfg.activation)
        self.decoder = LanguageDecoder(cfg.vocab_size, cfg.text_embed_dim, cfg.text_num_layers, cfg.text_num_heads,
                                       cfg.cross_attention_dim, cfg.num_cross_attention_layers, cfg.max_seq_len,
                                       cfg.ff_mult, cfg.dropout, cfg.activation)

    def forward(self, images, input_ids, attention_mask=None):
        """Images and token ids (B, L) -> next-token logits (B, L, vocab_size)."""
        return self.decoder(input_ids, self.encode_images(images), attention_mask)

    def encode_images(self, images):
        """The image features the decoder attends to: (B, P, cross_attention_dim)."""
        return self.encoder(images)

    def decode(self, input_ids, context, cache=None, attention_mask=None):
        """Logits (B, L, V) of ``input_ids`` over ``context`` (``encode_images``' output); with a
        ``gt.nn.KVCache``, only the new positions are passed (see ``LanguageDecoder``)."""
        return self.decoder(input_ids, context, attention_mask, cache)

    def cross_attention_maps(self, images, input_ids):
        """How much each position of ``input_ids`` looks at each image feature in the last
        cross-attention layer, averaged over its heads: numpy (B, L, P), rows summing to 1. For
        the ViT encoder, ``reshape(B, L, H/ph, W/pw)`` puts a row over the image's patch grid."""
        with gt.no_grad():
            weights = self.decoder.cross_attention_weights(input_ids, self.encode_images(images))
            return weights.mean(1).numpy()

    @gt.no_grad()
    def generate(self, images, max_length=100, temperature=1.0, do_sample=False, top_k=None, top_p=None, num_beams=1,
                 length_penalty=1.0, early_stopping=False, no_repeat_ngram_size=0, repetition_penalty=1.0,
                 num_return_sequences=1, use_cache=True, min_length=0, min_new_tokens=None, bad_words_ids=None,
                 return_scores=False):
        """Captions of ``images`` as token ids: int64 numpy (B * num_return_sequences, T), each row
        ``<bos>``, the caption, ``<eos>`` (unless cut at ``max_length``), then ``<pad>``; an
        image's rows follow each other (beam search: best first). The options are Hugging Face's
        (see ``lpm.caption.decoding.GenerationConfig``); ``max_length`` counts the ``<bos>`` and
        is capped at what the decoder reads, ``max_seq_len + 1``. ``return_scores``: also the
        beams' scores (B * num_return_sequences,) (beam search only). Sampling draws from gt's
        generator: seed it with ``gt.manual_seed``. Every step runs with the key/value cache
        (``use_cache=False``: the whole sequence again each step, with the same result)."""
        temperature, top_k, top_p, repetition_penalty, length_penalty, do_sample, early_stopping, use_cache = map(
            plain, (temperature, top_k, top_p, repetition_penalty, length_penalty, do_sample, early_stopping, use_cache))
        options = dict(max_length=max_length, temperature=temperature, do_sample=do_sample, top_k=top_k, top_p=top_p,
                       num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                       no_repeat_ngram_size=no_repeat_ngram_size, repetition_penalty=repetition_penalty,
                       num_return_sequences=num_return_sequences, use_cache=use_cache, min_length=min_length,
                       min_new_tokens=min_new_tokens, bad_words_ids=bad_words_ids)
        search.check_options(**options)
        if return_scores and num_beams == 1:
            raise ValueError("generate: return_scores needs beam search (num_beams > 1)")
        cfg = self.config
        bad = [t for words in bad_words_ids or () for t in words if t >= cfg.vocab_size]
        if bad:
            raise ValueError(f"generate: bad_words_ids holds token id {bad[0]}, outside the vocabulary "
                             f"[0, {cfg.vocab_size})")
        max_length = min(max_length, cfg.max_seq_len + 1)
        min_length = search.min_length_of(min_length, min_new_tokens, 1, max_length)
        was_training = self.training
        self.eval()
        try:
            context = self.encode_images(images)
            if not math.isfinite(context.abs().max().item()):   # NaN logits would decode as token 0, silently
                raise ValueError(f"PixelLLM.generate: the image features are not finite: NaN or inf pixels in "
                                 f"images (min {gt.as_tensor(images).min().item()}, max {gt.as_tensor(images).max().item()})")
            rows = num_beams if num_beams > 1 else num_return_sequences
            if rows > 1:    # each image's features once per beam (or sample), computed once
                context = context[gt.tensor(np.repeat(np.arange(context.shape[0]), rows))]
            step = _Step(self, context, use_cache)
            ids = np.full((context.shape[0], 1), cfg.bos_id, np.int64)
            ends = dict(eos_id=cfg.eos_id, pad_id=cfg.pad_id, max_length=max_length, min_length=min_length,
                        repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                        bad_words_ids=bad_words_ids, do_sample=do_sample, temperature=temperature, top_k=top_k,
                        top_p=top_p)
            if num_beams == 1:
                return search.sample_search(step, ids, **ends)
            out, scores = search.beam_search(step, step.reorder, ids, num_beams, length_penalty=length_penalty,
                                             early_stopping=early_stopping,
                                             num_return_sequences=num_return_sequences, **ends)
            return (out, scores) if return_scores else out
        finally:
            self.train(was_training)

    def extra_repr(self):
        c = self.config
        return f"encoder={c.encoder!r}, vocab_size={c.vocab_size}, max_seq_len={c.max_seq_len}"


class _Step:
    """``step(ids) -> logits (N, V)`` of the next token after ``ids`` (N, t) for ``lpm.caption.search``:
    with a cache, only the columns the cache has not seen are run."""

    def __init__(self, model, context, use_cache):
        self.model, self.context = model, context
        self.cache = nn.KVCache() if use_cache else None

    def __call__(self, ids):
        if self.cache is None:
            return self.model.decode(gt.tensor(ids), self.context)[:, -1]
        new = gt.tensor(np.ascontiguousarray(ids[:, self.cache.seq_len:]))
        return self.model.decode(new, self.context, self.cache)[:, -1]

    def reorder(self, rows):
        if self.cache is not None:
            self.cache.reorder(gt.tensor(rows))


def check_images(images, channels, size):
    """``images`` (B, H, W) (one channel) or (B, C, H, W), floating point, as a float32 gt tensor
    (B, C, H, W); one-line ValueError / TypeError naming the shape and what was expected."""
    x = input_tensor(images, "PixelLLM", "images", "floating-point pixels")
    H, W = size
    want = f"(batch, {channels}, {H}, {W})" if channels > 1 else f"(batch, {H}, {W}) or (batch, 1, {H}, {W})"
    shape = tuple(x.shape)
    if x.ndim == 3 and channels == 1:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != (channels, H, W) or x.shape[0] == 0:
        raise ValueError(f"PixelLLM: expected images of shape {want}, got {shape}")
    if not x.dtype.is_floating_point:
        raise TypeError(f"PixelLLM: expected floating-point images (pixels in [0, 1]), got {x.dtype!r}; scale "
                        f"integer images first, e.g. images.astype(np.float32) / 255")
    return x if x.dtype == gt.float32 else x.to(gt.float32)


def create_pixel_llm(vocab_size, **overrides):
    """A ``PixelLLM`` of ``PixelLLMConfig(vocab_size=vocab_size, **overrides)``."""
    return PixelLLM(PixelLLMConfig(vocab_size=vocab_size, **overrides))
