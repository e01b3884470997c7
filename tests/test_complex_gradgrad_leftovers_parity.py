"""The last ops of complex second derivatives beside torch 2.13, and what torch refuses there.

torch has no complex kernel for softmax (so none for ``scaled_dot_product_attention``), ``clamp``,
``max``/``min``/``amax``/``amin``/``aminmax``, ``maximum``/``minimum``/``fmax``: gt raises its
error class and message where it computed or raised its own. The p-norms of complex tensors
differentiate twice as torch's (torch's gradgradcheck quantities, tests/test_gradgrad_linear_ops_parity.py),
``norm(p=None)`` included; the 0-"norm" has torch's undefined gradient. Complex ``eigh``/``svd`` of
a batch sharded over the mesh give torch's second derivatives. ``logsumexp``'s backward reads the
input as it is at the backward (after ``x.data = new``) beside the result of the forward, as torch's.
"""

import math

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from test_gradgrad_linear_ops_parity import _check, _complex, _real, torch

RTOL = 1e-10
COMPLEX = ["complex64", "complex128"]


def _error(fn):
    try:
        fn()
    except Exception as error:     # noqa: BLE001 -- the class and message are the comparison
        return type(error), str(error)
    return None


def _same_error(fn, dtype, shape=(3, 4)):
    """``fn(lib, z)`` raises in torch; gt raises the same class with the same message."""
    a = _complex(shape)
    want = _error(lambda: fn(torch, torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True)))
    assert want is not None
    got = _error(lambda: fn(gt, gt.tensor(a, dtype=getattr(gt, dtype), requires_grad=True)))
    assert got == want


# ---- scaled_dot_product_attention: torch's softmax has no complex kernel ------------------------
def _sdpa(**kwargs):
    def run(lib, z):
        q = z.reshape(1, 3, 4)
        mask = kwargs.get("attn_mask")
        extra = dict(kwargs, attn_mask=None if mask is None else lib.zeros(3, 3, dtype=z.dtype))
        return lib.nn.functional.scaled_dot_product_attention(q, q * 2, q, **extra)
    return run


SDPA = {"plain": _sdpa(), "causal": _sdpa(is_causal=True), "float_mask": _sdpa(attn_mask=True),
        "scale": _sdpa(scale=0.3), "dropout": _sdpa(dropout_p=0.5)}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("case", list(SDPA))
def test_complex_attention_raises_torchs_error(case, dtype):
    # gt computed it (and refused its create_graph gradient), where torch refuses the forward
    _same_error(SDPA[case], dtype)


@pytest.mark.parametrize("shapes", [((3, 4), (0, 4), (0, 6)), ((0, 4), (3, 4), (3, 6)), ((2, 0, 3, 4),) * 3])
def test_complex_attention_over_no_score_gives_torchs_empty_result(shapes):
    # no softmax runs: torch gives zeros (no keys) or an empty result, with gradients
    got = []
    for lib in (torch, gt):
        q, k, v = (lib.tensor(_complex(s, i), requires_grad=True) for i, s in enumerate(shapes))
        out = lib.nn.functional.scaled_dot_product_attention(q, k, v)
        (g,) = lib.autograd.grad(out.abs().sum(), q, allow_unused=True)
        got.append((tuple(out.shape), out.dtype.is_complex, out.detach().numpy(), None if g is None else g.numpy()))
    (ts, tc, tv, tg), (gs, gc, gv, gg) = got
    assert (gs, gc) == (ts, tc)
    np.testing.assert_array_equal(gv, tv)
    if tg is not None:
        np.testing.assert_array_equal(gg, tg)


# ---- clamp, max, min and their kin: complex numbers have no order ------------------------------
ORDERED = {
    "clamp": lambda L, z: L.clamp(z, -0.5, 0.5),
    "clamp_min": lambda L, z: z.clamp(min=0.1),
    "clip": lambda L, z: L.clip(z, -0.5, 0.5),
    "clamp_tensor": lambda L, z: z.clamp(z.real.to(z.dtype)),
    "clamp_": lambda L, z: z.detach().clamp_(-1, 1),
    "real_clamp_complex_bound": lambda L, z: z.real.clamp(z),
    "max": lambda L, z: L.max(z),
    "min": lambda L, z: z.min(),
    "max_dim": lambda L, z: L.max(z, 1),
    "min_dim_keepdim": lambda L, z: z.min(dim=0, keepdim=True),
    "max_other": lambda L, z: L.max(z, z),
    "amax": lambda L, z: L.amax(z, 1),
    "amax_all": lambda L, z: z.amax(),
    "amin": lambda L, z: L.amin(z, (0, 1)),
    "aminmax": lambda L, z: L.aminmax(z),
    "aminmax_dim": lambda L, z: L.aminmax(z, dim=0),
    "maximum": lambda L, z: L.maximum(z, z),
    "minimum_real_other": lambda L, z: L.minimum(z.real, z),
    "fmax": lambda L, z: L.fmax(z, z),
    "fmin": lambda L, z: L.fmin(z.real, z),
}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("name", list(ORDERED))
def test_ordered_ops_refuse_complex_as_torch(name, dtype):
    _same_error(ORDERED[name], dtype)


@pytest.mark.parametrize("call", ["amax", "max", "amin_negative", "min_keepdim"])
def test_extrema_check_their_dims_before_the_dtype_as_torch(call):
    # (gt's message of a dim out of range is its own, as for real tensors)
    run = {"amax": lambda z: z.amax(5), "max": lambda z: z.max(5), "amin_negative": lambda z: z.amin(-3),
           "min_keepdim": lambda z: z.min(dim=2, keepdim=True)}[call]
    for lib in (torch, gt):
        with pytest.raises(IndexError, match="out of range"):
            run(lib.tensor(_complex((3, 4))))


# ---- p-norms of complex tensors, differentiated twice ----------------------------------------
P = [1, 2, 3, math.inf, -math.inf, 0.5, -1]
NORMS = {
    **{f"vector_norm_{p}": (lambda L, z, p=p: L.linalg.vector_norm(z, p)) for p in P},
    **{f"vector_norm_{p}_dim": (lambda L, z, p=p: L.linalg.vector_norm(z, p, dim=1, keepdim=True) * z) for p in P},
    **{f"norm_{p}": (lambda L, z, p=p: L.norm(z, p)) for p in [None, "fro", "nuc", 1, 2, 3, math.inf]},
    "norm_None_dim": lambda L, z: z.norm(None, dim=0),
    **{f"matrix_norm_{p}": (lambda L, z, p=p: L.linalg.matrix_norm(z, p))
       for p in ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf]},
    "linalg_norm_2": lambda L, z: L.linalg.norm(z, 2),
}


@pytest.mark.parametrize("name", list(NORMS))
def test_complex_norms_second_derivatives_match_torch(name):
    # norm(p=None) was refused ("p must be 'fro', 'nuc', inf, -inf or a number"): torch's default
    _check(NORMS[name], _complex((3, 4)), rtol=RTOL)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_the_zero_norm_has_torchs_undefined_gradient(dtype):
    # gt gave zeros (recorded, for create_graph); torch's norm backward leaves p = 0 out
    a = _real((3, 4))
    a[0, 1] = 0
    for lib in (torch, gt):
        x = lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True)
        y = lib.linalg.vector_norm(x, 0)
        assert y.requires_grad and float(y.detach()) == 11
        for create_graph in (False, True):
            assert lib.autograd.grad(y, x, allow_unused=True, create_graph=create_graph, retain_graph=True) == (None,)
            with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
                lib.autograd.grad(y, x, retain_graph=True, create_graph=create_graph)
        (lib.norm(x, 0, dim=1).sum() + x.abs().sum()).backward()
        np.testing.assert_array_equal(x.grad.numpy(), x.detach().sgn().conj().resolve_conj().numpy())
        y.backward()
        with lib.autograd.forward_ad.dual_level():
            dual = lib.autograd.forward_ad.make_dual(x.detach(), lib.ones_like(x))
            tangent = lib.autograd.forward_ad.unpack_dual(lib.linalg.vector_norm(dual, 0, dim=1)).tangent
            assert tangent.tolist() == [0.0, 0.0, 0.0]


# ---- complex eigh and svd over a sharded batch ------------------------------------------------
def _eigh_loss(L, z):
    w, v = L.linalg.eigh(z + z.mH)
    return ((v * w.exp().unsqueeze(-2)) @ v.mH + v.abs() ** 2).reshape(-1)


def _svd_loss(L, z):
    u, s, vh = L.linalg.svd(z, full_matrices=False)
    return L.cat([((u * (s * s).unsqueeze(-2)) @ u.mH).reshape(-1), (vh.abs() ** 4).reshape(-1),
                  s.to(z.dtype).reshape(-1)])


SPECTRAL = {
    "eigh": (_eigh_loss, (4, 3, 3)),
    "eigvalsh": (lambda L, z: L.linalg.eigvalsh(z + z.mH), (4, 3, 3)),
    "svd_tall": (_svd_loss, (4, 4, 3)),
    "svd_wide": (_svd_loss, (4, 3, 5)),
    "svd_full_u": (lambda L, z: L.linalg.svd(z).U.abs() ** 4, (4, 4, 3)),
    "svdvals": (lambda L, z: L.linalg.svdvals(z), (4, 4, 3)),
}


@pytest.mark.own_mesh
@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("name", list(SPECTRAL))
def test_complex_spectral_second_derivatives_of_a_sharded_batch_match_torch(name, n):
    fn, shape = SPECTRAL[name]
    with use_mesh(n):
        _check(lambda L, z: fn(L, z.shard(0) if L is gt else z), _complex(shape), rtol=1e-9)


# ---- logsumexp's backward reads the input of now and the result of the forward ----------------
def _changed(lib, how, x, b):
    if how == "assign":
        x.data = lib.tensor(b)
    else:
        x.data.copy_(lib.tensor(b))


@pytest.mark.parametrize("kind", ["real", "complex"])
@pytest.mark.parametrize("how", ["assign", "copy_"])
def test_logsumexp_gradient_after_x_data_changes_is_torchs(how, kind):
    # gt's composite read the input of the forward: exp(x_old - out) for torch's exp(x_new - out)
    draw = _real if kind == "real" else _complex
    a, b, w = draw((2, 3)), draw((2, 3), 1), draw((2,), 2)
    got = []
    for lib in (torch, gt):
        x = lib.tensor(a, requires_grad=True)
        y = lib.logsumexp(x, 1)
        _changed(lib, how, x, b)
        (y * lib.tensor(w).conj()).real.sum().backward()
        x2 = lib.tensor(a, requires_grad=True)
        y2 = lib.logsumexp(x2, (0, 1), keepdim=True)
        _changed(lib, how, x2, b)
        (g,) = lib.autograd.grad(y2.real.sum(), x2, create_graph=True)
        got.append([x.grad.numpy(), g.detach().numpy()])
    for have, want in zip(got[1], got[0]):
        np.testing.assert_allclose(have, want, rtol=1e-12, atol=1e-14)


LOGSUMEXP = {
    "real": (lambda L, x: L.logsumexp(x, 1), _real((3, 4))),
    "real_all_keepdim": (lambda L, x: L.logsumexp(x, (0, 1), keepdim=True) * x, _real((3, 4))),
    "complex": (lambda L, z: L.logsumexp(z * z, -1, True) * z, _complex((3, 4))),
    "zero_dim": (lambda L, x: L.logsumexp(x, 0) * x, np.array(0.7)),
}


@pytest.mark.parametrize("name", list(LOGSUMEXP))
def test_logsumexp_second_derivatives_match_torch(name):
    fn, a = LOGSUMEXP[name]
    _check(fn, a, rtol=RTOL)


def test_logsumexp_of_infinite_rows_gives_torchs_values_and_gradients():
    a = _real((3, 4))
    a[0], a[1, 2] = -np.inf, np.inf
    got = []
    for lib in (torch, gt):
        x = lib.tensor(a, requires_grad=True)
        y = lib.logsumexp(x, 1)
        (g,) = lib.autograd.grad(y, x, lib.ones(3, dtype=lib.float64))
        got.append([y.detach().numpy(), g.numpy()])
    for have, want in zip(got[1], got[0]):
        np.testing.assert_array_equal(have, want)
