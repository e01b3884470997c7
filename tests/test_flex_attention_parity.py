"""``gt.nn.attention.flex_attention`` beside torch 2.13's ``torch.nn.attention.flex_attention``.

Values and the log-sum-exp are compared with torch's own ``flex_attention`` on the CPU, run through
its eager reference path (``_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG``: torch's ``math_attention``; the
default path compiles a CPU kernel per mask, seconds a call). torch 2.13 refuses gradients for
query/key/value on the CPU, so gradients are compared with the same attention written in torch
ops (scores, ``score_mod`` and mask on broadcast index tensors, torch's safe softmax, ``@ value``)
and torch autograd. Block masks (tables, ``to_dense``, ``sparsity``, ``repr``) and ``create_mask``
are compared with torch's, and the argument errors with torch's type and message. A mask made with
B/H None whose mask_mod reads b or h is compared with torch's kernel rule built from torch's own
block tables (its eager path ignores the tables, so there it agrees only where they fit every b, h)."""

import warnings

import numpy as np
import pytest

import gt
from gt.nn.attention import flex_attention as gfa
from helpers import randn, torch_or_skip

torch = torch_or_skip()
tfa = pytest.importorskip("torch.nn.attention.flex_attention")

TOL = {"float32": dict(rtol=1e-5, atol=1e-6), "float64": dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(autouse=True)
def torch_eager_flex(monkeypatch):
    monkeypatch.setattr(tfa, "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG", True)


def causal(b, h, q, k):
    return q >= k


def _grids(B, H, L, S):
    return tuple(torch.arange(n).reshape([n if i == a else 1 for i in range(4)])
                 for a, n in enumerate((B, H, L, S)))


def _torch_reference(q, k, v, score_mod, mask_mod, scale, gqa):
    """Attention in torch ops with flex's rules: (out, lse)."""
    if gqa:
        k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], dim=1) for t in (k, v))
    s = (q @ k.transpose(-2, -1)) * scale
    idx = _grids(q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    if score_mod is not None:
        s = score_mod(s, *idx).expand(s.shape)
    if mask_mod is not None:
        s = s.masked_fill(~mask_mod(*idx).expand(s.shape), float("-inf"))
    dead = (s == float("-inf")).all(-1, keepdim=True)
    safe = s.masked_fill(dead, 0.0)
    return safe.softmax(-1).masked_fill(dead, 0.0) @ v, safe.logsumexp(-1).masked_fill(dead[..., 0], float("-inf"))


def check(mods, dtype, B=2, Hq=3, Hkv=None, L=6, S=7, E=5, Ev=4, mask_BH=(None, None), captured=(), scale=None,
          seed=0):
    """gt's flex_attention (with lse) against torch's values and against torch autograd's gradients of
    q, k, v and the ``captured`` arrays. ``mods(lib, *captured)`` -> (score_mod, mask_mod) for gt or torch."""
    Hkv = Hq if Hkv is None else Hkv
    arrays = [randn(B, Hq, L, E, seed=seed), randn(B, Hkv, S, E, seed=seed + 1), randn(B, Hkv, S, Ev, seed=seed + 2)]
    arrays = [a.astype(dtype) for a in arrays + [np.asarray(c) for c in captured]]
    g = [gt.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    t = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    (g_score, g_mask), (t_score, t_mask) = mods(gt, *g[3:]), mods(torch, *t[3:])
    gqa = Hkv != Hq
    g_bm = None if g_mask is None else gfa.create_block_mask(g_mask, *mask_BH, L, S, BLOCK_SIZE=4)
    t_bm = None if t_mask is None else tfa.create_block_mask(t_mask, *mask_BH, L, S, device="cpu", BLOCK_SIZE=4)
    out, aux = gfa.flex_attention(*g[:3], score_mod=g_score, block_mask=g_bm, scale=scale, enable_gqa=gqa,
                                  return_aux=gfa.AuxRequest(lse=True))
    plain = gfa.flex_attention(*g[:3], score_mod=g_score, block_mask=g_bm, scale=scale, enable_gqa=gqa)
    with torch.no_grad():
        plain_t = [x.detach() for x in t]
        want, want_aux = tfa.flex_attention(*plain_t[:3], score_mod=mods(torch, *plain_t[3:])[0], block_mask=t_bm, scale=scale, enable_gqa=gqa,
                                            return_aux=tfa.AuxRequest(lse=True))
    assert out.dtype == plain.dtype == aux.lse.dtype == getattr(gt, dtype)
    for got, ref in ((out, want), (plain, want), (aux.lse, want_aux.lse)):
        assert tuple(got.shape) == tuple(ref.shape)
        np.testing.assert_allclose(got.detach().numpy(), ref.numpy(), **TOL[dtype])
    ref_out, ref_lse = _torch_reference(*t[:3], t_score, t_mask, scale or E ** -0.5, gqa)
    np.testing.assert_allclose(out.detach().numpy(), ref_out.detach().numpy(), **TOL[dtype])
    up = [randn(*out.shape, seed=9).astype(dtype), randn(*aux.lse.shape, seed=10).astype(dtype)]
    finite = np.isfinite(aux.lse.detach().numpy())
    # both paths' gradients (with and without the lse): twice the reference's
    ((out + plain) * gt.tensor(up[0])).sum().add(
        (aux.lse.masked_fill(gt.tensor(~finite), 0.0) * gt.tensor(up[1])).sum()).backward()  # -inf: no gradient
    ((ref_out * torch.tensor(up[0])).sum() * 2 + (ref_lse.masked_fill(~torch.tensor(finite), 0)
                                                  * torch.tensor(up[1])).sum()).backward()
    for i, (a, b) in enumerate(zip(g, t)):
        if b.requires_grad and (a.grad is not None or b.grad is not None):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"gradient {i}", **TOL[dtype])
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_causal_mask(dtype):
    check(lambda lib: (None, causal), dtype, L=7, S=7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sliding_window_and_masks(dtype):
    def mods(lib):
        return None, gfa.and_masks(causal, lambda b, h, q, k: q - k <= 2) if lib is gt else \
            tfa.and_masks(causal, lambda b, h, q, k: q - k <= 2)
    check(mods, dtype, L=9, S=9)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relative_position_bias_with_captured_table(dtype):
    def mods(lib, table):     # a learned (heads, 2S-1) bias: its gradient is checked too
        return (lambda s, b, h, q, k: s + table[h, q - k + 6]), None
    check(mods, dtype, L=6, S=7, captured=[randn(3, 13, seed=5)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_alibi_with_causal_where(dtype):
    def mods(lib, slopes):
        return (lambda s, b, h, q, k: lib.where(q >= k, s + slopes[h] * (k - q), float("-inf"))), None
    check(mods, dtype, L=7, S=7, captured=[np.array([0.5, 0.25, 0.125])], scale=0.3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_document_masking_per_batch(dtype):
    docs = np.array([[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 1, 1, 1, 2, 2]])

    def mods(lib):
        doc = lib.tensor(docs)
        return None, lambda b, h, q, k: (doc[b, q] == doc[b, k]) & (q >= k)
    check(mods, dtype, L=8, S=8, mask_BH=(2, None))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_mod", [False, True])
def test_grouped_query_attention(dtype, with_mod):
    def mods(lib, per_head):     # a score_mod by query head: the heads must map as torch's
        return ((lambda s, b, h, q, k: s * per_head[h]) if with_mod else None), causal
    check(mods, dtype, Hq=4, Hkv=2, captured=[np.array([1.0, 0.5, 2.0, -1.0])], mask_BH=(None, 4))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_mod", [False, True])
def test_fully_masked_rows_give_zeros_and_an_lse_of_minus_inf(dtype, with_mod):
    def mods(lib):
        return ((lambda s, b, h, q, k: s * 2) if with_mod else None), lambda b, h, q, k: (q != 2) & (q + b != 4)
    out = check(mods, dtype, L=6, S=5, mask_BH=(2, None))
    assert not out.detach().numpy()[:, :, 2].any() and not np.isnan(out.detach().numpy()).any()
    _, (lse, _) = gfa.flex_attention(gt.zeros(1, 1, 2, 3), gt.zeros(1, 1, 2, 3), gt.zeros(1, 1, 2, 3),
                                score_mod=lambda s, b, h, q, k: gt.where(q == 0, float("-inf"), s),
                                return_aux=gfa.AuxRequest(lse=True))
    assert lse.numpy()[0, 0, 0] == float("-inf") and lse.numpy()[0, 0, 1] == pytest.approx(np.log(2), rel=1e-6)


def test_return_lse_warns_as_torch_and_max_scores():
    q, k, v = (gt.tensor(randn(1, 2, 4, 3, seed=i)) for i in range(3))
    gfa._warned.discard("return_lse")
    with pytest.warns(FutureWarning, match="return_lse is deprecated"):
        out, lse = gfa.flex_attention(q, k, v, return_lse=True)
    _, aux = gfa.flex_attention(q, k, v, return_aux=gfa.AuxRequest(max_scores=True))
    scores = (q @ k.transpose(-2, -1)).numpy() / np.sqrt(3)
    assert aux.lse is None
    np.testing.assert_allclose(aux.max_scores.numpy(), scores.max(-1), rtol=1e-6)
    np.testing.assert_allclose(lse.numpy(), np.log(np.exp(scores).sum(-1)), rtol=1e-5)
    assert gfa.flex_attention(q, k, v, return_aux=gfa.AuxRequest())[1] == (None, None)


@pytest.mark.parametrize("B,H,block", [(None, None, 128), (2, None, 2), (None, 3, (4, 2)), (2, 3, 3)])
def test_block_mask_beside_torchs(B, H, block):
    def mask(b, h, q, k):
        return (q >= k) & ((q - k) <= 4 + h) & (b + q != 6)
    got = gfa.create_block_mask(mask, B, H, 9, 11, BLOCK_SIZE=block)
    want = tfa.create_block_mask(mask, B, H, 9, 11, device="cpu", BLOCK_SIZE=block)
    assert got.shape == want.shape and got.BLOCK_SIZE == want.BLOCK_SIZE and got.mask_mod is mask
    assert got.to_dense().dtype == gt.int32
    np.testing.assert_array_equal(got.to_dense().numpy(), want.to_dense().numpy())
    for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                 "q_indices", "full_q_num_blocks", "full_q_indices"):
        np.testing.assert_array_equal(getattr(got, name).numpy(), getattr(want, name).numpy(), err_msg=name)
    assert got.sparsity() == pytest.approx(want.sparsity(), rel=1e-12)
    assert repr(got) == repr(want).replace("torch.Size([", "(").replace("])", ")").replace(", )", ",)")
    assert str(got) == str(want)
    np.testing.assert_array_equal(got.mask.numpy(), tfa.create_mask(mask, B, H, 9, 11, "cpu").numpy())
    cropped, want_cropped = got._adjust(5, 8), want._adjust(5, 8)
    assert cropped.shape == want_cropped.shape and cropped.mask_mod is mask
    # the positions attended are the top-left crop (torch's crop keeps its old block table, gt's is made anew)
    np.testing.assert_array_equal(cropped.mask.numpy(), got.mask.numpy()[:, :, :5, :8])


def test_create_mask_and_the_mask_combinators_beside_torchs():
    def score_mod(s, b, h, q, k):
        return torch.where(k > q, float("-inf"), s) if isinstance(s, torch.Tensor) else \
            gt.where(k > q, float("-inf"), s)
    pairs = [(score_mod, score_mod), (gfa.noop_mask, tfa.noop_mask),
             (gfa.or_masks(causal, lambda b, h, q, k: k == 4), tfa.or_masks(causal, lambda b, h, q, k: k == 4)),
             (gfa.or_masks(), tfa.or_masks()), (gfa.and_masks(), tfa.and_masks())]
    for g_mod, t_mod in pairs:
        got, want = gfa.create_mask(g_mod, 2, None, 5, 6), tfa.create_mask(t_mod, 2, None, 5, 6, "cpu")
        assert got.dtype == gt.bool and tuple(got.shape) == tuple(want.shape) == (2, 1, 5, 6)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def _error(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except Exception as exc:     # noqa: BLE001  (the type and message are what is compared)
        return type(exc), str(exc)
    return None


def _qkv(lib, q=(1, 2, 4, 3), k=(1, 2, 5, 3), v=(1, 2, 5, 3)):
    return [lib.tensor(randn(*s, seed=i).astype(np.float32)) for i, s in enumerate((q, k, v))]


@pytest.mark.parametrize("case", [
    dict(q=(2, 4, 3), k=(2, 5, 3), v=(2, 5, 3)),                 # rank 3
    dict(k=(1, 2, 5, 4)),                                        # embedding dims differ
    dict(k=(1, 3, 5, 3), v=(1, 3, 5, 3)),                        # heads differ, no enable_gqa
    dict(k=(1, 3, 5, 3), v=(1, 3, 5, 3), enable_gqa=True, q=(1, 4, 4, 3)),   # not a multiple
    dict(k=(2, 2, 5, 3), v=(2, 2, 5, 3)),                        # batch differs, no block mask
    dict(mask=(None, None, 4, 6)), dict(mask=(None, None, 3, 5)),   # a mask made for other lengths
    dict(mask=(2, None, 4, 5), q=(3, 2, 4, 3)),                  # batch differs from the mask's
    dict(return_lse=True, return_aux="aux"),
    dict(kernel_options={"BACKEND": "CUTLASS"}),
])
def test_errors_as_torchs(case):
    case = dict(case)
    shapes = {n: case.pop(n) for n in ("q", "k", "v") if n in case}
    mask = case.pop("mask", None)

    def call(lib, fa):
        kw = dict(case)
        if mask is not None:
            kw["block_mask"] = fa.create_block_mask(causal, *mask, **({"device": "cpu"} if lib is torch else {}))
        if kw.get("return_aux") == "aux":
            kw["return_aux"] = fa.AuxRequest(lse=True)
        return lambda: fa.flex_attention(*_qkv(lib, **shapes), **kw)
    want, got = _error(call(torch, tfa)), _error(call(gt, gfa))
    assert want is not None and got == want


def test_create_block_mask_refuses_a_score_mod_as_torch():
    def score_mod(s, b, h, q, k):
        return s
    want = _error(lambda: tfa.create_block_mask(score_mod, 1, 1, 4, 4, device="cpu"))
    got = _error(lambda: gfa.create_block_mask(score_mod, 1, 1, 4, 4))
    assert got[0] is want[0] is AssertionError and got[1].split("Got")[0] == want[1].split("Got")[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mask_depending_on_batch_and_head_made_with_B_H_none(dtype):
    # every block of (b, h) = (0, 0) is partial, so torch's kernels (tables) and its eager path (mask_mod on
    # every position) agree: mask_mod runs on the query's actual b and h, not on the mask's b = h = 0
    docs = np.array([[0] * 8, [0, 0, 1, 1, 1, 2, 2, 2]])

    def mods(lib):
        doc = lib.tensor(docs)
        return None, lambda b, h, q, k: ((q + k + h) % 3 != 0) & (doc[b, q] == doc[b, k])
    check(mods, dtype, B=2, Hq=3, L=8, S=8, mask_BH=(None, None))


def _table_mask(bm, mask_mod, B, H, L, S):
    """torch's kernel rule from torch's block tables: full blocks of (b', h') whole, partial ones where
    mask_mod on the actual (b, h, q, kv), the rest masked."""
    def dense(num, idx):
        if num is None:
            return torch.zeros((), dtype=torch.bool)
        blocks = torch.zeros(idx.shape, dtype=torch.bool).scatter_(
            -1, idx.long(), torch.arange(idx.shape[-1]) < num[..., None])
        blocks = blocks.repeat_interleave(bm.BLOCK_SIZE[0], dim=2).repeat_interleave(bm.BLOCK_SIZE[1], dim=3)
        return blocks[:, :, :L, :S]
    return dense(bm.full_kv_num_blocks, bm.full_kv_indices) | (
        dense(bm.kv_num_blocks, bm.kv_indices) & mask_mod(*_grids(B, H, L, S)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("separate_full_blocks", [True, False])
def test_broadcast_mask_follows_torchs_block_tables(dtype, separate_full_blocks):
    # blocks full or empty for (0, 0) but not for other (b, h): torch's kernels (torch.compile, GPU) take the
    # tables of (0, 0) and mask_mod on partial blocks only (its eager path evaluates mask_mod everywhere)
    B, H, L, S = 2, 3, 9, 11
    docs = np.array([[0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2], [0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]])

    def mod(lib):
        doc = lib.tensor(docs)
        return lambda b, h, q, k: (((doc[b, q] == doc[b, k]) & (q >= k)) | ((h == 1) & (k < 4))
                                   | ((h == 2) & (q == k + 1)))
    g_bm = gfa.create_block_mask(mod(gt), None, None, L, S, BLOCK_SIZE=4, separate_full_blocks=separate_full_blocks)
    t_bm = tfa.create_block_mask(mod(torch), None, None, L, S, device="cpu", BLOCK_SIZE=4,
                                 separate_full_blocks=separate_full_blocks)
    arrays = [randn(B, H, n, 5, seed=i).astype(dtype) for i, n in enumerate((L, S, S))]
    out, aux = gfa.flex_attention(*(gt.tensor(a) for a in arrays), block_mask=g_bm,
                                  return_aux=gfa.AuxRequest(lse=True))
    plain = gfa.flex_attention(*(gt.tensor(a) for a in arrays), block_mask=g_bm)
    dense = _table_mask(t_bm, mod(torch), B, H, L, S)
    want, want_lse = _torch_reference(*(torch.tensor(a) for a in arrays), None, lambda *idx: dense, 5 ** -0.5, False)
    for got, ref in ((out, want), (plain, want), (aux.lse, want_lse)):
        np.testing.assert_allclose(got.numpy(), ref.numpy(), **TOL[dtype])
    # the mask's own B/H given: the dense mask of mask_mod, as before (and as torch's every path)
    g_full = gfa.create_block_mask(mod(gt), B, H, L, S, BLOCK_SIZE=4, separate_full_blocks=separate_full_blocks)
    want_full = _torch_reference(*(torch.tensor(a) for a in arrays), None, mod(torch), 5 ** -0.5, False)[0]
    np.testing.assert_allclose(gfa.flex_attention(*(gt.tensor(a) for a in arrays), block_mask=g_full).numpy(),
                               want_full.numpy(), **TOL[dtype])


@pytest.mark.parametrize("query_dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("mod_dtype", ["float16", "float64"])
def test_score_mod_in_another_float_dtype_keeps_it_as_torch(query_dtype, mod_dtype):
    """torch's eager flex_attention goes on in the dtype ``score_mod`` returns: its softmax and lse
    are in it (the output in the query's dtype); gt cast the scores back to float32/float64."""
    data = [np.random.default_rng(i).standard_normal((1, 2, 5, 8)) * 3 for i in range(3)]
    outs = []
    for lib, fa in ((gt, gfa), (torch, tfa)):
        def mod(s, b, h, q, k):
            return (s * 1.37).to(getattr(lib, mod_dtype)) + 0.001
        q, k, v = (lib.tensor(a).to(getattr(lib, query_dtype)) for a in data)
        out, aux = fa.flex_attention(q, k, v, score_mod=mod, return_aux=fa.AuxRequest(lse=True))
        outs.append((out, aux.lse))
    tol = dict(rtol=2e-3, atol=2e-3) if "float16" in (query_dtype, mod_dtype) else dict(rtol=1e-6, atol=1e-6)
    for ours, theirs in zip(*outs):
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_allclose(ours.double().numpy(), theirs.double().numpy(), **tol)

