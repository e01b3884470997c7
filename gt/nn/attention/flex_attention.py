"""torch's ``torch.nn.attention.flex_attention``, computed eagerly from gt's ops: attention with a
user's score function (``score_mod``) and mask (``block_mask``), gradients from gt's autograd.

    >>> from gt.nn.attention.flex_attention import flex_attention, create_block_mask
    >>> causal = create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, 10, 10)
    >>> q = k = v = gt.randn(2, 4, 10, 16)
    >>> flex_attention(q, k, v, block_mask=causal).shape
    (2, 4, 10, 16)

The block mask above is made with B/H None and used for 2 batches and 4 heads: as in torch's
kernels, its block tables (of b = h = 0) pick the blocks, full blocks are attended whole and
``mask_mod`` runs on the query's actual b and h inside partial blocks, so a mask_mod reading b or
h (document ids per batch row) is honoured. torch 2.13's eager path ignores the tables and
evaluates ``mask_mod`` everywhere; both agree where the tables fit ``mask_mod`` (always for a mask
made on the query's B and H; for ``from_kv_blocks`` tables only torch's kernels honour them).
"""

import math
import warnings
from typing import NamedTuple, TypedDict

from gt import dtypes
from gt.nn.attention.block_mask import (_LARGE_SPARSE_BLOCK_SIZE, BlockMask, _sliced_mask_mod_error,  # noqa: F401
                                        and_masks, create_block_mask, create_mask, full_grid, index_grids, noop_mask,
                                        or_masks)
from gt.nn.core_functions import scaled_dot_product_attention
from gt.tensor import Tensor

__all__ = ["BlockMask", "flex_attention", "AuxOutput", "AuxRequest", "FlexKernelOptions", "create_block_mask",
           "create_mask", "or_masks", "and_masks", "noop_mask"]

_BACKENDS = ("AUTO", "TRITON", "FLASH", "TRITON_DECODE")
_warned = set()


class FlexKernelOptions(TypedDict, total=False):
    """torch's tuning options for its fused kernels (``BACKEND``, block sizes, ...). gt computes
    eagerly and reads none of them; a ``BACKEND`` outside torch's names is refused as torch does."""


class AuxRequest(NamedTuple):
    """Which extra outputs ``flex_attention(..., return_aux=)`` returns."""

    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """The extra outputs of ``flex_attention``: (B, Hq, L) tensors, None where not requested."""

    lse: Tensor | None = None
    max_scores: Tensor | None = None


def _check_tensors(query, key, value):
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"flex_attention: {name} must be a gt.Tensor, got {type(t).__name__}")
    if query.dtype != key.dtype or query.dtype != value.dtype:
        raise ValueError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                         f"{query.dtype}, key.dtype: {key.dtype}, and value.dtype: {value.dtype} instead.")
    if not query.dtype.is_floating_point:
        raise ValueError(f"flex_attention: query, key and value must be floating point, got {query.dtype}")
    if query.device != key.device or query.device != value.device:
        raise ValueError(f"Expected query, key, and value to have the same device type, but got query.device: "
                         f"{query.device}, key.device: {key.device}, and value.device: {value.device} instead.")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(f"Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                         f"{query.ndim}, key.dim: {key.ndim} and value.dim: {value.ndim} instead.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"Expect query and key/value to have the same embedding dimension but got "
                         f"E={query.shape[-1]} and E={key.shape[-1]}.")
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    if key.shape[:3] != value.shape[:3]:
        raise ValueError(f"flex_attention: key (B, Hkv, S, E) and value (B, Hkv, S, Ev) must agree on B, Hkv "
                         f"and S, got key {key.shape} and value {value.shape}")


def _check_heads_and_batch(query, key, enable_gqa, block_mask):
    Hq, Hkv = query.shape[1], key.shape[1]
    if not enable_gqa and Hq != Hkv:
        raise ValueError(f"Expect query and key/value to have the same number of heads but got Hq={Hq} and "
                         f"Hkv={Hkv}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and (Hkv == 0 or Hq % Hkv):
        raise ValueError(f"Expect number of query heads to be a multiple of kv heads for GQA but got Hq={Hq} "
                         f"and Hkv={Hkv}.")
    Bq, Bkv = query.shape[0], key.shape[0]
    if Bq != Bkv:
        if block_mask is None:
            raise ValueError(f"Expect query and key/value to have the same batch size, or non-none block_mask, "
                             f"but got block_mask=None, Bq={Bq}, and Bkv={Bkv}.")
        if block_mask.kv_num_blocks.shape[0] != Bq:
            raise ValueError(f"Expect query and key/value to have the same batch size, or block_mask and query to "
                             f"have the same batch size, but got Bq={Bq}, Bkv={Bkv}, "
                             f"B_block_mask={block_mask.kv_num_blocks.shape[0]}.")
        if Bkv != 1:
            raise RuntimeError(f"Bq and Bkv must broadcast. Got Bq={Bq} and Bkv={Bkv}")


def _check_block_mask(block_mask, query, key):
    if not isinstance(block_mask, BlockMask):
        raise TypeError(f"flex_attention: block_mask must be a BlockMask (create_block_mask), got "
                        f"{type(block_mask).__name__}")
    if block_mask.mask_mod is _sliced_mask_mod_error:
        raise RuntimeError("Cannot use mask_mod from a sliced BlockMask")
    L, S = query.shape[2], key.shape[2]
    mL, mS = block_mask.seq_lengths
    if block_mask.BLOCK_SIZE == (_LARGE_SPARSE_BLOCK_SIZE, _LARGE_SPARSE_BLOCK_SIZE):
        pass     # torch's mask that is no mask: one block over any lengths, its seq_lengths unread
    elif L > mL or S > mS:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} and "
                         f"kv_len={S}. As the block mask was created for a smaller length than you're using it "
                         f"for, you likely need to create a new block mask.")
    elif (L, S) != (mL, mS):
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} and "
                         f"kv_len={S}. As the block mask was created for a larger length than you're using it "
                         f"for, you can either 1. create a new block mask with the correct length, or 2. "
                         f"'adjust' the existing block mask to the correct length by calling "
                         f"block_mask._adjust(q_len, kv_len). This essentially 'crops' the block mask to the "
                         f"upper left corner, which does not work for all mask_mods!")
    # torch's kernel reads block (b, h) of the tables, so a mask made for more batches or heads is
    # used in its first ones (as torch's); one made for fewer than the query's, but not 1, is refused
    for axis, name in ((0, "batch size"), (1, "number of query heads")):
        n = block_mask._batch_heads()[axis]
        if n < query.shape[axis] and n != 1:
            raise ValueError(f"flex_attention: block_mask has {name} {n}, the query "
                             f"{query.shape[axis]}; make the mask with {query.shape[axis]} or None (broadcast)")
    if block_mask.kv_num_blocks.device != query.device:
        raise RuntimeError(f"Expect q/k/v and block_mask to be on the same device but got {query.device} and "
                           f"{block_mask.kv_num_blocks.device}.")


def _check_options(score_mod, scale, return_lse, kernel_options, return_aux):
    if score_mod is not None and not callable(score_mod):
        raise TypeError(f"flex_attention: score_mod must be callable (score, b, h, q_idx, kv_idx) -> score, got "
                        f"{type(score_mod).__name__}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))):
        raise TypeError(f"flex_attention: scale must be a float or None, got {scale!r}")
    if return_aux is not None and not isinstance(return_aux, AuxRequest):
        raise TypeError(f"flex_attention: return_aux must be an AuxRequest or None, got {type(return_aux).__name__}")
    if return_lse and return_aux is not None:
        raise ValueError("Cannot specify both return_lse and return_aux. return_lse is deprecated, please use "
                         "return_aux=AuxRequest(lse=True) instead.")
    if kernel_options is not None:
        if not isinstance(kernel_options, dict):
            raise TypeError(f"flex_attention: kernel_options must be a dict or None, got "
                            f"{type(kernel_options).__name__}")
        if "BACKEND" in kernel_options and kernel_options.get("FORCE_USE_FLEX_ATTENTION", False):
            raise RuntimeError("BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION. BACKEND supersedes "
                               "the legacy knob; please drop FORCE_USE_FLEX_ATTENTION and only specify the desired "
                               "BACKEND.")
        if "BACKEND" in kernel_options and kernel_options["BACKEND"] not in _BACKENDS:
            raise ValueError(f"Invalid BACKEND value '{kernel_options['BACKEND']}'. Must be one of {_BACKENDS}")


def _scores(query, key, scale, score_mod, mask):
    """(B, H, L, S) scores after ``score_mod`` and the mask (-inf where masked), in torch's working
    precision: float64 for float64 inputs, float32 for every other; a ``score_mod`` that gives
    another float dtype keeps it (torch's eager softmax and lse are then in it)."""
    work = dtypes.float64 if query.dtype == dtypes.float64 else dtypes.float32
    q, k = (t if t.dtype == work else t.to(work) for t in (query, key))
    scores = (q @ k.transpose(-2, -1)) * scale
    if score_mod is not None:
        shape = tuple(scores.shape)
        scores = full_grid(score_mod(scores, *index_grids(*shape, device=scores.device)), shape, scores.device)
        if not scores.dtype.is_floating_point:
            scores = scores.to(work)
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


# torch's signature, argument checks in torch's order (each before any work), then one composed computation
def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None, enable_gqa=False,
                   return_lse=False, kernel_options=None, *, return_aux=None):
    """torch's ``flex_attention``: ``softmax(score_mod(query @ key^T * scale) masked by block_mask) @ value``.

    query (B, Hq, L, E), key (B, Hkv, S, E), value (B, Hkv, S, Ev) -> (B, Hq, L, Ev). ``scale``
    defaults to 1/sqrt(E). ``score_mod(score, b, h, q_idx, kv_idx)`` is called once, vectorised:
    ``score`` is the (B, Hq, L, S) scores (float32, or float64 for float64 inputs), the indices int64
    tensors of shapes (B, 1, 1, 1), (1, Hq, 1, 1), (1, 1, L, 1), (1, 1, 1, S), so a function written
    with tensor ops (arithmetic, ``gt.where``, ``bias[h]``, ``rel_pos[q_idx - kv_idx]``) gives
    torch's values, and gradients flow to the tensors it captures (a learned bias). ``block_mask``
    (``create_block_mask``, ``BlockMask.from_kv_blocks``, a slice ``block_mask[...]`` given a
    mask_mod) is applied by torch's kernel rule: full blocks whole, mask_mod on the query's actual
    b and h inside partial blocks, nothing elsewhere (``BlockMask.mask_for``); for a mask made by
    create_block_mask on the query's B and H that is mask_mod everywhere. ``enable_gqa=True``
    repeats each key/value head for Hq / Hkv query heads. ``return_aux=AuxRequest(lse=True,
    max_scores=True)`` adds the (B, Hq, L) natural-log log-sum-exp and row maximum of the final
    scores (``return_lse=True``, deprecated in torch with a FutureWarning, returns the lse alone;
    torch 2.13 gives ``max_scores`` on GPUs only, gt on every device). A query with no key left
    gets zeros, an lse of -inf (torch's) and a maximum of -inf, and zero gradients.

    Cost: this is torch's eager (unfused) form: one (B, Hq, L, S) score tensor and its softmax,
    as gt's composed attention; the block mask skips no work (no block-sparse speed-up). Without
    ``score_mod`` and extra outputs, float32/float64 inputs go through gt's fused
    ``scaled_dot_product_attention`` with the dense mask. Unlike torch 2.13 on the CPU, which
    refuses inputs that need gradients, gt gives gradients for query, key, value and captured
    tensors on every device; ``kernel_options`` are accepted and unused."""
    _check_tensors(query, key, value)
    _check_heads_and_batch(query, key, enable_gqa, block_mask)
    if block_mask is not None:
        _check_block_mask(block_mask, query, key)
    _check_options(score_mod, scale, return_lse, kernel_options, return_aux)
    if return_lse and "return_lse" not in _warned:
        _warned.add("return_lse")
        warnings.warn("return_lse is deprecated and will be removed in v2.10. Please use "
                      "return_aux=AuxRequest(lse=True) instead.", FutureWarning, stacklevel=2)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    want_max = return_aux is not None and return_aux.max_scores
    mask = None if block_mask is None else block_mask.mask_for(*query.shape[:2], query.shape[2], key.shape[2])
    if (score_mod is None and not want_lse and not want_max and key.shape[2]
            and query.dtype in (dtypes.float32, dtypes.float64)):
        out = scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale, enable_gqa=enable_gqa)
        return out if return_aux is None else (out, AuxOutput())
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    if key.shape[0] != query.shape[0]:
        key, value = (t.expand(query.shape[0], *t.shape[1:]) for t in (key, value))
    scores = _scores(query, key, scale, score_mod, mask)
    dead = (scores == float("-inf")).all(-1, keepdim=True)
    safe = scores.masked_fill(dead, 0.0)     # a row with no key: zeros, not softmax's NaN (torch's safe softmax)
    weights = safe.softmax(-1).masked_fill(dead, 0.0)
    out = weights.to(query.dtype) @ value
    lse = safe.logsumexp(-1).masked_fill(dead.squeeze(-1), float("-inf")) if want_lse else None
    max_scores = scores.amax(-1) if want_max else None
    if return_aux is not None:
        return out, AuxOutput(lse=lse, max_scores=max_scores)
    return (out, lse) if return_lse else out
