"""``as_strided`` and ``unfold`` as views (gt/tensor/strided_methods.py, gt/ops/shape.py's
``AsStrided``) beside torch 2.13: strides, storage offsets, ``is_contiguous``, ``data_ptr``,
``_base``, ``_version``, writes through the view and into its base, torch's overlap errors,
gradients of out-of-place ops and of in-place changes of such views (float64, to 1e-12), the
cases gt refuses, forward AD; a sharded tensor's as_strided/unfold stays a copy."""

import contextlib

import numpy as np
import pytest

import gt
from gt.sharding import get_mesh
from gt.sharding.mesh import use_mesh
from helpers import randn, torch_or_skip

torch = torch_or_skip()
# gt tracks the storage of CPU tensors only: on a GPU (the torch engine's default device there)
# as_strided/unfold give the copy test_sharded_tensor_gives_a_copy describes, so the view tests skip
views_here = pytest.mark.skipif("not gt.arange(1.0).is_cpu", reason="gt's strided views are of CPU tensors")

# (base maker, the view taken of it): contiguous, a slice, a transpose; overlapping windows,
# disjoint ones, a read of the base outside a slice, a repeated row (stride 0)
CASES = {
    "unfold overlapping": (lambda L: L.arange(24.0), lambda t: t.unfold(0, 5, 2)),
    "unfold disjoint of a 2-d slice": (lambda L: L.arange(24.0).reshape(4, 6)[1:], lambda t: t.unfold(1, 2, 3)),
    "unfold of a transpose": (lambda L: L.arange(24.0).reshape(4, 6).t(), lambda t: t.unfold(1, 2, 1)),
    "as_strided outside a slice": (lambda L: L.arange(24.0)[6:], lambda t: t.as_strided((3, 2), (4, 1), 1)),
    "as_strided repeated rows": (lambda L: L.arange(24.0), lambda t: t.as_strided((3, 4), (0, 1), 2)),
    "unfold of 0-d": (lambda L: L.tensor(5.0), lambda t: t.unfold(0, 1, 1)),
}


def _layout(t, base):
    return (tuple(t.shape), tuple(t.stride()), t.storage_offset(), t.is_contiguous(),
            t.data_ptr() - base.data_ptr(), t._base is base or t._base is base._base)


@views_here
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_views_share_memory_and_version_as_torchs(case):
    make, view = CASES[case]
    x, tx = make(gt), make(torch)
    w, tw = view(x), view(tx)
    assert x._placed is None      # small tensors made by gt.arange stay on one device under GT_DEVICES
    assert _layout(w, x) == _layout(tw, tx)
    np.testing.assert_array_equal(w.numpy(), tw.numpy())
    x.add_(1)
    tx.add_(1)                    # the base's change shows in the view, and in its version
    np.testing.assert_array_equal(w.numpy(), tw.numpy())
    assert (w._version, x._version) == (tw._version, tx._version) == (1, 1)
    first = (0,) * w.ndim
    w[first] = -7.0               # a write into the view changes the base
    tw[first] = -7.0
    np.testing.assert_array_equal(x.numpy(), tx.numpy())
    assert w._version == x._version == tw._version


@views_here
def test_writes_into_overlapping_views_as_torch():
    def both(fn):
        out = []
        for L in (gt, torch):
            try:
                out.append(fn(L).tolist())
            except RuntimeError as exc:
                out.append(str(exc)[:80])
        assert out[0] == out[1]
        return out[0]

    # torch writes a uniform value, and a row, into windows that share elements
    assert both(lambda L: L.arange(8.0).unfold(0, 4, 1).fill_(2.0)._base) == [2.0] * 8
    row = both(lambda L: _set(L.arange(8.0), lambda w: w.__setitem__(2, L.tensor([9.0] * 4))))
    assert row == [0.0, 1.0, 9.0, 9.0, 9.0, 9.0, 6.0, 7.0]
    # ... and refuses a read of memory the write changes, and a change repeated on one element
    assert both(lambda L: _set(L.arange(8.0), lambda w: w[0].copy_(w._base[1:5]))).startswith(
        "unsupported operation: some elements of the input")
    assert both(lambda L: L.arange(3.0).as_strided((3, 3), (0, 1)).add_(1)).startswith(
        "unsupported operation: more than one element of the")


def _set(x, write):
    write(x.unfold(0, 4, 1))
    return x


@views_here
def test_as_strided_copy_and_as_strided_in_place():
    x, tx = gt.arange(10.0), torch.arange(10.0)
    c, tc = gt.as_strided_copy(x, (2, 2), (1, 1)), torch.as_strided_copy(tx, (2, 2), (1, 1))
    assert (c.is_contiguous(), c.data_ptr() == x.data_ptr()) == (tc.is_contiguous(), False)
    y, ty = gt.arange(6.0), torch.arange(6.0)
    y.as_strided_((2,), (2,), 1)
    ty.as_strided_((2,), (2,), 1)
    assert (y.tolist(), y.stride(), y.storage_offset(), y._version) == (ty.tolist(), ty.stride(), 1, 1)


_A, _Z = randn(12, seed=11), randn(2, 2, seed=12)


def _in_graph(fn):
    """``fn(lib, leaf, z)``'s result, and the gradients of the leaves of (12,) and (2, 2) under a
    fixed upstream gradient, in gt and in torch (float64)."""
    out = []
    for L in (gt, torch):
        leaf, z = L.tensor(_A.copy(), requires_grad=True), L.tensor(_Z.copy(), requires_grad=True)
        r = fn(L, leaf, z)
        r.backward(L.tensor(np.linspace(1.0, 2.0, r.numel()).reshape(tuple(r.shape))))
        out.append([r.detach().numpy(), leaf.grad.numpy(), None if z.grad is None else z.grad.numpy()])
    for ours, theirs in zip(*out):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


GRAPHS = {
    "out of place, overlapping": lambda L, leaf, z: leaf.unfold(0, 4, 2) ** 2,
    "out of place, outside a slice": lambda L, leaf, z: (leaf * 1)[4:].as_strided((3,), (2,), 1) * leaf[:3],
    "mul_ of disjoint windows": lambda L, leaf, z: _then(leaf * 1, lambda y: y.unfold(0, 2, 3).mul_(3)),
    "copy_ into as_strided": lambda L, leaf, z: _then(leaf * 1, lambda y: y.as_strided((2, 2), (1, 4), 2).copy_(z)),
    "item of as_strided": lambda L, leaf, z: _then(leaf * 1, lambda y: y.as_strided((2, 2), (1, 4), 2)
                                                   .__setitem__(1, z[0])),
    "view of a tensor without grad": lambda L, leaf, z: leaf * _then(
        L.arange(12, dtype=L.float64), lambda x: x.as_strided((2, 2), (1, 4), 2).copy_(z)),
    "base changed after the view": lambda L, leaf, z: _changed_base(leaf),
    "a view of the windows": lambda L, leaf, z: _view_of_windows(leaf),
    "unfold of a transpose": lambda L, leaf, z: _then(leaf * 1,
                                                      lambda y: y.reshape(3, 4).t().unfold(0, 2, 2).add_(z[0, 0])),
}


def _then(y, change):
    change(y)
    return y * y


def _changed_base(leaf):
    y = leaf * 1
    w = y.unfold(0, 4, 2)
    y.mul_(2)
    return w * w


def _view_of_windows(leaf):
    y = leaf * 1
    w = y.unfold(0, 2, 3)
    w[1:].mul_(5)
    return y * w.sum()


@views_here
@pytest.mark.parametrize("graph", GRAPHS, ids=list(GRAPHS))
def test_gradients_match_torch(graph):
    _in_graph(GRAPHS[graph])


@views_here
@pytest.mark.parametrize("base", ["expanded", "overlapping windows"])
def test_gradient_of_an_input_whose_elements_share_memory_as_torch(base):
    # torch divides a position's gradient among the input's elements there (gt gave it all to
    # the first): seen by autograd.grad with respect to the expanded tensor, create_graph too
    got = []
    for L in (gt, torch):
        leaf = L.tensor(_A[:6].copy(), requires_grad=True)
        w = L.tensor(_Z.copy(), requires_grad=True)
        x = leaf.expand(3, 6) if base == "expanded" else leaf.unfold(0, 3, 1)
        g, = L.autograd.grad((x.as_strided((2, 2), (1, 2), 1) * w).sum(), x, create_graph=True)
        gw, = L.autograd.grad((g * L.arange(g.numel(), dtype=L.float64).reshape(g.shape)).sum(), w)
        got.append((g.detach().numpy(), gw.numpy()))
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@views_here
def test_second_order_and_forward_ad_match_torch():
    hv = []
    for L in (gt, torch):
        leaf = L.tensor(_A.copy(), requires_grad=True)
        g, = L.autograd.grad((leaf.unfold(0, 3, 2) ** 3).sum(), leaf, create_graph=True)
        (g * g).sum().backward()
        hv.append(leaf.grad.numpy())
    np.testing.assert_allclose(hv[0], hv[1], rtol=1e-12, atol=0)
    # forward AD: the tangent is read through the same layout, outside the slice too (torch's
    # forward AD takes the same view of the tangent; its first use costs seconds, so it is not run)
    fa = gt.autograd.forward_ad
    with fa.dual_level():
        # (linspace stays on one device under GT_DEVICES: a sharded dual's as_strided reads its row-major copy)
        d = fa.make_dual(gt.linspace(-1, 1, 12, dtype=gt.float64), gt.linspace(1, 2, 12, dtype=gt.float64))
        tangent = fa.unpack_dual(d[2:].as_strided((2, 2), (1, 2), 1) * 1).tangent
    expected = torch.linspace(1, 2, 12, dtype=torch.float64)[2:].as_strided((2, 2), (1, 2), 1)
    np.testing.assert_allclose(tangent.numpy(), expected.numpy(), rtol=1e-12, atol=0)


@views_here
def test_in_place_changes_gt_cannot_record_are_refused():
    leaf = gt.tensor(_A.copy(), requires_grad=True)
    y = leaf * 1
    with pytest.raises(RuntimeError, match="mul_: this tensor is an as_strided/unfold view .* elements overlap"):
        y.unfold(0, 4, 2).mul_(2)       # torch gives a gradient that does not match its values here
    with pytest.raises(RuntimeError, match="reach memory outside the tensor they view"):
        y[4:].as_strided((3,), (1,), 1).mul_(2)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        leaf.unfold(0, 2, 3).mul_(2)
    assert y.tolist() == leaf.tolist()      # refused before anything was written
    for L in (gt, torch):        # a view taken under no_grad, written in grad mode: torch's error
        with L.no_grad():
            w = L.zeros(12, dtype=L.float64).unfold(0, 2, 2)
        # (over the mesh gt's unfold is a copy: refused as one, test_sharded_tensor_gives_a_copy)
        copy = L is gt and w._placed is not None or L is gt and gt.zeros(12)._placed is not None
        with pytest.raises(RuntimeError, match="unfold of a sharded" if copy else
                           "A view was created in no_grad mode and is being modified inplace"):
            w.copy_(L.ones(6, 2, dtype=L.float64, requires_grad=True))


def test_sharded_tensor_gives_a_copy():
    """The documented copy: on GT_DEVICES's mesh where a pass sets it, else on one of 4 devices."""
    arr = randn(8, 3, seed=8)
    with contextlib.nullcontext() if get_mesh().size > 1 else use_mesh(4):
        x = gt.tensor(arr)
        assert x._placed is not None
        w, s = x.unfold(0, 3, 2), x.as_strided((6, 2), (3, 1), 1)
        np.testing.assert_array_equal(w.numpy(), torch.tensor(arr).unfold(0, 3, 2).numpy())
        np.testing.assert_array_equal(s.numpy(), torch.tensor(arr).as_strided((6, 2), (3, 1), 1).numpy())
        # copies: a change of them in place would leave x as it was (silently, before): refused
        with pytest.raises(RuntimeError, match="unfold of a sharded, bfloat16 or GPU tensor, which gt makes as a copy"):
            w[0] = 100.0
        with pytest.raises(RuntimeError, match="as_strided of a sharded, bfloat16 or GPU tensor"):
            s.fill_(-1.0)
        np.testing.assert_array_equal(x.numpy(), arr)
        with gt.no_grad(), pytest.raises(RuntimeError, match="as_strided of a sharded"):
            s.mul_(2)
        w.clone()[0] = 100.0           # a copy made on purpose
        np.testing.assert_array_equal(x.numpy(), arr)
