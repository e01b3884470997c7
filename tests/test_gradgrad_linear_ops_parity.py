"""Second derivatives through the complex-number ops, the Fourier transforms, checkpointing, the
chunked ``linear_cross_entropy`` and fake quantization, beside torch 2.13 in float64/complex128.

Each case is gradgradcheck's quantities: y = f(x...); fixed random upstream gradients v (that
require grad; complex where y is); g = grad(y, x, v, create_graph=True), compared with torch's;
then the gradient of sum(Re(g_i * conj(w_i))) (fixed random w) with respect to the inputs and v
(a Hessian-vector product), compared with torch's to 1e-10. Where torch 2.13 itself cannot
differentiate twice (a reentrant checkpoint; the chunked linear_cross_entropy, whose gradients
come out without a graph) gt raises, or is compared with torch's own reference computation.
"""

import warnings

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

RTOL = 1e-10


def _draw(rng, shape, complex_=False):
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _inner(lib, g, w):
    """sum(Re(g * conj(w))) for g real or complex, with ops that differentiate complex tensors."""
    if g.dtype.is_complex:
        return (lib.view_as_real(g.resolve_conj()) * lib.tensor(np.stack([w.real, w.imag], -1))).sum()
    return (g * lib.tensor(w)).sum()


def _second(lib, fn, arrays):
    """(y, g, d sum(g * w) / d (inputs, v)) of ``fn`` in ``lib``, as float arrays (zeros where None)."""
    xs = [lib.tensor(a, requires_grad=True) for a in arrays]
    y = fn(lib, *xs)
    rng = np.random.default_rng(1)
    v = lib.tensor(_draw(rng, tuple(y.shape), y.dtype.is_complex), requires_grad=True)
    g = lib.autograd.grad(y, xs, v, create_graph=True, allow_unused=True)
    ws = [_draw(rng, a.shape, np.iscomplexobj(a)) for a in arrays]
    s = sum(_inner(lib, gi, w) for gi, w in zip(g, ws) if gi is not None and gi.requires_grad)
    h = lib.autograd.grad(s, xs + [v], allow_unused=True)
    return [_numpy(y)] + [np.zeros(t.shape) if a is None else _numpy(a) for a, t in zip(g + h, xs + xs + [v])]


def _numpy(t):
    return t.detach().resolve_conj().numpy()


def _check(fn, *arrays, rtol=RTOL):
    want = _second(torch, fn, arrays)
    got = _second(gt, fn, arrays)
    for a, b in zip(got, want):
        scale = max(1.0, float(np.abs(b).max(initial=0)))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)
    return got


def _real(shape, seed=0):
    return _draw(np.random.default_rng(seed), shape)


def _complex(shape, seed=0):
    return _draw(np.random.default_rng(seed), shape, True)


# ---- the complex-number ops ---------------------------------------------------------------------
COMPLEX = {
    "angle": (lambda L, z: L.angle(z), [_complex((3, 4))]),
    "real": (lambda L, z: L.real(z).sin() * L.real(z), [_complex((3, 4))]),
    "imag": (lambda L, z: L.imag(z) ** 3, [_complex((3, 4))]),
    "real_and_imag": (lambda L, z: L.real(z) * L.imag(z).exp(), [_complex((5,))]),
    "conj": (lambda L, z: L.view_as_real(L.conj(z).resolve_conj()) ** 3, [_complex((3, 4))]),
    "view_as_real": (lambda L, z: L.view_as_real(z).tanh(), [_complex((2, 3))]),
    "view_as_complex": (lambda L, x: L.view_as_complex(x.sin()), [_real((3, 2))]),
    "complex": (lambda L, a, b: L.complex(a.sin(), b * b), [_real((4,)), _real((4,), 1)]),
    "angle_of_complex": (lambda L, a, b: L.angle(L.complex(a, b)), [_real((6,)), _real((6,), 1)]),
    "cast_and_sums": (lambda L, x, z: L.angle(x.to(L.complex128) + 0.5j - z), [_real((5,)), _complex((5,))]),
    "real_plus_complex": (lambda L, x, z: L.angle(x - z + x.sin()), [_real((2, 3)), _complex((3,))]),
    "sums": (lambda L, z, u: L.view_as_real(-(z + u) - (u - 0.5j)) ** 3, [_complex((4,)), _complex((4,), 1)]),
}


@pytest.mark.parametrize("name", list(COMPLEX))
def test_complex_ops_second_derivatives_are_torchs(name):
    fn, arrays = COMPLEX[name]
    _check(fn, *arrays)


THIRD = {
    "angle": (lambda L, z: L.angle(z), _complex((4,))),
    "fft_and_parts": (lambda L, z: L.real(L.fft.fft(z, n=5)) * L.imag(L.fft.ifft(z, n=5)), _complex((4,))),
    "irfft": (lambda L, z: L.fft.irfft(z, n=7) ** 3, _complex((4,))),
    "rfft": (lambda L, x: L.view_as_real(L.fft.rfft(x)) ** 3, _real((6,))),
}


@pytest.mark.parametrize("name", list(THIRD))
def test_third_derivatives_are_torchs(name):
    # the recorded gradients are made of ops that record theirs for complex tensors too
    fn, a = THIRD[name]
    got = []
    for lib in (torch, gt):
        z = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad(fn(lib, z).sum(), z, create_graph=True)
        g2 = lib.view_as_real(g) if g.dtype.is_complex else g
        (h,) = lib.autograd.grad((g2 ** 2).sum(), z, create_graph=True)
        (k,) = lib.autograd.grad((lib.view_as_real(h) if h.dtype.is_complex else h).sin().sum(), z)
        got.append([_numpy(t) for t in (g, h, k)])
    for a, b in zip(*got):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=RTOL * max(1.0, np.abs(a).max()))


def test_angle_at_zero_differentiates_to_zero_twice():
    # torch's own second derivative is NaN at z = 0 (0/0 inside its where); gt's first derivative
    # is 0 there, and so is its derivative
    z = gt.tensor([0j, 1 + 1j], requires_grad=True)
    (g,) = gt.autograd.grad(gt.angle(z).sum(), z, create_graph=True)
    (h,) = gt.autograd.grad(gt.view_as_real(g).sum(), z)
    np.testing.assert_allclose(g.detach().numpy(), [0, -0.5 + 0.5j], atol=1e-15)
    np.testing.assert_allclose(h.numpy()[0], 0)
    np.testing.assert_allclose(h.numpy()[1], 0.5 - 0.5j, rtol=1e-14)       # d/dz of i z / |z|^2 summed


class _Twice(gt.autograd.function.Function):
    """gt's op whose recorded gradient is not marked as written for complex tensors (``complex_graph``)."""

    def forward(self, a):
        return a * 2

    def backward(self, g):
        return (g * 2,)

    def backward_graph(self, g):
        return (g * 2,)


def test_complex_ops_outside_the_recorded_set_are_still_refused():
    z = gt.tensor([1 + 2j], requires_grad=True)
    loss = gt.view_as_real(_Twice.apply(z)).sum()
    with pytest.raises(NotImplementedError, match="complex"):
        gt.autograd.grad(loss, z, create_graph=True)
    assert z.grad is None


# ---- the Fourier transforms ---------------------------------------------------------------------
FFT = {
    "fft_complex": (lambda L, z: L.view_as_real(L.fft.fft(z)) ** 3, [_complex((3, 8))]),
    "fft_real_cut_ortho": (lambda L, x: L.fft.fft(x.sin(), n=5, norm="ortho"), [_real((2, 8))]),
    "fft_padded_forward": (lambda L, z: L.view_as_real(L.fft.fft(z, n=11, dim=0, norm="forward")).sin(),
                           [_complex((7, 3))]),
    "ifft": (lambda L, z: L.view_as_real(L.fft.ifft(z, n=6)) ** 2, [_complex((4, 9))]),
    "fft2_sized": (lambda L, x: L.view_as_real(L.fft.fft2(x.tanh(), s=(3, 6))) ** 3, [_real((4, 5))]),
    "ifftn": (lambda L, z: L.view_as_real(L.fft.ifftn(z, norm="ortho")).cos(), [_complex((3, 4, 2))]),
    "rfft_even": (lambda L, x: L.view_as_real(L.fft.rfft(x)) ** 3, [_real((3, 8))]),
    "rfft_odd_padded": (lambda L, x: L.view_as_real(L.fft.rfft(x * x, n=9, norm="forward")).sin(), [_real((7,))]),
    "rfft_cut_dim0": (lambda L, x: L.fft.rfft(x.exp(), n=4, dim=0, norm="ortho"), [_real((6, 3))]),
    "irfft": (lambda L, z: L.fft.irfft(z) ** 3, [_complex((2, 5))]),
    "irfft_odd": (lambda L, z: L.fft.irfft(z, n=9, norm="ortho").sin(), [_complex((5,))]),
    "irfft_cut": (lambda L, z: L.fft.irfft(z, n=4, norm="forward") ** 2, [_complex((3, 7))]),
    "irfft_padded": (lambda L, z: L.fft.irfft(z, n=14) ** 3, [_complex((4,))]),
    "rfftn": (lambda L, x: L.view_as_real(L.fft.rfftn(x)) ** 3, [_real((4, 6))]),
    "irfftn": (lambda L, z: L.fft.irfftn(z, s=(3, 6)) ** 3, [_complex((3, 4))]),
    "hfft": (lambda L, z: L.fft.hfft(z, n=7) ** 3, [_complex((2, 4))]),
    "ihfft": (lambda L, x: L.view_as_real(L.fft.ihfft(x.sin()).resolve_conj()) ** 2, [_real((6,))]),
    "rfft_then_irfft": (lambda L, x: L.fft.irfft(L.fft.rfft(x.sin()), n=8) ** 3, [_real((8,))]),
}


@pytest.mark.parametrize("name", list(FFT))
def test_fourier_transforms_second_derivatives_are_torchs(name):
    fn, arrays = FFT[name]
    _check(fn, *arrays)


def test_fft_gradient_of_gradient_is_the_transform_again():
    # y = fft(x): g = fft's adjoint of v; d sum(Re(g conj(w))) / dv is the transform of w again
    z = gt.tensor(_complex((6,)), requires_grad=True)
    v = gt.tensor(_complex((6,), 1), requires_grad=True)
    (g,) = gt.autograd.grad(gt.fft.fft(z), z, v, create_graph=True)
    w = _complex((6,), 2)
    (h,) = gt.autograd.grad(_inner(gt, g, w), v)
    np.testing.assert_allclose(h.numpy(), np.fft.fft(w), rtol=1e-12)


# ---- checkpointing --------------------------------------------------------------------------------
def _checkpointed(L, x, w):
    b = w * 1.5 + 0.1            # a computed tensor the segment captures
    segment = lambda a: (a @ b).tanh() * a         # noqa: E731
    # torch's non-reentrant checkpoint differentiates (twice) as the plain segment; torch's own is
    # left out here, as importing it takes seconds (torch._dynamo)
    return gt.utils.checkpoint.checkpoint(segment, x, use_reentrant=False) if L is gt else segment(x)


def test_non_reentrant_checkpoint_second_derivatives_are_torchs():
    _check(_checkpointed, _real((3, 4)), _real((4, 4), 1))


def _reentrant(lib):
    x = lib.tensor(_real((3, 4)), requires_grad=True)
    y = lib.utils.checkpoint.checkpoint(lambda a: a.sin() * a, x, use_reentrant=True)
    return x, (y ** 2).sum()


@pytest.mark.parametrize("how", ["grad", "backward"])
def test_reentrant_checkpoint_refuses_second_derivatives(how):
    x, loss = _reentrant(gt)
    with pytest.raises(RuntimeError, match="use_reentrant=True cannot be differentiated twice.*no gradient was"):
        if how == "grad":
            gt.autograd.grad(loss, x, create_graph=True)
        else:
            loss.backward(create_graph=True)
    assert x.grad is None
    loss.backward()                    # the first derivative still works
    np.testing.assert_allclose(x.grad.numpy(), 2 * (x.sin() * x * (x.cos() * x + x.sin())).detach().numpy(),
                               rtol=1e-12)


@pytest.mark.first_pass         # torch only: why gt refuses (torch's reentrant checkpoint cannot differentiate twice)
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")    # torch's, about cycles
def test_torchs_reentrant_checkpoint_cannot_differentiate_twice():
    x, loss = _reentrant(torch)
    with pytest.raises(RuntimeError, match="use_reentrant=True, torch.utils.checkpoint is incompatible with .grad"):
        torch.autograd.grad(loss, x, create_graph=True)
    x, loss = _reentrant(torch)
    loss.backward(create_graph=True)
    assert not x.grad.requires_grad          # a gradient without a graph


# ---- the chunked linear_cross_entropy -------------------------------------------------------------
def _lce(reduction, chunk, bias, class_weight, ignore):
    t0 = np.array([0, 2, 1, 2, 0, 1, 2])
    if ignore:
        t0[[1, 4]] = -100

    def fn(L, x, w, b):
        t = L.tensor(t0)
        cw = None if not class_weight else L.tensor([0.5, 2.0, 1.25], dtype=L.float64)
        kw = {"linear_bias": b if bias else None, "weight": cw, "reduction": reduction}
        if L is gt:
            kw["options"] = gt.nn.LinearCrossEntropyOptions(batch_chunk_size=chunk)
        y = L.nn.functional.linear_cross_entropy(x, w, t, **kw)
        return y + 0.0 * b.sum() if not bias else y       # b in the graph either way
    return fn


LCE = [("mean", 3, True, False, False), ("sum", 2, True, True, False), ("none", 4, False, False, True),
       ("mean", 7, False, True, True), ("mean", 2, True, False, True)]


@pytest.mark.parametrize("case", LCE, ids=["-".join(map(str, c)) for c in LCE])
def test_chunked_linear_cross_entropy_second_derivatives_are_the_reference_paths(case):
    # torch's chunked path records no graph (its gradients are constants), so gt's chunked op is
    # compared with torch's reference path, linear then cross_entropy: the same loss
    _check(_lce(*case), _real((7, 4)), _real((3, 4), 1), _real((3,), 2))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_chunked_linear_cross_entropy_passes_gradgradcheck(reduction):
    # gt's second derivatives against finite differences of its own first derivatives
    x, w, b = (gt.tensor(a, requires_grad=True) for a in (_real((4, 2)), _real((3, 2), 1), _real((3,), 2)))
    options = gt.nn.LinearCrossEntropyOptions(batch_chunk_size=3)
    t = gt.tensor([0, 2, -100, 1])
    assert gt.autograd.gradgradcheck(lambda x, w, b: gt.nn.functional.linear_cross_entropy(
        x, w, t, linear_bias=b, reduction=reduction, options=options), (x, w, b), atol=1e-6)


@pytest.mark.first_pass        # torch only
def test_torchs_chunked_linear_cross_entropy_gives_a_gradient_without_a_graph():
    # why the test above compares with torch's reference path (torch 2.13's documented limit)
    x = torch.tensor(_real((5, 4)), requires_grad=True)
    w = torch.tensor(_real((3, 4), 1), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = TF.linear_cross_entropy(x, w, torch.tensor([0, 2, 1, 2, 0]), options=torch.nn.LinearCrossEntropyOptions())
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    assert not g.requires_grad


# ---- fake quantization (straight-through gradient) ----------------------------------------------
def _per_tensor(L, x):
    return L.fake_quantize_per_tensor_affine(x, 0.1, 0, -5, 5) ** 2 * x


def _per_channel(L, x):
    scale = L.tensor([0.1, 0.2, 0.3], dtype=L.float32)
    zp = L.tensor([0, 1, -1], dtype=L.int32)
    return L.fake_quantize_per_channel_affine(x, scale, zp, 1, -5, 5).sin()


@pytest.mark.parametrize("fn", [_per_tensor, _per_channel], ids=["per_tensor", "per_channel"])
def test_fake_quantize_second_derivatives_are_torchs(fn):
    got = _check(fn, _real((4, 3)))
    assert (got[2] == 0).any() and (got[2] != 0).any()      # values outside the range: some gradients 0


# ---- over a mesh --------------------------------------------------------------------------------------
def _sh(L, t):
    return t.shard(0) if L is gt else t


SHARDED = {
    "angle": (lambda L, z: L.angle(_sh(L, z)), [_complex((4, 3))]),
    "parts": (lambda L, z: L.real(_sh(L, z)) * L.imag(_sh(L, z)).exp(), [_complex((4, 3))]),
    "views": (lambda L, x: L.view_as_real(L.view_as_complex(_sh(L, x).sin())) ** 3, [_real((4, 3, 2))]),
    "complex": (lambda L, a, b: L.angle(L.complex(_sh(L, a), b)), [_real((4, 3)), _real((4, 3), 1)]),
    "fft": (lambda L, z: L.view_as_real(L.fft.fft(_sh(L, z), n=5)) ** 3, [_complex((4, 6))]),
    "fft_sharded_axis": (lambda L, z: L.view_as_real(L.fft.fft(_sh(L, z), dim=0)) ** 3, [_complex((4, 6))]),
    "rfft": (lambda L, x: L.view_as_real(L.fft.rfft(_sh(L, x), n=7)) ** 3, [_real((4, 6))]),
    "irfft": (lambda L, z: L.fft.irfft(_sh(L, z)) ** 3, [_complex((4, 5))]),
    "fake_quantize": (lambda L, x: _per_tensor(L, _sh(L, x)), [_real((4, 3))]),
    "linear_cross_entropy": (lambda L, x, w, b: _lce("mean", 2, True, True, True)(L, _sh(L, x), w, b),
                             [_real((7, 4)), _real((3, 4), 1), _real((3,), 2)]),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("name", list(SHARDED))
def test_sharded_inputs_give_torchs_second_derivatives(name):
    fn, arrays = SHARDED[name]
    with use_mesh(2):
        _check(fn, *arrays)
