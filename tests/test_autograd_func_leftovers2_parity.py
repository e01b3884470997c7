"""Leftover differences from torch 2.13 in autograd, gt.func, an optimizer and gt.load, each beside
torch: recorded gradients that read the op's saved result (exp, sqrt, sigmoid, tanh, softmax...)
where gt's read the input, so an input changed in place after the forward raised (softmax and
log_softmax read the changed input: silently wrong second derivatives); Adafactor's second moments
through torch's lerp kernel and torch's mean squares; ``linearize``'s ``requires_grad_()`` on its
input and ``jvp`` of a vector's ``t_()``; ``gt.is_grad_enabled()`` inside ``inference_mode`` under
``enable_grad``; a callable ``map_location``."""

import io

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

X = np.abs(np.random.RandomState(0).randn(3, 4)) * 0.5 + 0.5
W = np.random.RandomState(1).randn(3, 4)


def _ops(lib):
    F = lib.nn.functional
    return {
        "exp": lambda t: t.exp(), "sqrt": lambda t: t.sqrt(), "sigmoid": lambda t: t.sigmoid(),
        "tanh": lambda t: lib.tanh(t), "rsqrt": lambda t: t.rsqrt(), "reciprocal": lambda t: t.reciprocal(),
        "number over x": lambda t: 3.0 / t, "expm1": lambda t: t.expm1(), "exp2": lambda t: t.exp2(),
        "tan": lambda t: t.tan(), "ndtri": lambda t: lib.special.ndtri(t),
        "softmax": lambda t: F.softmax(t, -1), "log_softmax": lambda t: F.log_softmax(t, 0),
    }


def _second_order(lib, name, change):
    """The gradient and a Hessian-vector product of ``f(x * scale)`` with the input (``"input"``)
    or the result (``"result"``) changed in place after the forward; or torch's error's words."""
    x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
    w = lib.tensor(W, dtype=lib.float64)
    x2 = x * (0.5 if name == "ndtri" else 1.0)      # (ndtri's domain is (0, 1))
    y = _ops(lib)[name](x2)
    (x2 if change == "input" else y).mul_(2)          # (softmax is blind to an added constant)
    try:
        g, = lib.autograd.grad((y * w).sum(), x, create_graph=True)
        h, = lib.autograd.grad((g * g).sum() + (y * w).sum(), x)      # the result used beside its gradient
    except RuntimeError as e:
        return str(e).split(":")[0]
    return g.detach().numpy(), h.numpy()


@pytest.mark.parametrize("name", list(_ops(gt)))
def test_recorded_gradients_read_the_saved_result_as_torch(name):
    """torch's formulas of these ops read the saved result (its ``grad_fn`` the op itself), so an
    input changed in place after the forward is no error and the second derivative is of the
    values of then; gt's read the input: it raised (exp, sqrt, sigmoid, tanh, reciprocal, rsqrt,
    tan, expm1, exp2, ndtri, a number over x) or, for softmax and log_softmax, computed from the
    changed input (silently wrong). A changed result raises in both, with torch's words (not that
    of ``3 / x``: torch's is ``x.reciprocal() * 3``, whose saved reciprocal is no output)."""
    torch = torch_or_skip()
    for change in ("input", "result"):
        ours, theirs = _second_order(gt, name, change), _second_order(torch, name, change)
        if isinstance(theirs, str):
            assert change == "result" and ours == theirs, (ours, theirs)
            assert theirs == "one of the variables needed for gradient computation has been modified by an inplace " \
                "operation"
            continue
        assert not isinstance(ours, str), ours
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_saved_result_meets_its_output_in_the_walk_as_torch():
    """The result read by the recorded gradient is the output's node: a hook on the output sees the
    gradient through both (torch's engine sums them at one node), a plain backward through both
    paths frees the graph once, and a third derivative goes through it again."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = (x * 1).tanh()
        seen = []
        y.register_hook(lambda g: seen.append(float(g.detach().sum())))
        g, = lib.autograd.grad(y.sum(), x, create_graph=True)
        h, = lib.autograd.grad((g * g).sum(), x, create_graph=True)
        (h.sum() + y.sum()).backward()
        got.append((seen, x.grad.numpy()))
    np.testing.assert_allclose(got[0][0], got[1][0], rtol=1e-12)
    np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-10)


def test_prod_refuses_a_changed_result_as_torch():
    """torch's prod saves its result: changing it in place raises at the backward (gt computed the
    gradient from the input alone)."""
    torch = torch_or_skip()
    for lib in (gt, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = (x * 1).prod(-1)
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def _adafactor(lib, **options):
    rs = np.random.RandomState(0)
    shapes = [(4, 6), (2, 3, 5), (7,)]
    params = [lib.tensor(rs.randn(*s).astype(np.float32), requires_grad=True) for s in shapes]
    opt = lib.optim.Adafactor(params, **options)
    for _ in range(5):
        for p, s in zip(params, shapes):
            # halves: the squares and their sums are exact, so torch's reductions and gt's agree
            p.grad = lib.tensor(rs.randint(-4, 5, size=s).astype(np.float32) / 2)
        opt.step()
    states = [{k: v.numpy() for k, v in opt.state[p].items() if k != "step"} for p in params]
    return states, [p.detach().numpy() for p in params]


@pytest.mark.parametrize("options", [{}, {"beta2_decay": -0.5}, {"weight_decay": 0.1, "maximize": True}])
def test_adafactor_second_moments_follow_torchs_bits(options):
    """Adafactor's ``row_var``/``col_var``/``variance`` over five float32 steps, bit for bit as
    torch's: its ``lerp_`` (gt used two hand-written formulas, an ulp off in up to half of the
    elements) of torch's mean squares (the norm squared over the count). The parameters are
    torch's to float32's rounding (the norm behind each step's size is summed in another order)."""
    torch = torch_or_skip()
    (ours, ours_p), (theirs, theirs_p) = _adafactor(gt, **options), _adafactor(torch, **options)
    for a, b in zip(ours, theirs):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for a, b in zip(ours_p, theirs_p):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("flag", [True, False])
def test_linearize_requires_grad_sets_the_callers_flag_as_torch(flag):
    """torch runs linearize's function on the primals themselves first, so ``requires_grad_()`` of
    an input there sets the caller's flag (on or off); gt left it as it was. The tangents stay."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=not flag)

        def f(t):
            t.requires_grad_(flag)
            return t * t
        _, jvp_fn = lib.func.linearize(f, x)
        got.append((x.requires_grad, jvp_fn(lib.ones(3, dtype=lib.float64)).tolist()))
    assert got[0] == got[1] == (flag, [2.0, 4.0, 6.0])


@pytest.mark.parametrize("shape", [(3,), ()])
def test_jvp_of_t_of_a_vector_counts_the_tangents_version_as_torch(shape):
    """``t_()`` of a vector (or a 0-d tensor) inside jvp's function: torch's forward mode makes it
    on the tangent too, whose version counts it (gt's stayed: no change was recorded)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        x, tx = lib.ones(shape, dtype=lib.float64), lib.full(shape, 2.0, dtype=lib.float64)
        before = x._version, tx._version
        out, tangent = lib.func.jvp(lambda t: t.t_() * 3, (x,), (tx,))
        # (a sharded primal or tangent of the torch engine counts each shard's change: MISSING.md)
        primal = x._version - before[0] if getattr(x, "_placed", None) is None else 1
        tangent_count = tx._version - before[1]
        tangent_count = tangent_count if getattr(tx, "_placed", None) is None else min(tangent_count, 1)
        got.append((primal, tangent_count, out.tolist(), tangent.tolist()))
    assert got[0] == got[1]


def test_is_grad_enabled_inside_inference_mode_as_torch():
    """``is_grad_enabled()`` is torch's grad mode: True inside ``inference_mode`` under
    ``enable_grad`` (gt said False there); the ops record nothing all the same, as torch's."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        w = lib.ones(2, requires_grad=True)
        seen = []
        with lib.inference_mode():
            seen.append(lib.is_grad_enabled())
            with lib.enable_grad():
                seen += [lib.is_grad_enabled(), (w * 2).requires_grad]
                with lib.inference_mode(False):
                    seen += [lib.is_grad_enabled(), (w * 2).requires_grad]
            with lib.inference_mode(False), lib.no_grad():
                seen.append(lib.is_grad_enabled())
        seen.append(lib.is_grad_enabled())
        got.append(seen)
    assert got[0] == got[1] == [False, True, False, True, True, False, True]


_CALLABLES = {
    "itself": lambda s, loc: s,
    "cpu()": lambda s, loc: s.cpu(),
    "None": lambda s, loc: None,
    "clone()": lambda s, loc: s.clone(),
    "to(device='cpu')": lambda s, loc: s.to(device="cpu"),
}


@pytest.mark.parametrize("name", list(_CALLABLES))
def test_a_callable_map_location_gets_a_storage_as_torchs(name):
    """``map_location(storage, location)`` gets the storage read, as torch's ``UntypedStorage`` (its
    type's name, device, bytes), once a storage; what it returns is what the tensors are made from,
    None meaning the storage as read (gt refused None, ``clone()`` and anything but the storage
    itself, and gave a stand-in with no device or size). Tensors of one storage stay views of one."""
    torch = torch_or_skip()
    buf = io.BytesIO()
    base = torch.arange(6.0)
    torch.save({"a": base, "b": base[2:], "c": torch.tensor([1, 2], dtype=torch.int32)}, buf)
    got = []
    for lib in (gt, torch):
        seen = []

        def place(storage, location):
            seen.append((type(storage).__name__, location, str(storage.device), storage.nbytes(), storage.size(),
                         storage.is_cuda))
            return _CALLABLES[name](storage, location)
        out = lib.load(io.BytesIO(buf.getvalue()), map_location=place)
        out["a"][3] = 10.0                 # one storage: b sees it
        got.append((seen, {k: v.tolist() for k, v in out.items()}))
    assert got[0] == got[1]


def test_a_callable_map_location_cannot_move_a_storage():
    """gt makes the loaded tensors on its engine's device: ``storage.cuda()`` raises gt's error naming
    what works; a return that is no storage is a TypeError."""
    buf = io.BytesIO()
    gt.save({"a": gt.ones(2)}, buf)
    with pytest.raises(RuntimeError, match="cannot be moved while loading"):
        gt.load(io.BytesIO(buf.getvalue()), map_location=lambda s, loc: s.cuda())
    with pytest.raises(TypeError, match="must return a storage"):
        gt.load(io.BytesIO(buf.getvalue()), map_location=lambda s, loc: "cpu")
