"""torch API that gt lacked until 2026-12-05, beside torch 2.13: ``geqrf``/``orgqr``/``ormqr`` (top
level and Tensor methods; complex ``householder_product``), ``Module.to_empty``/``Module.compile``,
torch's orthogonal "householder" map without trivialization, and
smaller top-level names (constants, dtype aliases, ``gt.Size``, ``gt.GradScaler``...)."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn.utils import parametrizations as GP

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _array(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype in (np.float32, np.complex64) else dict(rtol=1e-10, atol=1e-12)


def _pair(shape, dtype, seed, grad=False):
    a = _array(shape, dtype, seed)
    return gt.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)


def _close(g, t, dtype):
    assert tuple(g.shape) == tuple(t.shape)
    assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    np.testing.assert_allclose(g.detach().numpy(), t.detach().numpy(), **_tol(dtype))


# ---- geqrf / orgqr / ormqr ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 4, 3), (2, 1, 3, 6), (0, 3), (3, 0), (2, 0, 2)])
def test_geqrf_gives_lapacks_reflectors_and_tau(dtype, shape):
    g, t = _pair(shape, dtype, seed=1)
    (ga, gtau), (ta, ttau) = gt.geqrf(g), torch.geqrf(t)
    _close(ga, ta, dtype)
    _close(gtau, ttau, dtype)
    method = g.geqrf()
    assert type(method).__name__ == "geqrf" and method._fields == ("a", "tau")
    _close(method.a, ta, dtype)


def test_geqrf_is_recorded_without_a_derivative_as_torch():
    g, t = _pair((4, 3), np.float64, seed=2, grad=True)
    ga, gtau = gt.geqrf(g)
    ta, ttau = torch.geqrf(t)
    assert ga.requires_grad and gtau.requires_grad and ta.requires_grad
    with pytest.raises(NotImplementedError, match="the derivative for 'geqrf' is not implemented"):
        (ga.sum() + gtau.sum()).backward()
    with pytest.raises(NotImplementedError, match="the derivative for 'geqrf' is not implemented"):
        (ta.sum() + ttau.sum()).backward()
    with gt.no_grad():
        assert not gt.geqrf(g).a.requires_grad
    out = (gt.empty(0), gt.empty(0))
    res = gt.geqrf(gt.tensor(_array((3, 2), np.float32, 3)), out=out)
    assert res[0] is out[0] and res[1] is out[1]
    _close(out[0], torch.geqrf(torch.tensor(_array((3, 2), np.float32, 3)))[0], np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", [((5, 3), 3), ((5, 3), 2), ((4, 4), 4), ((2, 4, 2), 1)])
def test_orgqr_is_householder_product_with_its_gradients(dtype, shape, k):
    ga, ta = _pair(shape, dtype, seed=4, grad=True)
    gtau, ttau = _pair(shape[:-2] + (k,), dtype, seed=5, grad=True)
    g, t = gt.orgqr(ga, gtau), torch.orgqr(ta, ttau)
    _close(g, t, dtype)
    _close(ga.orgqr(gtau), t, dtype)
    _close(gt.linalg.householder_product(ga, gtau), torch.linalg.householder_product(ta, ttau), dtype)
    w = _array(tuple(t.shape), dtype, seed=6)
    (g * gt.tensor(w)).real.sum().backward()
    (t * torch.tensor(w)).real.sum().backward()
    _close(ga.grad, ta.grad, dtype)
    _close(gtau.grad, ttau.grad, dtype)
    # with geqrf's reflectors it is the Q of the QR decomposition
    q = gt.orgqr(*gt.geqrf(ga.detach()))
    _close(q, torch.linalg.qr(ta.detach())[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_ormqr_applies_q_or_its_adjoint_with_gradients(dtype, left, transpose, shape):
    ga, ta = _pair(shape, dtype, seed=7)
    (gq, gtau), (tq, ttau) = gt.geqrf(ga), torch.geqrf(ta)
    m = shape[-2]
    gc, tc = _pair(shape[:-2] + ((m, 2) if left else (3, m)), dtype, seed=8, grad=True)
    gq, gtau = gq.detach().requires_grad_(), gtau.detach().requires_grad_()
    tq, ttau = tq.detach().requires_grad_(), ttau.detach().requires_grad_()
    g = gt.ormqr(gq, gtau, gc, left=left, transpose=transpose)
    t = torch.ormqr(tq, ttau, tc, left=left, transpose=transpose)
    _close(g, t, dtype)
    _close(gq.ormqr(gtau, gc, left, transpose), t, dtype)
    w = _array(tuple(t.shape), dtype, seed=9)
    (g * gt.tensor(w)).real.sum().backward()
    (t * torch.tensor(w)).real.sum().backward()
    for a, b in ((gq, tq), (gtau, ttau), (gc, tc)):
        _close(a.grad, b.grad, dtype)


def test_ormqr_takes_torchs_keyword_names():
    ga, ta = _pair((4, 3), np.float64, seed=10)
    gc, tc = _pair((4, 2), np.float64, seed=11)
    (gq, gtau), (tq, ttau) = gt.geqrf(ga), torch.geqrf(ta)
    _close(gt.ormqr(input=gq, input2=gtau, input3=gc, transpose=True),
           torch.ormqr(input=tq, input2=ttau, input3=tc, transpose=True), np.float64)
    _close(gt.orgqr(input=gq, input2=gtau), torch.orgqr(input=tq, input2=ttau), np.float64)


def test_no_reflection_gives_a_new_tensor_as_torch():
    gc, tc = gt.ones(0, 2), torch.ones(0, 2)
    g, t = gt.ormqr(gt.ones(0, 3), gt.ones(0), gc), torch.ormqr(torch.ones(0, 3), torch.ones(0), tc)
    assert g is not gc and tuple(g.shape) == tuple(t.shape) == (0, 2)
    g, t = gt.orgqr(gt.ones(3, 2), gt.ones(0)), torch.orgqr(torch.ones(3, 2), torch.ones(0))
    _close(g, t, np.float32)
    g[0, 0] = 5.0                       # its own memory, writable
    assert g[0, 0].item() == 5.0 and gt.orgqr(gt.ones(3, 2), gt.ones(0))[0, 0].item() == 1.0


_ORMQR_MISUSE = [
    ((4, 3), (3,), (3, 2), {}, "other.shape\\[-2\\] must be equal to input.shape\\[-2\\]"),
    ((4, 3), (2,), (4, 2), {}, "tau.shape\\[-1\\] must be equal to min\\(other.shape\\[-2\\], input.shape\\[-1\\]\\)"),
    ((4, 3), (3,), (2, 2), {"left": False}, "other.shape\\[-1\\] must be equal to input.shape\\[-2\\]"),
    ((2, 3), (3,), (2, 2), {}, "tau.shape\\[-1\\] must be equal to min\\(other.shape\\[-2\\], input.shape\\[-1\\]\\)"),
    ((2, 4, 3), (1, 3), (2, 4, 2), {}, "Expected batch dimensions of tau to be equal to input.shape\\[:-2\\]"),
    ((2, 4, 3), (2, 3), (1, 4, 2), {}, "Expected batch dimensions of other to be equal to input.shape\\[:-2\\]"),
    ((2, 4, 3), (2, 3), (4, 2), {}, "Expected other to have the same number of dimensions as input"),
    ((4, 3), (3,), (4,), {}, "other must have at least 2 dimensions"),
]


@pytest.mark.parametrize("a,tau,c,kw,message", _ORMQR_MISUSE)
def test_ormqr_refuses_misuse_as_torch(a, tau, c, kw, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ormqr(torch.ones(a), torch.ones(tau), torch.ones(c), **kw)
    with pytest.raises(RuntimeError, match=message):
        gt.ormqr(gt.ones(a), gt.ones(tau), gt.ones(c), **kw)


def test_geqrf_and_ormqr_refuse_bad_inputs():
    for lib in (torch, gt):
        with pytest.raises(RuntimeError, match="geqrf: input must have at least 2 dimensions"):
            lib.geqrf(lib.ones(3))
        with pytest.raises(RuntimeError, match="Expected input and tau to have the same dtype"):
            lib.ormqr(lib.ones(4, 3), lib.ones(3, dtype=lib.float64), lib.ones(4, 2))
        with pytest.raises(RuntimeError, match="Expected input and other to have the same dtype"):
            lib.ormqr(lib.ones(4, 3), lib.ones(3), lib.ones(4, 2, dtype=lib.float64))
        with pytest.raises(TypeError):
            lib.geqrf([[1.0, 2.0]])
    with pytest.raises(TypeError, match="int64"):
        gt.geqrf(gt.ones(3, 2, dtype=gt.int64))       # torch: NotImplementedError, "not implemented for 'Long'"


# ---- orthogonal's householder map without trivialization (geqrf in right_inverse) ---------------
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_orthogonal_householder_without_trivialization_as_torch(shape):
    from torch.nn.utils import parametrizations as TP
    w = _array(shape, np.float64, seed=12)
    gm, tm = nn.Linear(shape[1], shape[0]).double(), torch.nn.Linear(shape[1], shape[0]).double()
    gm.weight.data, tm.weight.data = gt.tensor(w), torch.tensor(w)
    GP.orthogonal(gm, orthogonal_map="householder", use_trivialization=False)
    TP.orthogonal(tm, orthogonal_map="householder", use_trivialization=False)
    _close(gm.parametrizations.weight.original, tm.parametrizations.weight.original, np.float64)
    _close(gm.weight, tm.weight, np.float64)
    x = _array((2, shape[1]), np.float64, seed=13)
    gm(gt.tensor(x)).sum().backward()
    tm(torch.tensor(x)).sum().backward()
    _close(gm.parametrizations.weight.original.grad, tm.parametrizations.weight.original.grad, np.float64)
    q = np.linalg.qr(_array((max(shape),) * 2, np.float64, seed=14))[0][:shape[0], :shape[1]]
    with gt.no_grad():
        gm.weight = gt.tensor(q)
    with torch.no_grad():
        tm.weight = torch.tensor(q)
    _close(gm.weight, tm.weight, np.float64)
    np.testing.assert_allclose(gm.weight.detach().numpy(), q, atol=1e-12)


# ---- Module.to_empty, Module.compile ----------------------------------------------
def _models():
    return (nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)),
            torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)))


def test_to_empty_gives_new_memory_and_keeps_the_parameters():
    for lib, m in zip((gt, torch), _models()):
        weight, alias = m[0].weight, m[0].weight.detach()
        before = alias.numpy().copy()
        m[0].weight.grad = lib.ones(2, 3)
        assert m.to_empty(device="cpu") is m
        assert m[0].weight is weight and weight.requires_grad
        assert tuple(weight.shape) == (2, 3) and tuple(m[0].weight.grad.shape) == (2, 3)
        assert str(m[1].num_batches_tracked.dtype).endswith("int64")
        with lib.no_grad():
            weight.fill_(7.0)
        np.testing.assert_array_equal(alias.numpy(), before)       # the old memory is no longer the weight's
        assert sorted(m.state_dict()) == sorted(_models()[1].state_dict())


def test_to_empty_without_recurse_leaves_the_children():
    for lib, m in zip((gt, torch), _models()):
        alias = m[0].weight.detach()
        assert m.to_empty(device=None, recurse=False) is m
        with lib.no_grad():
            m[0].weight.fill_(5.0)
        np.testing.assert_array_equal(alias.numpy(), np.full((2, 3), 5.0))


def test_to_empty_refuses_as_torch():
    for m in _models():
        with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
            m.to_empty("cpu")
        with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'device'"):
            m.to_empty()
        with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
            m.to_empty(device="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(AssertionError):
            _models()[1].to_empty(device="cuda")
        with pytest.raises(AssertionError):     # gt.devices.CudaUnavailableError is an AssertionError too
            _models()[0].to_empty(device="cuda")


def test_module_compile_checks_torchs_arguments_and_keeps_the_module():
    gm, tm = nn.Linear(3, 2).double(), torch.nn.Linear(3, 2).double()
    tm.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in gm.state_dict().items()})
    calls = []
    gm.register_forward_hook(lambda *a: calls.append(1))
    assert gm.compile() is None and gm.compile(mode="max-autotune", fullgraph=True, dynamic=False) is None
    x = _array((4, 3), np.float64, seed=15)
    _close(gm(gt.tensor(x)), tm(torch.tensor(x)), np.float64)
    assert calls == [1] and sorted(gm.state_dict()) == ["bias", "weight"]
    for m in (gm, tm):
        with pytest.raises(RuntimeError, match="Unrecognized mode=bad"):
            m.compile(mode="bad")
        with pytest.raises(RuntimeError, match="Either mode or options can be specified"):
            m.compile(mode="default", options={})
        with pytest.raises(TypeError, match="compile\\(\\) takes from 0 to 1 positional arguments but 2 were given"):
            m.compile(1)


# ---- smaller names: constants, dtype aliases, Size, GradScaler, device flags, copies, nn.grad ---
def test_torchs_constants_and_dtype_aliases():
    for name in ("pi", "e", "inf", "nan"):
        assert math.isnan(getattr(gt, name)) if name == "nan" else getattr(gt, name) == getattr(torch, name)
    assert gt.newaxis is None is torch.newaxis
    assert gt.ones(3)[gt.newaxis].shape == tuple(torch.ones(3)[torch.newaxis].shape) == (1, 3)
    for name in ("half", "int", "float", "double", "long", "short", "cfloat", "cdouble"):
        assert str(getattr(gt, name)).split(".")[-1] == str(getattr(torch, name)).split(".")[-1]
    assert gt.ones(2, dtype=gt.half).dtype == gt.float16 and gt.ones(2, dtype=gt.int).dtype == gt.int32
    assert isinstance(gt.float32, gt.dtype) and isinstance(torch.float32, torch.dtype)
    assert gt.GradScaler is gt.amp.GradScaler and torch.GradScaler is torch.amp.GradScaler


def test_size_is_torchs_tuple_of_ints():
    import pickle
    g, t = gt.Size([2, 3]), torch.Size([2, 3])
    assert g == t == (2, 3) and g.numel() == t.numel() == 6 and gt.Size().numel() == torch.Size().numel() == 1
    for a, b in ((g[0:1], t[0:1]), (g + (4,), t + (4,)), ((4,) + g, (4,) + t), (g * 2, t * 2)):
        assert isinstance(a, gt.Size) and isinstance(b, torch.Size) and tuple(a) == tuple(b)
    assert repr(g) == "gt.Size([2, 3])" and pickle.loads(pickle.dumps(g)) == g
    assert gt.ones(g).shape == g and gt.ones(2, 3).reshape(gt.Size([3, 2])).shape == (3, 2)
    for lib in (gt, torch):
        with pytest.raises(TypeError, match="'int' object is not iterable"):
            lib.Size(3)
        with pytest.raises(TypeError, match="takes an iterable of 'int' \\(item 0 is 'float'\\)"):
            lib.Size([2.0])


def test_device_flags_and_view_as_copies():
    x = gt.ones(1)
    assert not (x.is_xla or x.is_ipu or x.is_maia or x.is_mtia or x.is_vulkan)
    z = _array((3,), np.complex64, seed=16)
    gz, tz = gt.tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    g, t = gt.view_as_real_copy(gz), torch.view_as_real_copy(tz)
    _close(g, t, np.float32)
    (g * gt.tensor([1.0, 2.0])).sum().backward()
    (t * torch.tensor([1.0, 2.0])).sum().backward()
    _close(gz.grad, tz.grad, np.complex64)
    r = _array((2, 2), np.float64, seed=17)
    _close(gt.view_as_complex_copy(gt.tensor(r)), torch.view_as_complex_copy(torch.tensor(r)), np.complex128)
    x = np.arange(16.0).reshape(1, 4, 2, 2)
    _close(gt.nn.functional.native_channel_shuffle(gt.tensor(x), 2),
           torch.nn.functional.native_channel_shuffle(torch.tensor(x), 2), np.float64)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1)])
def test_nn_grad_conv_gradients_as_torch(dims, stride, padding, dilation, groups):
    x_size, w_size = (2, 4) + (6,) * dims, (6, 4 // groups) + (3,) * dims
    x, w = _array(x_size, np.float64, seed=18), _array(w_size, np.float64, seed=19)
    conv = getattr(torch.nn.functional, f"conv{dims}d")
    go = _array(tuple(conv(torch.tensor(x), torch.tensor(w), None, stride, padding, dilation, groups).shape),
                np.float64, seed=20)
    T = [torch.tensor(a, requires_grad=True) for a in (w, go, x)]
    G = [gt.tensor(a, requires_grad=True) for a in (w, go, x)]
    opts = (stride, padding, dilation, groups)
    ti = getattr(torch.nn.grad, f"conv{dims}d_input")(x_size, T[0], T[1], *opts)
    gi = getattr(gt.nn.functional.grad, f"conv{dims}d_input")(x_size, G[0], G[1], *opts)
    tw = getattr(torch.nn.grad, f"conv{dims}d_weight")(T[2], w_size, T[1], *opts)
    gw = getattr(gt.nn.grad, f"conv{dims}d_weight")(G[2], w_size, G[1], *opts)
    _close(gi, ti, np.float64)
    _close(gw, tw, np.float64)
    (ti.sin().sum() + tw.cos().sum()).backward()
    (gi.sin().sum() + gw.cos().sum()).backward()
    for a, b in zip(G, T):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_accelerator_answers_as_torch_without_one():
    if gt.cuda.is_available() or torch.accelerator.is_available():
        pytest.skip("compares the answers of a process without an accelerator")
    assert gt.accelerator.is_available() is torch.accelerator.is_available() is False
    assert gt.accelerator.current_accelerator() is None and torch.accelerator.current_accelerator() is None
    assert gt.accelerator.device_count() == torch.accelerator.device_count() == 0
    for lib in (gt, torch):
        for call in (lib.accelerator.current_device_index, lib.accelerator.synchronize,
                     lib.accelerator.memory_allocated, lib.accelerator.empty_cache):
            with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
                call()
        with lib.accelerator.device_index(None):
            pass
    device = gt.accelerator.current_accelerator().type if gt.accelerator.is_available() else "cpu"
    assert device == "cpu"


def test_module_call_super_init_passes_arguments_to_a_mixin():
    for lib in (gt, torch):
        class Tagged:
            def __init__(self, tag=None, **kwargs):
                self.tag = tag
                super().__init__(**kwargs)

        class WithMixin(lib.nn.Module, Tagged):
            call_super_init = True

        class Plain(lib.nn.Module):
            pass

        m = WithMixin(tag="x")
        assert m.tag == "x" and m.training and dict(m.named_parameters()) == {}
        assert lib.nn.Module.call_super_init is False and lib.nn.Module.dump_patches is False
        with pytest.raises(TypeError, match="Plain.__init__\\(\\) takes 1 positional argument but 2 were given"):
            Plain(3)
        with pytest.raises(TypeError, match="Plain.__init__\\(\\) got an unexpected keyword argument 'a'"):
            Plain(a=1)
