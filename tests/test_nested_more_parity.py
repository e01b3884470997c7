"""gt.nested beside torch 2.13, what tests/test_nested_parity.py leaves out: gradients with respect
to a nested tensor (``autograd.grad``, ``backward(inputs=)``), a Parameter on the left of a binary
op, ``gt.matmul`` and the padded products, the views of the dims after the ragged one, in-place
ops, ``where``/``masked_fill``, ``*_like``, nested ids into ``F.embedding``, and the nested-tensor
tutorial's multi-head attention (packed projections, ``chunk``, ``unflatten``, ``flatten``)."""

import numpy as np
import pytest

import gt
import gt.nn.functional as F
from test_nested_parity import _arrays, _check, _np, _padded, _pair, _raises, _same, _sizes

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")


def _leaf_pair(arrays):
    g = gt.nested.nested_tensor([gt.tensor(a) for a in arrays], layout=gt.jagged, requires_grad=True)
    t = torch.nested.nested_tensor([torch.tensor(a) for a in arrays], layout=torch.jagged, requires_grad=True)
    return g, t


def test_autograd_grad_with_respect_to_a_nested_tensor():
    """torch gives a nested gradient; gt raised that the nested tensor was not used in the graph."""
    arrays = _arrays()
    for leaf in (True, False):
        g, t = _leaf_pair(arrays) if leaf else _pair(arrays)[:2]
        w = np.random.default_rng(1).standard_normal((3, 5, 4))
        outs = [(x.sin() * x).to_padded_tensor(0.0) * make(w) for x, make in ((g, gt.tensor), (t, torch.tensor))]
        (gg,), (tg,) = gt.autograd.grad(outs[0].sum(), g), torch.autograd.grad(outs[1].sum(), t)
        assert gg.is_nested and gg.shape[1] is g.shape[1]
        _same(gg, tg, rtol=1e-10, atol=1e-12)
    g, t = _leaf_pair(arrays)
    seed = [a * 0.5 + 1 for a in arrays]
    gs = gt.nested.as_nested_tensor([gt.tensor(a) for a in seed], layout=gt.jagged)
    gs = gt.nested.nested_tensor_from_jagged(gs.values(), g.offsets())        # g's structure
    ts = torch.nested.nested_tensor_from_jagged(torch.tensor(np.concatenate(seed)), t.offsets())
    (gg,), (tg,) = gt.autograd.grad(g.exp(), g, grad_outputs=gs), torch.autograd.grad(t.exp(), t, grad_outputs=ts)
    _same(gg, tg, rtol=1e-10, atol=1e-12)
    _raises(RuntimeError, "implicitly created only for scalar outputs", lambda: gt.autograd.grad(g.exp(), g),
            lambda: torch.autograd.grad(t.exp(), t))
    other, tother = _leaf_pair(arrays)
    _raises(RuntimeError, "not have been used in the graph", lambda: gt.autograd.grad(g.sum(), other),
            lambda: torch.autograd.grad(t.sum(), tother))
    assert gt.autograd.grad(g.sum(), [g, other], allow_unused=True)[1] is None


def test_backward_inputs_nested_and_double_backward():
    """backward(inputs=[nt]) left nt.grad None in gt (silently: the gradient went nowhere)."""
    arrays = _arrays()
    g, t = _leaf_pair(arrays)
    w = np.random.default_rng(2).standard_normal(4)
    gw, tw = gt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    (g * gw).sin().sum(dim=1).pow(2).sum().backward(inputs=[g])       # torch 2.13: no backward of sum(dim=1)
    (t * tw).sin().to_padded_tensor(0.0).sum(1).pow(2).sum().backward(inputs=[t])
    assert gw.grad is None and tw.grad is None
    _same(g.grad, t.grad, rtol=1e-10, atol=1e-12)
    gc, tc, _, _ = _pair(arrays)       # a computed nested tensor: it retains its gradient, as torch's
    for x in (gc, tc):
        x.cos().to_padded_tensor(0.0).sum().backward(inputs=[x])
    _same(gc.grad, tc.grad, rtol=1e-10, atol=1e-12)
    g, _ = _leaf_pair(arrays)      # torch 2.13's double backward through to_padded_tensor raises
    (gg,) = gt.autograd.grad(g.pow(3).to_padded_tensor(0.0).sum(), g, create_graph=True)
    np.testing.assert_allclose(_np(gt.autograd.grad(gg.values().sum(), g)[0].values()), 6 * np.concatenate(arrays),
                               rtol=1e-12)


@pytest.mark.parametrize("op", ["mul", "add", "sub", "div", "pow", "maximum"])
def test_parameter_on_the_left_of_a_nested_tensor(op):
    """``w * nt`` with ``w`` a Parameter raised NotImplementedError (Tensor.__mul__ ran a dense op)."""
    d = np.random.default_rng(3).standard_normal(4) + 3.0
    gp, tp = gt.nn.Parameter(gt.tensor(d)), torch.nn.Parameter(torch.tensor(d))
    fns = {"mul": lambda a, b: a * b, "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "div": lambda a, b: a / b,
           "pow": lambda a, b: a ** b, "maximum": lambda a, b: a.maximum(b)}
    arrays = [np.abs(a) + 0.5 for a in _arrays()]
    ref = None if op != "maximum" else lambda tl: _padded(torch.maximum(tp, c) for c in tl)  # torch: no backward
    _check(lambda nt: fns[op](gp, nt), lambda nt: fns[op](tp, nt), arrays=arrays, rtol=1e-10, atol=1e-12, ref=ref)
    np.testing.assert_allclose(_np(gp.grad), tp.grad.numpy(), rtol=1e-10)


def test_matmul_forms():
    """gt.matmul(nt, w) raised; (B, j, D) @ (B, D, E), (B, D, E) @ (B, E, j) and (B, D, j) @ (B, j, E)
    as torch's (its padded and per-sequence forms)."""
    rng = np.random.default_rng(4)
    w2, w3, wl = rng.standard_normal((4, 3)), rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 2, 4))
    gws = {k: gt.tensor(v, requires_grad=True) for k, v in (("w2", w2), ("w3", w3), ("wl", wl))}
    tws = {k: torch.tensor(v, requires_grad=True) for k, v in (("w2", w2), ("w3", w3), ("wl", wl))}
    _check(lambda nt: gt.matmul(nt, gws["w2"]), lambda nt: torch.matmul(nt, tws["w2"]), rtol=1e-10, atol=1e-12)
    _check(lambda nt: nt @ gws["w3"], lambda nt: nt @ tws["w3"], rtol=1e-10, atol=1e-12)
    ref = lambda tl: torch.stack([TF.pad(tws["wl"][i] @ c.T, (0, 5 - len(c))) for i, c in enumerate(tl)])  # noqa: E731
    _check(lambda nt: gws["wl"] @ nt.transpose(1, 2), lambda nt: tws["wl"] @ nt.transpose(1, 2), rtol=1e-10,
           atol=1e-12, ref=ref)     # torch 2.13's backward of it raises (_padded_dense_to_jagged_forward)
    _check(lambda nt: nt.transpose(1, 2) @ nt.sin(), lambda nt: nt.transpose(1, 2) @ nt.sin(), rtol=1e-10, atol=1e-12)
    for k in gws:
        np.testing.assert_allclose(_np(gws[k].grad), tws[k].grad.numpy(), rtol=1e-10)
    g, t, _, _ = _pair(_arrays())
    _raises(RuntimeError, "matmul", lambda: g @ gt.ones(4), lambda: t @ torch.ones(4, dtype=torch.float64),
            lambda: gt.ones(3, 4, dtype=gt.float64) @ g)


def test_views_after_the_ragged_dim():
    """torch 2.13 has no backward of slicing, select and narrow here: the gradients are compared with
    its dense ops per sequence."""
    arrays = _arrays(tail=(6,))
    views = {"unflatten": lambda x: x.unflatten(-1, (2, 3)).sum(-1) * 1,
             "flatten": lambda x: x.unflatten(-1, (2, 3)).flatten(-2) * 1,
             "slices": lambda x: x[..., 1:4] * x[..., 0:3],
             "select_narrow": lambda x: x[..., None].select(-1, 0).narrow(-1, 2, 3) * 1,
             "split": lambda x: x.split([2, 4], -1)[1] * 2 + x.split(3, -1)[0].sum(-1, keepdim=True)}
    for name, fn in views.items():
        _check(fn, arrays=arrays, ref=lambda tl: _padded(fn(c) for c in tl))
    _check(lambda nt: gt.split(nt, 3, -1)[1] * 1, lambda nt: torch.split(nt, 3, -1)[1] * 1, arrays=arrays,
           ref=lambda tl: _padded(c[:, 3:] for c in tl))
    g, t, _, _ = _pair(arrays)
    for x in (g, t):
        assert _sizes(x.unflatten(2, (3, -1))) == ["3", "j", "3", "2"]
        np.testing.assert_allclose(_np(x[1, :, -1]), arrays[1][:, -1])
        np.testing.assert_allclose(_np(x.select(0, 2)), arrays[2])
        _raises(RuntimeError, "not supported for NestedTensor on ragged dim", lambda: x.select(1, 0),
                lambda: x.narrow(1, 0, 1), lambda: x.split(1, 1))
        _raises(RuntimeError, "not supported for NestedTensor on dim=0", lambda: x.flatten(0, 1), lambda: x[1:],
                lambda: x[:, 1])
        _raises(RuntimeError, "ragged dim", lambda: x.unsqueeze(-1).flatten(1, 2))
    s = gt.nested.nested_tensor([gt.tensor(a) for a in arrays])
    np.testing.assert_allclose(_np(s[1, :, -1]), arrays[1][:, -1])


def test_where_masked_fill_and_inplace():
    arrays = _arrays()
    dense = np.random.default_rng(5).standard_normal(4)
    _check(lambda nt: gt.where(nt > 0, nt, gt.tensor(dense)) * 1,
           lambda nt: torch.where(nt > 0, nt, torch.tensor(dense)),
           ref=lambda tl: _padded(torch.where(c > 0, c, torch.tensor(dense)) for c in tl))
    _check(lambda nt: nt.masked_fill(nt < 0, 0.5) * 1, ref=lambda tl: _padded(c.masked_fill(c < 0, 0.5) for c in tl))
    _check(lambda nt: (nt * 1).mul_(2).add_(nt).sub_(1.5).clamp_(min=-1.0),
           lambda nt: (nt * 1).mul_(2).add_(nt).sub_(1.5).clamp_(min=-1.0))
    g, t, _, _ = _pair(arrays, requires_grad=False)
    for x in (g, t):
        y = x.clone()
        assert y.zero_() is y and float(_np(y.values()).sum()) == 0
        y.fill_(2.0).copy_(x)
        np.testing.assert_allclose(_np(y.values()), np.concatenate(arrays))
    g, t = _leaf_pair(arrays)
    _raises(RuntimeError, "leaf|view was created in no_grad mode", lambda: g.mul_(2), lambda: t.mul_(2))


@pytest.mark.parametrize("fn", ["zeros_like", "ones_like", "full_like", "empty_like", "randn_like", "rand_like"])
def test_like_functions(fn):
    g, t, _, _ = _pair(_arrays(), requires_grad=False)
    args = (2.5,) if fn == "full_like" else ()
    out, tout = getattr(gt, fn)(g, *args), getattr(torch, fn)(t, *args)
    assert out.is_nested and out.shape[1] is g.shape[1] and out.dtype == gt.float64
    assert out.offsets().tolist() == tout.offsets().tolist()
    if fn in ("zeros_like", "ones_like", "full_like"):
        _same(out, tout)
    made = getattr(gt, fn)(g, *args, dtype=gt.float32, requires_grad=True)
    tmade = getattr(torch, fn)(t, *args, dtype=torch.float32, requires_grad=True)
    assert made.is_leaf == tmade.is_leaf is True and made.requires_grad and made.dtype == gt.float32
    assert (getattr(gt, fn)(g.transpose(1, 2), *args).is_contiguous()
            == getattr(torch, fn)(t.transpose(1, 2), *args).is_contiguous())


def test_embedding_of_nested_ids_and_nested_tensor_of_one():
    ids = [[1, 2, 4], [0], [3, 3]]
    w = np.random.default_rng(6).standard_normal((5, 3))
    gw, tw = gt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    gi = gt.nested.nested_tensor([gt.tensor(i) for i in ids], layout=gt.jagged)
    ti = torch.nested.nested_tensor([torch.tensor(i) for i in ids], layout=torch.jagged)
    out, tout = F.embedding(gi, gw), TF.embedding(ti, tw)
    _same(out, tout, rtol=1e-12)
    emb = gt.nn.Embedding(5, 3, dtype=gt.float64)
    assert _sizes(emb(gi)) == ["3", "j", "3"]
    g = np.random.default_rng(7).standard_normal((3, 3, 3))
    (out.to_padded_tensor(0.0) * gt.tensor(g)).sum().backward()
    (tout.to_padded_tensor(0.0) * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(_np(gw.grad), tw.grad.numpy(), rtol=1e-12)
    x, tx, _, _ = _pair(_arrays(), requires_grad=False)
    _same(gt.nested.nested_tensor(x, layout=gt.jagged), torch.nested.nested_tensor(tx, layout=torch.jagged))


class _MHA:
    """The nested-tensor tutorial's MultiHeadAttention, written once for either framework."""

    def __init__(self, mod, e, heads, state):
        self.mod, self.heads = mod, heads
        self.packed = mod.nn.Linear(e, 3 * e, dtype=mod.float64)
        self.out = mod.nn.Linear(e, e, dtype=mod.float64)
        for lin, prefix in ((self.packed, "packed"), (self.out, "out")):
            lin.load_state_dict({k: mod.tensor(state[f"{prefix}.{k}"]) for k in ("weight", "bias")})

    def __call__(self, query, key, value, is_causal=False):
        mod, fn = self.mod, (F if self.mod is gt else TF)
        if query is key and key is value:
            query, key, value = mod.chunk(self.packed(query), 3, dim=-1)
        else:
            ws, bs = mod.chunk(self.packed.weight, 3, dim=0), mod.chunk(self.packed.bias, 3, dim=0)
            query, key, value = (fn.linear(x, w, b) for x, w, b in zip((query, key, value), ws, bs))
        e_head = query.size(-1) // self.heads
        query, key, value = (x.unflatten(-1, [self.heads, e_head]).transpose(1, 2) for x in (query, key, value))
        out = fn.scaled_dot_product_attention(query, key, value, is_causal=is_causal)
        return self.out(out.transpose(1, 2).flatten(-2))


def test_the_tutorials_multi_head_attention():
    """Cross-attention beside torch's nested form; self-attention with the packed projection,
    whose (B, H, j, D) chunks torch 2.13 refuses on the CPU ("No viable backend"), beside
    torch's dense attention per sequence; gradients of every parameter and input."""
    rng = np.random.default_rng(8)
    e, heads = 8, 2
    state = {"packed.weight": rng.standard_normal((3 * e, e)) * 0.3, "packed.bias": rng.standard_normal(3 * e) * 0.1,
             "out.weight": rng.standard_normal((e, e)) * 0.3, "out.bias": rng.standard_normal(e) * 0.1}
    gm, tm = _MHA(gt, e, heads, state), _MHA(torch, e, heads, state)
    kv = _arrays((3, 2, 4), tail=(e,), seed=9)
    gk, tk = _leaf_pair(kv)
    _check(lambda nt: gm(nt, gk, gk), lambda nt: tm(nt, tk, tk), arrays=_arrays(tail=(e,)), rtol=1e-10, atol=1e-12)
    _same(gk.grad, tk.grad, rtol=1e-10, atol=1e-12)
    for a, b in ((gm.packed, tm.packed), (gm.out, tm.out)):
        np.testing.assert_allclose(_np(a.weight.grad), b.weight.grad.numpy(), rtol=1e-10)
    dense = _MHA(torch, e, heads, state)

    def per_sequence(tl, causal):
        outs = []
        for c in tl:
            q, k, v = dense.packed(c).chunk(3, -1)
            q, k, v = (x.unflatten(-1, [heads, e // heads]).transpose(0, 1) for x in (q, k, v))
            outs.append(dense.out(TF.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(0, 1)
                                  .flatten(-2)))
        return _padded(outs)
    for causal in (False, True):
        _check(lambda nt: gm(nt, nt, nt, is_causal=causal), False, arrays=_arrays(tail=(e,)), rtol=1e-10, atol=1e-12,
               ref=lambda tl: per_sequence(tl, causal))


@pytest.mark.parametrize("name", ["max", "min", "argmax", "any"])
def test_max_min_argmax_any(name):
    """Over a dim after the ragged one (nested), the ragged dim (dense) and everything, with and
    without torch's (values, indices) form; gradients of max/min beside torch's dense ops."""
    arrays = _arrays(tail=(3, 4), seed=12)
    g, t, _, _ = _pair(arrays, requires_grad=False)
    pre = (lambda x: x > 0) if name == "any" else (lambda x: x)
    for dim in (-1, 1, None):
        for keepdim in (False, True):
            kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
            out, tout = getattr(pre(g), name)(**kw), getattr(pre(t), name)(**kw)
            pairs = zip(out, tout) if name in ("max", "min") and dim is not None else ((out, tout),)
            for a, b in pairs:
                _same(a, b)
    if name in ("max", "min"):
        _check(lambda nt: getattr(nt, name)(dim=-1)[0] * 1, ref=lambda tl: _padded(getattr(c, name)(-1)[0] for c in tl),
               arrays=arrays)
        _check(lambda nt: getattr(nt, name)(2, keepdims=True) * 1,        # gt's numpy form: the values only
               lambda nt: getattr(nt, name)(2, keepdim=True)[0] * 1, arrays=arrays,
               ref=lambda tl: _padded(getattr(c, name)(1, keepdim=True)[0] for c in tl))
        _check(lambda nt: getattr(nt, name)(dim=1)[0] * 1, arrays=arrays,
               ref=lambda tl: torch.stack([getattr(c, name)(0)[0] for c in tl]))
        for x in (g, t):
            _raises(RuntimeError, "batch dimension but not the ragged", lambda: getattr(x, name)(dim=0))


@pytest.mark.parametrize("fn", ["leaky_relu", "elu", "hardtanh", "softplus", "mish", "hardswish", "rms_norm",
                                "module"])
def test_more_nn_functions(fn):
    """torch 2.13 runs every pointwise nn function on a nested tensor (its backward of most raises:
    gradients beside its dense ops per sequence); gt refused them as dense ops."""
    w = np.random.default_rng(13).standard_normal(4)
    gw, tw = gt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    calls = {"leaky_relu": lambda f, nt, p: f.leaky_relu(nt, 0.2), "elu": lambda f, nt, p: f.elu(nt, 0.7),
             "hardtanh": lambda f, nt, p: f.hardtanh(nt, -0.5, 0.8), "softplus": lambda f, nt, p: f.softplus(nt, 2.0),
             "mish": lambda f, nt, p: f.mish(nt), "hardswish": lambda f, nt, p: f.hardswish(nt * 3),
             "rms_norm": lambda f, nt, p: f.rms_norm(nt, (4,), p, 1e-6),
             "module": lambda f, nt, p: (gt if f is F else torch).nn.LeakyReLU(0.3)(nt)}
    g = dict(zip(("f", "p"), (F, gw)))
    t = dict(zip(("f", "p"), (TF, tw)))
    tfn = False if fn == "hardswish" else lambda nt: calls[fn](t["f"], nt, t["p"])     # torch 2.13 has no nested
    _check(lambda nt: calls[fn](g["f"], nt, g["p"]), tfn, rtol=1e-10, atol=1e-12,           # hardswish
           ref=lambda tl: _padded(calls[fn](TF, c, tw) for c in tl))
    if fn == "rms_norm":
        np.testing.assert_allclose(_np(gw.grad), tw.grad.numpy(), rtol=1e-10)
        gx, tx, _, _ = _pair(_arrays())
        _raises(RuntimeError, "ragged", lambda: F.rms_norm(gx, (5, 4)))


def test_cat_stack_masked_select_and_sizes():
    arrays = _arrays()
    _check(lambda nt: gt.cat([nt, nt.sin()], -1), lambda nt: torch.cat([nt, nt.sin()], -1),
           ref=lambda tl: _padded(torch.cat([c, c.sin()], -1) for c in tl))      # torch's backward raises
    _check(lambda nt: gt.stack([nt, nt * 2], 2).sum(-1), lambda nt: torch.stack([nt, nt * 2], 2).sum(-1),
           ref=lambda tl: _padded(torch.stack([c, c * 2], 1).sum(-1) for c in tl))
    g, t, _, _ = _pair(arrays)
    other, tother = _leaf_pair(arrays)
    for mod, x, y in ((gt, g, other), (torch, t, tother)):
        _raises(RuntimeError, "not supported for NestedTensor on dim=0", lambda: mod.cat([x, x], 0))
        _raises(RuntimeError, "not supported for NestedTensor on ragged dim", lambda: mod.cat([x, x], 1),
                lambda: mod.stack([x, x], 1))
        _raises(RuntimeError, "same nested structure", lambda: mod.stack([x, y], -1))
        assert x.is_same_size(x) and not x.is_same_size(y) and x.expand_as(x).shape == x.shape
        assert x.type_as(mod.zeros(1, dtype=mod.float32)).dtype == mod.float32
    dense = np.random.default_rng(14).standard_normal((3, 5, 4))
    mask = dense > 0.3
    gd, td = gt.tensor(dense, requires_grad=True), torch.tensor(dense, requires_grad=True)
    out, tout = gt.nested.masked_select(gd, gt.tensor(mask)), torch.nested.masked_select(td, torch.tensor(mask))
    assert out.offsets().tolist() == tout.offsets().tolist() and _sizes(out) == _sizes(tout)
    _same(out, tout)
    for o, d in ((out, gd), (tout, td)):
        o.values().pow(2).sum().backward()
    np.testing.assert_allclose(_np(gd.grad), td.grad.numpy())


def test_retain_grad_and_strided_gradients():
    arrays = [np.random.default_rng(15).standard_normal(s) for s in ((2, 3), (4, 5))]
    for layout in ("jagged", "strided"):
        kw = {"layout": gt.jagged} if layout == "jagged" else {}
        tkw = {"layout": torch.jagged} if layout == "jagged" else {}
        parts = [a[:, :3] for a in arrays] if layout == "jagged" else arrays
        g = gt.nested.as_nested_tensor([gt.tensor(a, requires_grad=True) for a in parts], **kw)
        t = torch.nested.as_nested_tensor([torch.tensor(a, requires_grad=True) for a in parts], **tkw)
        outs = []
        for x in (g, t):
            y = x.sin()
            y.retain_grad()
            assert y.retains_grad
            (y * y).to_padded_tensor(0.0).sum().backward()
            outs.append(y.grad)
        for a, b in zip(outs[0].unbind(), outs[1].unbind()):
            np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-12)
    g = gt.nested.nested_tensor([gt.tensor(a) for a in arrays], requires_grad=True)
    t = torch.nested.nested_tensor([torch.tensor(a) for a in arrays], requires_grad=True)
    (gg,), (tg,) = (m.autograd.grad((x.sin() * 2).to_padded_tensor(0.0).pow(2).sum(), x)
                     for m, x in ((gt, g), (torch, t)))
    assert gg.is_nested and gg.layout == gt.strided
    for a, b in zip(gg.unbind(), tg.unbind()):
        np.testing.assert_allclose(_np(a), b.numpy(), rtol=1e-12)


def test_cat_refuses_other_offsets():
    """torch 2.13's cat along the last dim of nested tensors of lengths (2, 5) and (4, 3) gives a
    result on the first's offsets, pairing rows of different sequences; gt raises."""
    a = gt.nested.nested_tensor([gt.zeros(2, 1), gt.zeros(5, 1)], layout=gt.jagged)
    b = gt.nested.nested_tensor([gt.ones(4, 1), gt.ones(3, 1)], layout=gt.jagged)
    _raises(RuntimeError, "same nested structure", lambda: gt.cat([a, b], -1), lambda: gt.cat([a, gt.ones(7, 1)], -1))


def test_permute_expand_bmm():
    arrays = _arrays(tail=(3, 4), seed=16)
    w = np.random.default_rng(17).standard_normal((3, 4, 2))
    gw, tw = gt.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    _check(lambda nt: nt.permute(0, 2, 1, 3).permute(0, 2, 3, 1).sum(2), arrays=arrays,
           ref=lambda tl: _padded(c.permute(0, 2, 1).sum(1) for c in tl))
    _check(lambda nt: nt.unsqueeze(-1).expand(-1, -1, -1, -1, 2).sum(-1), arrays=arrays,
           ref=lambda tl: _padded(c.unsqueeze(-1).expand(-1, -1, -1, 2).sum(-1) for c in tl))
    _check(lambda nt: nt.bmm(gw), lambda nt: nt.bmm(tw), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(gw.grad), tw.grad.numpy(), rtol=1e-10)
    g, t, _, _ = _pair(arrays, requires_grad=False)
    for mod, x in ((gt, g), (torch, t)):
        views = (x.permute(0, 2, 1, 3), x.permute(0, -1, 1, 2), x.permute(0, 2, 1, 3).permute(0, 2, 1, 3),
                 x.unsqueeze(-1).expand(-1, -1, -1, -1, 2))
        assert [_sizes(v) for v in views] == [["3", "3", "j", "4"], ["3", "4", "j", "3"], ["3", "j", "3", "4"],
                                              ["3", "j", "3", "4", "2"]]
        assert [v.is_contiguous() for v in views] == [False, False, True, False]
        _raises(ValueError, "Permute is not supported on the batch dimension", lambda: x.permute(1, 0, 2, 3))
        _raises(ValueError, "bmm", lambda: x.sum(2).bmm(mod.ones(4, 2, dtype=mod.float64)))
        _raises(RuntimeError, "expand", lambda: x.expand(3, 2, 3, 4))
