"""Forward AD with reverse mode on tensors sharded over the mesh (the passes that set GT_DEVICES),
beside torch 2.13: a dual tensor that requires grad (its tangent's and its primal's gradients by
``backward()`` and ``gt.autograd.grad``), and ``gt.func.grad`` inside a ``dual_level`` through a
sharded tensor made in the function. gt refused both ("a tensor sharded over the mesh that requires
grad"; the second also needs the gathered tensor to keep its tangent, or its tangent is half torch's)."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(5)
_X, _T, _W = _RNG.standard_normal((4, 3)), _RNG.standard_normal((4, 3)), _RNG.standard_normal((3, 2))

_FUNS = {   # views, layout changes over the mesh (a sum over the sharded dim, matmul) and in-place ops
    "reshape": lambda lib, x: (x.reshape(12) * 2).sin(),
    "transpose @": lambda lib, x: x.t() @ x,
    "slices": lambda lib, x: x[1:3] * x[0:2],
    "expand": lambda lib, x: x[:, :1].expand(4, 3) * x,
    "sum over dim 0": lambda lib, x: (x * x).sum(0),
    "@ w": lambda lib, x: x.exp() @ lib.tensor(_W.tolist(), dtype=lib.float64),
    "mean, norm": lambda lib, x: x.mean(1).exp() * x.norm(),
    "in place": lambda lib, x: (x * 1.0).mul_(x).add_(x[:, :1]),
}


def _np(t):
    return None if t is None else np.asarray(t.detach().tolist())


def _close(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(_np(g), _np(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", list(_FUNS))
def test_dual_tensor_that_requires_grad(case):
    f = _FUNS[case]

    def run(lib):
        fa = lib.autograd.forward_ad
        x = lib.tensor(_X.tolist(), dtype=lib.float64).requires_grad_()
        with fa.dual_level():
            p, t = fa.unpack_dual(f(lib, fa.make_dual(x, lib.tensor(_T.tolist(), dtype=lib.float64))))
            g, = lib.autograd.grad((t * t).sum() + p.sum(), x, retain_graph=True)
            (p.sum() * 2 + (t * 1.5).sum()).backward()
        return p, t, g, x.grad

    _close(run(gt), run(torch))


def _copied(lib, z):
    y = lib.zeros(4, 3, dtype=z.dtype)
    y.copy_(z.exp())
    return (y ** 2).sum()


def _written(lib, z):
    y = lib.ones(4, 3, dtype=z.dtype)
    y[1] = z[2] * 3
    return (y * z).sin().sum()


@pytest.mark.parametrize("fn", [_copied, _written], ids=["copy_", "item assignment"])
def test_grad_in_dual_level_through_a_tensor_made_in_the_function(fn):
    def run(lib):
        fa = lib.autograd.forward_ad
        with fa.dual_level():
            d = fa.make_dual(lib.tensor(_X.tolist(), dtype=lib.float64), lib.tensor(_T.tolist(), dtype=lib.float64))
            out = lib.func.grad(lambda z: fn(lib, z))(d * 1.0)
            return fa.unpack_dual(out)

    _close(run(gt), run(torch))
