"""The Pixel Transformer: a transformer whose tokens are whole images.

A sequence of S grayscale images of H x W pixels is S tokens of P = H*W values each:

    images (B, S, H, W) -> flatten (B, S, P) -> embed Linear(P, D) -> + positional encodings
    -> num_layers pre-norm TransformerBlocks -> LayerNorm -> mean over S -> head Linear(D, C)

``encode`` stops before the mean: (B, S, D) features, so the model can serve as the image encoder
of another model; ``pool="none"`` and ``head=None`` shape what ``forward`` returns. ``pool="cls"``
classifies from a learned class token put before the frames instead of the mean (ViT's way).

    >>> model = PixelTransformer(img_size=16, embed_dim=32, num_heads=4, num_layers=2,
    ...                          ff_dim=64, num_classes=4, max_seq_len=8)
    >>> model(gt.randn(2, 5, 16, 16)).shape
    (2, 4)

The state-dict keys and shapes are a public interface with PyTorch layouts (see the class
docstring); the building blocks are gt.nn's and are re-exported here for code written
against the seed project (``from lpm.model import PixelTransformer, TransformerBlock``).
"""

import math
from dataclasses import dataclass, fields, replace

import numpy as np

import gt
from gt import nn
from gt.nn import FeedForward, LayerNorm, MultiHeadAttention, TransformerBlock  # noqa: F401  (re-exported)

__all__ = ["PixelTransformer", "PixelTransformerConfig", "sinusoidal_encoding",
           "LayerNorm", "MultiHeadAttention", "FeedForward", "TransformerBlock"]

POS_ENCODINGS = ("sinusoidal", "learned")
ACTIVATIONS = ("relu", "gelu")
POOLS = ("mean", "cls", "none")   # forward's reduction of the S token features (cls: a class token's)
CLS_INIT_STD = 0.02            # the class token's init: trunc_normal_(std=0.02), as DeiT's and timm's ViT
HEADS = ("linear", None)       # forward's head: Linear(D, C), or none (forward returns the features)


@dataclass(frozen=True)
class PixelTransformerConfig:
    """Hyperparameters of a ``PixelTransformer``; checked on creation.

        >>> PixelTransformerConfig(embed_dim=30, num_heads=4)
        Traceback (most recent call last):
        ...
        ValueError: PixelTransformer: embed_dim (30) must be divisible by num_heads (4)
    """

    img_size: int = 200        # images are img_size x img_size; a token has img_size**2 values
    embed_dim: int = 256       # D, the width of the residual stream
    num_heads: int = 4
    num_layers: int = 4
    ff_dim: int = 1024         # F, the hidden width of each feed-forward network
    num_classes: int = 10      # C
    max_seq_len: int = 32      # the longest image sequence the model accepts
    dropout: float = 0.0
    pos_encoding: str = "sinusoidal"   # or "learned" (a trainable (max_seq_len, D) table, starting sinusoidal)
    activation: str = "relu"           # of the feed-forward networks; or "gelu"
    pool: str = "mean"                 # "mean" over the S tokens, "cls": a class token's output, or "none":
                                       # per-token outputs (B, S, ...)
    head: str | None = "linear"        # a Linear(D, num_classes) head, or None: forward returns features

    def __post_init__(self):
        for name in ("img_size", "embed_dim", "num_heads", "ff_dim", "num_classes", "max_seq_len", "num_layers"):
            _check_int(name, getattr(self, name), minimum=0 if name == "num_layers" else 1)
            object.__setattr__(self, name, int(getattr(self, name)))   # numpy ints too, stored as int (JSON)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"PixelTransformer: embed_dim ({self.embed_dim}) must be divisible by "
                             f"num_heads ({self.num_heads})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"PixelTransformer: dropout must be a number in [0, 1), got {self.dropout!r}")
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"PixelTransformer: pos_encoding must be one of {POS_ENCODINGS}, "
                             f"got {self.pos_encoding!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"PixelTransformer: activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not isinstance(self.pool, str) or self.pool not in POOLS:
            raise ValueError(f"PixelTransformer: pool must be one of {POOLS}, got {self.pool!r}")
        if self.head is not None and (not isinstance(self.head, str) or self.head not in HEADS):
            raise ValueError(f"PixelTransformer: head must be 'linear' or None, got {self.head!r}")


def _check_int(name, value, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"PixelTransformer: {name} must be an int >= {minimum}, got {value!r}")


def input_tensor(values, model, what, want):
    """``values`` (a numpy array, a torch tensor, nested lists) as a gt tensor, for the forward of
    each lpm model (this one, lpm.ppt's and lpm.caption's); a ``TypeError`` naming ``model``, the
    argument (``what``) and what it takes (``want``) where they are not numbers (None, text,
    ragged lists). A gt tensor is returned as it is, and integers stay integers: each model tells
    a wrong dtype in its own words."""
    if isinstance(values, gt.Tensor):
        return values
    try:
        return gt.tensor(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{model}: {what} must be an array or a gt tensor of {want}, got {type(values).__name__} "
                        f"({exc})") from None


def _config(config, args, overrides):
    """The ``PixelTransformerConfig`` of ``PixelTransformer(config=None, *args, **overrides)``:
    ``config`` (or the defaults) with ``overrides``; hyperparameters given by position (the
    field order: ``img_size, embed_dim, ...``) are accepted too, as ``nn.Module`` users expect."""
    if config is not None and not isinstance(config, PixelTransformerConfig):
        config, args = None, (config, *args)       # PixelTransformer(200, 256, ...): img_size first
    names = [f.name for f in fields(PixelTransformerConfig)]
    if len(args) > len(names):
        raise TypeError(f"PixelTransformer takes at most {len(names)} hyperparameters by position, got {len(args)}")
    for name, value in zip(names, args):
        if name in overrides:
            raise TypeError(f"PixelTransformer got multiple values for {name!r}")
        overrides[name] = value
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"PixelTransformer got an unexpected keyword argument {unknown[0]!r}")
    return replace(config or PixelTransformerConfig(), **overrides)


def sinusoidal_encoding(max_seq_len, dim):
    """The original Transformer's fixed encodings as a (max_seq_len, dim) float32 tensor:
    ``PE[pos, 2i] = sin(pos / 10000**(2i/dim))``, ``PE[pos, 2i+1] = cos(pos / 10000**(2i/dim))``.

        >>> pe = sinusoidal_encoding(4, 6)
        >>> pe.shape, pe[0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
        ((4, 6), True)
    """
    # A constant table built once, in float64 Python math, then stored as float32.
    rows = []
    for pos in range(max_seq_len):
        row = []
        for j in range(dim):
            angle = pos / 10000 ** ((j - j % 2) / dim)   # j - j % 2 is the "2i" shared by a sin/cos pair
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return gt.tensor(rows, dtype=gt.float32)


class PixelTransformer(nn.Module):
    """Classifies sequences of images: (B, S, H, W) or (B, S, H*W) -> logits (B, num_classes).

    ``forward(x)`` is ``head(pool(encode(x)))``: ``encode`` gives the (B, S, D) token features
    after the final LayerNorm; ``pool`` averages them over S (``pool="mean"``, the default) or
    keeps them (``pool="none"``); ``head`` is the Linear(D, C) classifier, absent with
    ``head=None``, where ``forward`` returns the pooled features, (B, D) or (B, S, D).

    ``pool="cls"`` is ViT's class token: a learned ``cls_token`` (1, 1, D) goes before the S
    embedded frames, at position 0 of the positional encodings (sinusoidal or learned, as
    ``pos_encoding`` says), the frames at 1..S; ``encode`` then gives (B, 1 + S, D), the token
    first, and ``pool`` takes its final state (after the final LayerNorm), (B, D). The position
    table has ``max_seq_len + 1`` rows, so ``max_seq_len`` frames still fit. The token starts as
    ``trunc_normal_(std=0.02)`` (DeiT's and timm's ViT; the scale of the learned positions here),
    drawn after every other weight: with sinusoidal positions the rest of the model starts as
    the mean-pooled model of the same seed does.

    ``PixelTransformer(config=None, **overrides)``: the hyperparameters of a
    ``PixelTransformerConfig`` (its defaults without one), each field overridable by keyword,
    e.g. ``PixelTransformer(img_size=16, embed_dim=32)``.

    Accepts gt tensors or numpy arrays of floating-point pixels (numpy arrays are converted to the
    weights' dtype, float32 unless the model was converted; a gt tensor of another dtype is a
    RuntimeError naming the conversion, as torch's ``nn.Linear`` refuses one). Integer or
    boolean images (e.g. uint8 in 0-255) are refused with a ``TypeError``, as a PyTorch model
    refuses them: scale them first, ``images.astype(np.float32) / 255``, as torchvision's
    ``ToTensor`` does. State dict (D = embed_dim,
    P = img_size**2, F = ff_dim, C = num_classes)::

        embed.weight (D, P)   embed.bias (D)
        pos_embedding (max_seq_len, D)                      only with pos_encoding="learned"
                                                            ((max_seq_len + 1, D) with pool="cls")
        cls_token (1, 1, D)                                 only with pool="cls"
        blocks.{i}.ln1.weight (D)   blocks.{i}.ln1.bias (D)
        blocks.{i}.attn.{q_proj,k_proj,v_proj,out_proj}.weight (D, D)  .bias (D)
        blocks.{i}.ln2.weight (D)   blocks.{i}.ln2.bias (D)
        blocks.{i}.ff.fc1.weight (F, D)  .fc1.bias (F)  .fc2.weight (D, F)  .fc2.bias (D)
        norm.weight (D)   norm.bias (D)
        head.weight (C, D)   head.bias (C)                 not with head=None

    The fixed sinusoidal table is a non-persistent buffer: not in the state dict. The learned
    ``pos_embedding`` starts as that table (no random draw), so a learned model starts as the
    sinusoidal model of the same seed does and then tunes its positions. With
    ``dropout > 0`` dropout also acts on the embedded tokens (nanoGPT's habit) and inside each
    block; at the default 0 the model is exactly the pipeline above.

        >>> model = PixelTransformer(img_size=8, embed_dim=16, num_heads=2, num_layers=1,
        ...                          ff_dim=32, num_classes=3, pos_encoding="learned")
        >>> list(model.state_dict())[:3]     # the model's own parameter first, as in torch
        ['pos_embedding', 'embed.weight', 'embed.bias']
    """

    def __init__(self, config=None, *args, **overrides):
        super().__init__()
        self.config = cfg = _config(config, args, overrides)
        D = cfg.embed_dim
        positions = cfg.max_seq_len + (cfg.pool == "cls")      # the class token takes position 0
        self.embed = nn.Linear(cfg.img_size ** 2, D)
        if cfg.pos_encoding == "learned":
            # Starts as the sinusoidal table, so the frames' order counts from the first step. The
            # usual N(0, 0.02^2) start (nanoGPT's, ViT's) sits below how much the embedded frames of
            # one sequence differ (about 0.06 RMS on the blobs) and SGD moves the table only about
            # 0.006 RMS in the default budget: that model stayed order-blind (52% held out, right
            # and left at chance). No random draw: the rest starts as the sinusoidal model's.
            self.pos_embedding = nn.Parameter(sinusoidal_encoding(positions, D))
        else:
            self.register_buffer("pos_encoding", sinusoidal_encoding(positions, D), persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([
            TransformerBlock(D, cfg.num_heads, cfg.ff_dim, dropout=cfg.dropout, activation=cfg.activation)
            for _ in range(cfg.num_layers)])
        self.norm = LayerNorm(D)
        self.head = nn.Linear(D, cfg.num_classes) if cfg.head == "linear" else None
        if cfg.pool == "cls":
            self.cls_token = nn.Parameter(gt.zeros(1, 1, D))
            nn.init.trunc_normal_(self.cls_token, std=CLS_INIT_STD)

    @classmethod
    def from_config(cls, config):
        """Build a model from a ``PixelTransformerConfig`` (the same as ``PixelTransformer(config)``)."""
        return cls(config)

    def forward(self, images):
        x = self.pool(self.encode(images))
        return x if self.head is None else self.head(x)    # (B, D) -> (B, C)

    def encode(self, images):
        """The token features of ``images`` (checked as ``forward`` checks them): (B, S, D), after the
        transformer blocks and the final LayerNorm, before any pooling or head; with ``pool="cls"``
        (B, 1 + S, D), the class token's first."""
        x = self.check_input(images, finite=False)
        B, S, P = x.shape
        pos = self.pos_embedding if self.config.pos_encoding == "learned" else self.pos_encoding
        tokens = self.embed(x)             # (B, S, P) @ (P, D) -> (B, S, D)
        if not gt.checks.deferred():
            self._check_finite(x, tokens)
        if self.config.pool == "cls":      # (B, 1 + S, D): the token at position 0, the frames after it
            tokens = gt.cat([self.cls_token.expand(B, 1, self.config.embed_dim), tokens], dim=1)
        x = tokens + pos[:tokens.shape[1]]  # + (S, D) broadcast
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)                   # (B, S, D): x + attn(ln1(x)), then x + ff(ln2(x))
        return self.norm(x)

    def pool(self, features):
        """``features`` (B, S, D) reduced as the ``pool`` option says: the mean over S -> (B, D), the
        class token's (``encode``'s first) -> (B, D), or as they are."""
        if self.config.pool == "cls":
            return features[:, 0]
        return features.mean(axis=1) if self.config.pool == "mean" else features

    def check_input(self, images, finite=True):
        """Validate ``images`` and return them as a float (B, S, P) gt tensor; ValueError if bad.

        Everything is checked before any compute: the dtype (floating point), the number of axes,
        the image size, an empty batch or sequence, a sequence longer than ``max_seq_len``, and
        (``finite=True``) non-finite pixels. ``forward`` passes ``finite=False`` and checks the
        pixels on the embedding's output instead, which is finite exactly when they are
        (``_check_finite``): no extra pass over the images.
        """
        cfg = self.config
        x = input_tensor(images, "PixelTransformer", "images", "floating-point pixels (batch, seq, H, W)")
        if not x.dtype.is_floating_point:
            # A guess at the range (255? 65535? already 0/1?) would train silently on wrong pixels.
            source = getattr(images, "dtype", x.dtype)
            raise TypeError(f"PixelTransformer: expected floating-point images (pixels in [0, 1]), got {source} "
                            f"values; scale integer images first, e.g. images.astype(np.float32) / 255 for uint8 "
                            f"(images.float() / 255 for a gt tensor), as torchvision's ToTensor does")
        x = self._input_dtype(x, isinstance(images, gt.Tensor))
        P = cfg.img_size ** 2
        if x.ndim == 4:
            if tuple(x.shape[2:]) != (cfg.img_size, cfg.img_size):
                raise ValueError(f"PixelTransformer: expected images of {cfg.img_size}x{cfg.img_size} pixels, "
                                 f"got input of shape {x.shape} (images of {x.shape[2]}x{x.shape[3]})")
        elif x.ndim == 3:
            if tuple(x.shape[1:]) == (cfg.img_size, cfg.img_size) and P != cfg.img_size:
                # (batch, H, W): single images, not sequences; "flattened images" would mislead
                raise ValueError(f"PixelTransformer: expected sequences of images (batch, seq, {cfg.img_size}, "
                                 f"{cfg.img_size}), got {x.shape}: images without a sequence axis (add one: "
                                 f"images[:, None] for sequences of one image)")
            if x.shape[2] != P:
                raise ValueError(f"PixelTransformer: flattened images must have img_size**2 = {P} values, "
                                 f"got input of shape {x.shape}")
        else:
            raise ValueError(f"PixelTransformer: expected input of shape (batch, seq, {cfg.img_size}, "
                             f"{cfg.img_size}) or (batch, seq, {P}), got {x.ndim} dimension(s): {x.shape}")
        B, S = x.shape[:2]
        if B == 0:
            raise ValueError(f"PixelTransformer: empty batch (input of shape {x.shape})")
        if S == 0:
            raise ValueError(f"PixelTransformer: empty image sequence (input of shape {x.shape})")
        if S > cfg.max_seq_len:
            raise ValueError(f"PixelTransformer: sequence of {S} images is longer than max_seq_len="
                             f"{cfg.max_seq_len}")
        x = x.reshape(B, S, P)             # (B, S, H, W) -> (B, S, P); a view when already flat
        if gt.checks.deferred():
            # On GPUs the verdict stays on the device until the host next reads a value (a
            # training step must not wait for the GPU): min and max, NaN-propagating, decide.
            with gt.no_grad():
                lo, hi = x.min(), x.max()
                gt.checks.require((lo > -math.inf) & (hi < math.inf), ValueError, lambda: (
                    f"PixelTransformer: images contain non-finite pixel values (min {lo.item()}, max {hi.item()})"))
            return x
        if finite:
            # One pass over the pixels: the sum of each image (a BLAS matrix-vector product, a
            # third of the time of reading min and max) is finite only if its pixels are.
            with gt.no_grad():
                self._check_finite(x, x @ self._ones(P, x.dtype))
        return x

    @staticmethod
    def _check_finite(x, mixed):
        """ValueError if ``x`` (B, S, P) holds a non-finite pixel. ``mixed`` is a linear map of
        the pixels (an image sum, the embedding's output): NaN and inf propagate through products
        and sums (even ``inf * 0`` is NaN), so it is finite whenever the pixels are, and a
        non-finite pixel makes it non-finite. Where it is not finite (a bad pixel, or huge pixels
        or weights overflowing), min and max decide: they are NaN or infinite exactly when some
        pixel is."""
        with gt.no_grad():
            if math.isfinite(mixed.abs().max().item()):
                return
            lo, hi = x.min().item(), x.max().item()
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"PixelTransformer: images contain non-finite pixel values (min {lo}, max {hi})")

    def _input_dtype(self, x, given_as_tensor):
        """Floating-point images ``x`` in the dtype of the model's weights. An array (numpy, lists)
        is converted, as ``torch.as_tensor(array, dtype=...)`` would be before the call; a gt tensor
        of another dtype is refused as torch's ``nn.Linear`` refuses it ("mat1 and mat2 must have
        the same dtype"), the fix named: converting it here would hide a float64 pipeline paying
        for a conversion each step, or a half one losing what it asked for. Under autocast the
        products pick their own dtype (float64 stays refused, as torch's autocast leaves it)."""
        weight = self.embed.weight
        # (a dynamically quantized embedding's weight is a method, as torch's; it takes float32 images)
        want = weight.dtype if isinstance(weight, gt.Tensor) else gt.float32
        if x.dtype == want:
            return x
        if not given_as_tensor:
            return x.to(want)
        if gt.is_autocast_enabled() and x.dtype != gt.float64:
            return x
        fix = {gt.float32: ".float()", gt.float64: ".double()", gt.float16: ".half()"}.get(want, f".to({want!r})")
        back = {gt.float32: ".float()", gt.float64: ".double()", gt.float16: ".half()"}.get(x.dtype)
        raise RuntimeError(f"PixelTransformer: images are {x.dtype!r} but the model's weights are {want!r} (a "
                           f"Linear takes one dtype, as torch's: mat1 and mat2 must have the same dtype): convert "
                           f"the images, images{fix}" + (f", or the model, model{back}" if back else ""))

    def _ones(self, n, dtype):
        """A (n, 1) column of ones, made once per dtype, whole on every device (so the image
        sums of a sharded batch stay sharded). Made as one row, which is never split over the
        devices, then reshaped: no collective."""
        cache = self.__dict__.setdefault("_ones_cache", {})
        key = (n, dtype)
        if key not in cache:
            cache[key] = gt.ones(1, n, dtype=dtype).reshape(n, 1)
        return cache[key]

    def extra_repr(self):
        c = self.config
        return (f"img_size={c.img_size}, embed_dim={c.embed_dim}, num_heads={c.num_heads}, "
                f"num_layers={c.num_layers}, ff_dim={c.ff_dim}, num_classes={c.num_classes}, "
                f"max_seq_len={c.max_seq_len}, pos_encoding={c.pos_encoding!r}"
                + (f", pool={c.pool!r}" if c.pool != "mean" else "") + (", head=None" if c.head is None else ""))
