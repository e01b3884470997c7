"""``BlockMask`` beyond ``create_block_mask`` beside torch 2.13's: slicing (``block_mask[...]``),
``BlockMask.from_kv_blocks``, ``as_tuple`` and ``_adjust``: tables, ``to_dense``, ``sparsity``, repr
and str equal to torch's; ``flex_attention`` with such masks beside torch's eager flex (given the
tables through mask_mod where its eager path would ignore them: torch's kernel rule) and its
gradients beside torch autograd on that rule."""

import numpy as np
import pytest

import gt
from gt.nn.attention import flex_attention as gfa
from helpers import randn, torch_or_skip
from test_flex_attention_parity import TOL, _error, _table_mask, _torch_reference, causal

torch = torch_or_skip()
tfa = pytest.importorskip("torch.nn.attention.flex_attention")


@pytest.fixture(autouse=True)
def torch_eager_flex(monkeypatch):
    monkeypatch.setattr(tfa, "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG", True)


_TABLES = ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks", "q_indices",
           "full_q_num_blocks", "full_q_indices")


def _same_block_mask(got, want):
    """Tables, shape, dense block table, sparsity, repr, str and as_tuple equal to torch's."""
    assert got.shape == want.shape and got.seq_lengths == want.seq_lengths and got.BLOCK_SIZE == want.BLOCK_SIZE
    for name in _TABLES:
        g, t = getattr(got, name), getattr(want, name)
        assert (g is None) == (t is None), name
        if t is not None:
            assert g.dtype == gt.int32
            np.testing.assert_array_equal(g.numpy(), t.numpy(), err_msg=name)
    np.testing.assert_array_equal(got.to_dense().numpy(), want.to_dense().numpy())
    assert got.sparsity() == pytest.approx(want.sparsity(), rel=1e-12) and got.numel() == want.numel()
    assert repr(got) == repr(want).replace("torch.Size([", "(").replace("])", ")").replace(", )", ",)")
    assert str(got) == str(want)
    for flat in (True, False):
        g, t = got.as_tuple(flat), want.as_tuple(flat)
        assert len(g) == len(t) and g[-1] is t[-1] or g[-1].__name__ == t[-1].__name__
        for a, b in zip(g[:-1], t[:-1]):
            assert (a.numpy().tolist() if isinstance(a, gt.Tensor) else a) == (
                b.numpy().tolist() if isinstance(b, torch.Tensor) else b)


def _against_torch(g_bm, t_bm, t_mod, shape, dtype, seed=0):
    """gt's flex_attention (both paths, and the lse) with g_bm beside torch's eager flex with t_bm, and
    gradients beside torch autograd on torch's kernel rule from t_bm's tables."""
    B, H, L, S = shape
    arrays = [randn(B, H, n, 3, seed=seed + i).astype(dtype) for i, n in enumerate((L, S, S))]
    g = [gt.tensor(a, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, aux = gfa.flex_attention(*g, block_mask=g_bm, return_aux=gfa.AuxRequest(lse=True))
    plain = gfa.flex_attention(*g, block_mask=g_bm)
    with torch.no_grad():
        want, want_aux = tfa.flex_attention(*(x.detach() for x in t), block_mask=t_bm,
                                            return_aux=tfa.AuxRequest(lse=True))
    for got, ref in ((out, want), (plain, want), (aux.lse, want_aux.lse)):
        np.testing.assert_allclose(got.detach().numpy(), ref.numpy(), **TOL[dtype])
    ref_out, ref_lse = _torch_reference(*t, None, lambda *idx: _table_mask(t_bm, t_mod, B, H, L, S), 3 ** -0.5, False)
    np.testing.assert_allclose(out.detach().numpy(), ref_out.detach().numpy(), **TOL[dtype])
    up, finite = randn(*out.shape, seed=9).astype(dtype), np.isfinite(ref_lse.detach().numpy())
    ((out + plain) * gt.tensor(up)).sum().add(aux.lse.masked_fill(gt.tensor(~finite), 0.0).sum()).backward()
    ((ref_out * torch.tensor(up)).sum() * 2 + ref_lse.masked_fill(~torch.tensor(finite), 0).sum()).backward()
    for i, (a, b) in enumerate(zip(g, t)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"gradient {i}", **TOL[dtype])


def _doc_mask(lib, docs):
    doc = lib.tensor(docs)
    return lambda b, h, q, k: (doc[b, q] == doc[b, k]) & (q >= k) & ((q - k) <= 5 + h)


_DOCS = np.array([[0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2], [0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]])


@pytest.mark.parametrize("index", [0, -1, (slice(None), 1), (slice(0, 2), slice(1, 3)), (1, 0, 2),
                                   (slice(None), slice(None), 1), (slice(None), slice(None), [2, 0])])
def test_block_mask_slicing_beside_torchs(index):
    g_bm = gfa.create_block_mask(_doc_mask(gt, _DOCS), 2, 3, 11, 11, BLOCK_SIZE=(4, 3))
    t_bm = tfa.create_block_mask(_doc_mask(torch, _DOCS), 2, 3, 11, 11, device="cpu", BLOCK_SIZE=(4, 3))
    as_index = (lambda lib: tuple(lib.tensor(i) if isinstance(i, list) else i for i in index)) \
        if isinstance(index, tuple) else (lambda lib: index)
    got, want = g_bm[as_index(gt)], t_bm[as_index(torch)]
    _same_block_mask(got, want)
    assert got.mask_mod.__name__ == want.mask_mod.__name__ == "_sliced_mask_mod_error"
    qkv = (gt.zeros(1, 1, 11, 3),) * 3
    assert _error(lambda: gfa.flex_attention(*qkv, block_mask=got)) == (RuntimeError, "Cannot use mask_mod "
                                                                       "from a sliced BlockMask")
    assert _error(lambda: g_bm[2])[0] is IndexError and _error(lambda: g_bm[0, 0, 0, 0])[0] is IndexError


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sliced_block_masks_in_flex_attention(dtype):
    # decoding (gpt-fast's recipe): the query block of position pos, mask_mod shifted by pos, seq_lengths (1, S)
    def shifted(base, pos):
        return lambda b, h, q, k: base(b, h, q + pos, k)
    g_bm, t_bm = (fa.create_block_mask(causal, None, None, 11, 11, BLOCK_SIZE=4, **kw)
                  for fa, kw in ((gfa, {}), (tfa, {"device": "cpu"})))
    for pos in (0, 5, 10):
        g, t = g_bm[:, :, pos // 4], t_bm[:, :, pos // 4]
        g.mask_mod, t.mask_mod = shifted(g_bm.mask_mod, pos), shifted(t_bm.mask_mod, pos)
        g.seq_lengths = t.seq_lengths = (1, 11)
        _against_torch(g, t, t.mask_mod, (1, 2, 1, 11), dtype, seed=pos)
    # one batch row of a per-document mask, its mask_mod reading the row's own documents
    g_bm = gfa.create_block_mask(_doc_mask(gt, _DOCS), 2, 3, 11, 11, BLOCK_SIZE=(4, 3))
    t_bm = tfa.create_block_mask(_doc_mask(torch, _DOCS), 2, 3, 11, 11, device="cpu", BLOCK_SIZE=(4, 3))
    g, t = g_bm[1, 1:], t_bm[1, 1:]
    g.mask_mod, t.mask_mod = (lambda b, h, q, k: _doc_mask(gt, _DOCS[1:])(b, h + 1, q, k)), \
        (lambda b, h, q, k: _doc_mask(torch, _DOCS[1:])(b, h + 1, q, k))
    _against_torch(g, t, t.mask_mod, (1, 2, 11, 11), dtype)


def _ordered(lib, blocks):
    x = lib.tensor(blocks)
    return x.sum(-1).to(lib.int32), x.argsort(dim=-1, descending=True, stable=True).to(lib.int32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("with_full,mask_mod,seq_lengths", [(False, None, None), (True, None, (7, 8)),
                                                             (True, "odd", (8, 7))])
def test_from_kv_blocks_beside_torchs(dtype, with_full, mask_mod, seq_lengths):
    partial = np.array([[[[1, 0, 1], [0, 1, 0], [1, 1, 0]]], [[[0, 0, 1], [1, 0, 0], [0, 0, 0]]]], dtype=np.int32)
    full = np.array([[[[0, 1, 0], [0, 0, 0], [0, 0, 1]]], [[[1, 0, 0], [0, 0, 1], [0, 1, 0]]]], dtype=np.int32)
    mods = {lib: None if mask_mod is None else (lambda b, h, q, k: (q + k + b) % 2 == 1) for lib in (gt, torch)}
    got, want = (fa.BlockMask.from_kv_blocks(*_ordered(lib, partial), *(_ordered(lib, full) if with_full else ()),
                                             BLOCK_SIZE=(3, 3), mask_mod=mods[lib], seq_lengths=seq_lengths)
                 for lib, fa in ((gt, gfa), (torch, tfa)))
    assert "q_indices" not in vars(got)     # made on first read (gt's attention reads only the kv tables)
    _same_block_mask(got, want)
    assert (got.mask_mod is gfa.noop_mask) == (mask_mod is None)
    # torch's eager path ignores the tables: it is given them through mask_mod (its kernels' rule)
    B, H, L, S = want.shape
    t_mod = want.mask_mod
    kernel_rule = _table_mask(want, t_mod, B, H, L, S)
    want.mask_mod = lambda b, h, q, k: kernel_rule[b, h, q, k]
    _against_torch(got, want, t_mod, (B, H, L, S), dtype)
    no_q = gfa.BlockMask.from_kv_blocks(*_ordered(gt, partial), compute_q_blocks=False)
    assert no_q.q_indices is None and no_q.full_q_num_blocks is None and no_q.seq_lengths == (384, 384)


@pytest.mark.parametrize("mask", ["causal", "window"])
def test_adjust_crops_torchs_tables(mask):
    mod = causal if mask == "causal" else (lambda b, h, q, k: (q >= k) & (q - k <= 3))
    g_bm = gfa.create_block_mask(mod, 2, None, 13, 14, BLOCK_SIZE=4)
    t_bm = tfa.create_block_mask(mod, 2, None, 13, 14, device="cpu", BLOCK_SIZE=4)
    got, want = g_bm._adjust(9, 10), t_bm._adjust(9, 10)
    _same_block_mask(got, want)
    assert got.mask_mod is mod
    _against_torch(got, want, mod, (2, 1, 9, 10), "float64")


@pytest.mark.parametrize("case", ["one_dim", "half_full_pair", "dq_kv_order", "dq_write_order_full", "half_full_q"])
def test_block_mask_construction_errors_as_torchs(case):
    def make(lib, fa):
        num, idx = lib.ones(1, 1, 2, dtype=lib.int32), lib.zeros(1, 1, 2, 2, dtype=lib.int32)
        if case == "one_dim":
            return lambda: fa.BlockMask.from_kv_blocks(num[0, 0], idx[0, 0, 0])
        if case == "half_full_pair":
            return lambda: fa.BlockMask.from_kv_blocks(num, idx, num)
        if case == "dq_kv_order":
            return lambda: fa.BlockMask.from_kv_blocks(num, idx, dq_kv_order="spt")
        if case == "dq_write_order_full":
            return lambda: fa.BlockMask((4, 4), num, idx, None, None, None, None, None, None, dq_write_order_full=num)
        return lambda: fa.BlockMask((4, 4), num, idx, None, None, None, None, num, None)
    want, got = _error(make(torch, tfa)), _error(make(gt, gfa))
    assert want is not None and got == want
    assert _error(lambda: gfa.BlockMask.from_kv_blocks(gt.ones(1, 1, 2), gt.zeros(1, 1, 2, 2, dtype=gt.int32)))[0] \
        is TypeError
