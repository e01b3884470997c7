"""A computed weight looked up by ``F.embedding(ids, f(w), sparse=True)`` beside torch 2.13
(gt/tensor/sparse_pass_on.py, gt/tensor/sparse_pass_refusals.py): torch's error where its backward
of ``f`` refuses the sparse gradient (``tanh``, ``sqrt``, ``/`` by a tensor, views, transposes,
activations), the leaf's sparse gradient where it passes it on (``silu``, ``rsqrt``, ``expand_as``,
``sign``, ``w[:, :]``, ``t / w``, ...), the dense one where it densifies, each with and without
``create_graph=True``; and the order of a sparse leaf's gradient entries after an op and a
transpose (gt/tensor/sparse_frames.py)."""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import get_mesh
from helpers import torch_or_skip

pytestmark = pytest.mark.skipif(get_mesh().size > 1, reason="sparse tensors are refused on a mesh")
W = np.arange(10.0).reshape(5, 2) / 3 + 0.5
D = np.arange(10.0).reshape(5, 2) / 7 + 0.2
IDS = [1, 3, 1, 4]


def _torch():
    torch = torch_or_skip()
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    return torch


# torch 2.13's backward of these raises on the sparse gradient
RAISING = {
    "tanh": lambda m, w, d: w.tanh(), "sigmoid": lambda m, w, d: m.sigmoid(w), "sqrt": lambda m, w, d: w.sqrt(),
    "log": lambda m, w, d: w.log(), "log2": lambda m, w, d: w.log2(), "w / d": lambda m, w, d: w / d,
    "w / w": lambda m, w, d: w / w, "w / d[0]": lambda m, w, d: w / d[0], "atan": lambda m, w, d: w.atan(),
    "atanh": lambda m, w, d: (w / 5).atanh(), "relu": lambda m, w, d: w.relu(),
    "clamp": lambda m, w, d: w.clamp(0.6, 2),
    "gelu": lambda m, w, d: m.nn.functional.gelu(w), "where": lambda m, w, d: m.where(d > 0.5, w, d),
    "maximum": lambda m, w, d: m.maximum(w, d), "pow(w, d)": lambda m, w, d: w.pow(d),
    "view": lambda m, w, d: w.view(5, 2), "reshape": lambda m, w, d: w.reshape(10).reshape(5, 2),
    "view_as": lambda m, w, d: w.view_as(d), "t().t()": lambda m, w, d: w.t().t(), "T.T": lambda m, w, d: w.T.T,
    "transpose": lambda m, w, d: w.transpose(0, 1).transpose(0, 1),
    "movedim": lambda m, w, d: w.movedim(0, 1).movedim(0, 1),
    "index": lambda m, w, d: w[[0, 1, 2, 3, 4]], "cat": lambda m, w, d: m.cat([w[:2], w[2:]]),
    "narrow": lambda m, w, d: w.narrow(0, 0, 5), "unsqueeze": lambda m, w, d: w.unsqueeze(0).squeeze(0),
    "flip": lambda m, w, d: w.flip(0), "to float32": lambda m, w, d: w.to(m.float32),
    "leaky_relu": lambda m, w, d: m.nn.functional.leaky_relu(w), "elu": lambda m, w, d: m.nn.functional.elu(w),
    "selu": lambda m, w, d: m.nn.functional.selu(w), "softplus": lambda m, w, d: m.nn.functional.softplus(w),
    "hardtanh": lambda m, w, d: m.nn.functional.hardtanh(w), "relu6": lambda m, w, d: m.nn.functional.relu6(w),
    "logsigmoid": lambda m, w, d: m.nn.functional.logsigmoid(w),
    "hardswish": lambda m, w, d: m.nn.functional.hardswish(w),
    "hardsigmoid": lambda m, w, d: m.nn.functional.hardsigmoid(w),
    "softshrink": lambda m, w, d: m.nn.functional.softshrink(w),
    "hardshrink": lambda m, w, d: m.nn.functional.hardshrink(w),
    "threshold": lambda m, w, d: m.nn.functional.threshold(w, 1.0, 0.0), "fmax": lambda m, w, d: m.fmax(w, d),
    "prelu": lambda m, w, d: m.nn.functional.prelu(w, m.tensor([0.25], dtype=m.float64)),
    "glu": lambda m, w, d: m.nn.functional.glu(m.cat([w, w], 1), 1),
    "tanhshrink": lambda m, w, d: m.nn.functional.tanhshrink(w),
    "softsign": lambda m, w, d: m.nn.functional.softsign(w), "logit": lambda m, w, d: (w / 5).logit(),
    "xlogy": lambda m, w, d: m.xlogy(w, d), "hypot": lambda m, w, d: m.hypot(w, d), "sinc": lambda m, w, d: w.sinc(),
    "logaddexp": lambda m, w, d: m.logaddexp(w, d), "exp then tanh": lambda m, w, d: (w.exp() * 2).tanh(),
}


def _loss(m, f, create_graph):
    w = m.tensor(W, requires_grad=True)
    out = m.nn.functional.embedding(m.tensor(IDS), f(m, w, m.tensor(D)), sparse=True)
    loss = (out * m.tensor([[1.0, -2.0]], dtype=out.dtype)).pow(2).sum()
    if create_graph:
        return w, m.autograd.grad(loss, [w], create_graph=True)[0]
    loss.backward()
    return w, w.grad


def _first_sentence(message):
    return message.split(" This could be")[0]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", sorted(RAISING))
def test_a_computed_weight_raises_torch_s_error_where_torch_s_backward_refuses_the_sparse_gradient(name, create_graph):
    torch = _torch()
    errors = []
    for m in (torch, gt):
        with pytest.raises((RuntimeError, NotImplementedError)) as info:
            _loss(m, RAISING[name], create_graph)
        errors.append((info.type, _first_sentence(str(info.value))))
    assert errors[1] == errors[0]


# torch 2.13 passes the sparse gradient on through these (gt densified them)
SPARSE = {
    "silu": lambda m, w, d: m.nn.functional.silu(w), "mish": lambda m, w, d: m.nn.functional.mish(w),
    "rsqrt": lambda m, w, d: w.rsqrt(), "expand_as": lambda m, w, d: w.expand_as(d),
    "expand": lambda m, w, d: w.expand(5, 2),
    "sign": lambda m, w, d: w.sign(), "floor": lambda m, w, d: w.floor(), "round": lambda m, w, d: w.round(),
    "w[:, :]": lambda m, w, d: w[:, :], "d / w": lambda m, w, d: d / w,
    "permute(0, 1)": lambda m, w, d: w.permute(0, 1),
    "squeeze": lambda m, w, d: w.squeeze(), "nan_to_num": lambda m, w, d: w.nan_to_num(),
    "addcdiv": lambda m, w, d: m.addcdiv(d, w, d), "addcdiv tensor2": lambda m, w, d: m.addcdiv(d, d, w, value=0.5),
    "cosh": lambda m, w, d: w.cosh(), "tan": lambda m, w, d: w.tan(), "asin": lambda m, w, d: (w / 5).asin(),
    "acos": lambda m, w, d: (w / 5).acos(), "asinh": lambda m, w, d: w.asinh(),
    "acosh": lambda m, w, d: (w + 1).acosh(),
    "erfc": lambda m, w, d: w.erfc(), "erfinv": lambda m, w, d: (w / 5).erfinv(), "lgamma": lambda m, w, d: w.lgamma(),
    "i0": lambda m, w, d: w.i0(), "fmod": lambda m, w, d: w.fmod(1.5), "remainder": lambda m, w, d: w.remainder(1.5),
    "copysign": lambda m, w, d: m.copysign(w, -d), "atan2": lambda m, w, d: m.atan2(w, d),
    "w * t (0-d, requires grad)": lambda m, w, d: w * m.tensor(2.0, dtype=m.float64, requires_grad=True),
    "w / t (0-d, requires grad)": lambda m, w, d: w / m.tensor(2.0, dtype=m.float64, requires_grad=True),
    "exp(w) * 2 + silu(w)": lambda m, w, d: w.exp() * 2 + m.nn.functional.silu(w),
}
# ones that gt already passed on sparse without create_graph (with it, gt densified them too)
BEFORE = {"w * 2": lambda m, w, d: w * 2, "w * d": lambda m, w, d: w * d, "abs": lambda m, w, d: w.abs(),
          "neg": lambda m, w, d: -w, "exp": lambda m, w, d: w.exp(), "w * w": lambda m, w, d: w * w,
          "1 / w": lambda m, w, d: 1 / w, "lerp": lambda m, w, d: m.lerp(d, w, 0.25),
          "clone": lambda m, w, d: w.clone()}


def _same_grad(g, t, exact_requires_grad=True):
    assert g.is_sparse == t.is_sparse
    # (torch's zeros of sgn and pow 0 under create_graph require no grad; gt's dense gradient does)
    assert g.requires_grad == t.requires_grad or not exact_requires_grad
    if g.is_sparse:
        assert g.is_coalesced() == t.is_coalesced()
        np.testing.assert_array_equal(g._indices().numpy(), t._indices().numpy())
        g, t = g._values(), t._values()
    t = t.detach()
    t = np.zeros(tuple(t.shape)) if t._is_zerotensor() else t.numpy()
    np.testing.assert_allclose(g.detach().numpy(), t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", sorted(SPARSE))
def test_a_computed_weight_s_leaf_gets_torch_s_sparse_gradient(name, create_graph):
    torch = _torch()
    got = [_loss(m, SPARSE[name], create_graph)[1] for m in (torch, gt)]
    assert got[0].is_sparse
    _same_grad(got[1], got[0])


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_the_sparse_gradient_requires_grad_under_create_graph_as_torch_s(name):
    torch = _torch()
    got = [_loss(m, BEFORE[name], True)[1] for m in (torch, gt)]
    assert got[0].is_sparse and got[0].requires_grad
    _same_grad(got[1], got[0])


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("name", ["sgn", "pow 0", "expand a row"])
def test_a_computed_weight_s_gradient_is_dense_where_torch_s_backward_densifies_beside_a_sparse_one(name, create_graph):
    # w's op densifies (torch's zeros, or a sum over the expanded rows); v's, silu, keeps it sparse
    torch = _torch()
    f = {"sgn": lambda m, w: w.sgn(), "pow 0": lambda m, w: w.pow(0),
         "expand a row": lambda m, w: w[0:1].expand(5, 2)}[name]
    got = []
    for m in (torch, gt):
        w, v = m.tensor(W, requires_grad=True), m.tensor(D, requires_grad=True)
        emb, ids = m.nn.functional.embedding, m.tensor(IDS)
        loss = emb(ids, f(m, w) * 3, sparse=True).pow(2).sum() + emb(ids, m.nn.functional.silu(v), sparse=True).sum()
        got.append(m.autograd.grad(loss, [w, v], create_graph=create_graph))
    assert not got[0][0].is_sparse and got[0][1].is_sparse
    for mine, theirs in zip(got[1], got[0]):
        _same_grad(mine, theirs, exact_requires_grad=theirs.is_sparse or name == "expand a row")


def test_the_other_operand_of_a_product_gets_torch_s_dense_gradient_beside_the_sparse_one():
    torch = _torch()
    got = []
    for m in (torch, gt):
        w = m.tensor(W, requires_grad=True)
        t = m.tensor(1.5, dtype=m.float64, requires_grad=True)
        m.nn.functional.embedding(m.tensor(IDS), w * t, sparse=True).pow(2).sum().backward()
        got.append((w.grad, t.grad))
    _same_grad(got[1][0], got[0][0])
    assert not got[1][1].is_sparse
    np.testing.assert_allclose(got[1][1].numpy(), got[0][1].numpy(), rtol=1e-12)


def test_create_graph_sums_gradients_and_differentiates_again_as_torch():
    torch = _torch()
    got = []
    for m in (torch, gt):
        w = m.tensor(W, requires_grad=True)
        emb = m.nn.functional.embedding
        ids = m.tensor(IDS)
        two = emb(ids, w * 2, sparse=True).sum() + emb(ids[:2], w * 3, sparse=True).pow(2).sum()
        (g_two,) = m.autograd.grad(two, [w], create_graph=True)
        mixed = emb(ids, w * 3, sparse=True).sum() + (w * w).sum()        # sparse + dense: dense
        (g_mixed,) = m.autograd.grad(mixed, [w], create_graph=True)
        (g_ww,) = m.autograd.grad(emb(ids, w * w, sparse=True).pow(2).sum(), [w], create_graph=True)
        g_ww.to_dense().pow(2).sum().backward()
        got.append((g_two, g_mixed, g_ww, w.grad.to_dense() if w.grad.is_sparse else w.grad))
    for mine, theirs in zip(got[1][:3], got[0][:3]):
        _same_grad(mine, theirs)
    # the second derivative: torch's values, dense (torch lists them on the sparse gradient's entries)
    np.testing.assert_allclose(got[1][3].numpy(), got[0][3].numpy(), rtol=1e-10)


IDX = [[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]
VAL = [0.3, 0.4, 0.5, 0.1, -0.2]
# ops on a sparse leaf's entries before a transpose (b: another sparse tensor, not a leaf)
BEFORE_T = {"*2": lambda m, s, b: s * 2, "neg": lambda m, s, b: -s, "clone": lambda m, s, b: s.clone(),
            "/2": lambda m, s, b: s / 2, "s+s": lambda m, s, b: s + s, "t": lambda m, s, b: s.t(),
            "+b": lambda m, s, b: s + b, "b-": lambda m, s, b: b - s, "square": lambda m, s, b: s.square(),
            "abs": lambda m, s, b: s.abs(),
            "* dense": lambda m, s, b: s * m.tensor(np.arange(9.0).reshape(3, 3) / 4 - 1)}


@pytest.mark.parametrize("loss", ["to_dense", "sparse.sum"])
@pytest.mark.parametrize("transpose", ["t", "transpose(1, 0)"])
@pytest.mark.parametrize("coalesced", [False, True])
@pytest.mark.parametrize("first", sorted(BEFORE_T))
def test_a_sparse_leaf_s_gradient_lists_its_entries_in_torch_s_order_after_an_op_and_a_transpose(first, coalesced,
                                                                                               transpose, loss):
    # torch masks the gradient in the transposed tensor's dims (sorted there) and carries that order
    # back to the leaf (gt listed it sorted in the leaf's own dims)
    torch = _torch()
    got = []
    for m in (torch, gt):
        s = m.sparse_coo_tensor(m.tensor(IDX), m.tensor(VAL, dtype=m.float64), (3, 3))
        s = (s.coalesce() if coalesced else s).detach().requires_grad_(True)
        b = m.sparse_coo_tensor(m.tensor([[2, 0, 1], [2, 2, 1]]), m.tensor([1.0, 2.0, 3.0], dtype=m.float64), (3, 3))
        x = BEFORE_T[first](m, s, b)
        out = x.t() if transpose == "t" else x.transpose(1, 0)
        w = m.tensor(np.arange(9.0).reshape(3, 3) / 3 - 1)
        total = (out.to_dense() * w).sum() if loss == "to_dense" else m.sparse.sum(out * 2)
        total.backward()
        got.append(s.grad)
    _same_grad(got[1], got[0])
