"""gt.func, gt.autograd.grad's options and higher-order gradients beside torch: the cases a
side-by-side fuzzer found to differ (each program runs in both libraries on the same values)."""

import numpy as np
import pytest

import gt
from helpers import randn, torch_or_skip


def _lib(name):
    return gt if name == "gt" else torch_or_skip()


def _t(lib, a, requires_grad=False):
    return lib.tensor(np.asarray(a), dtype=lib.float64, requires_grad=requires_grad)


def _same(ours, theirs):
    """Same structure, shapes, requires_grad and values (None where torch gives None)."""
    if theirs is None:
        assert ours is None
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            _same(ours[k], theirs[k])
    elif isinstance(theirs, bool):
        assert ours is theirs
    else:
        assert ours.shape == tuple(theirs.shape)
        assert ours.requires_grad == theirs.requires_grad
        theirs = theirs.detach().numpy(force=True)     # a ZeroTensor too
        np.testing.assert_allclose(ours.detach().numpy(), theirs, rtol=1e-10, atol=1e-12)


def _both(program):
    _same(program(gt), program(torch_or_skip()))


X, V, R = randn(4, seed=1), randn(3, seed=2), randn(5, 3, 2, seed=3)


# ---- gt.autograd.grad ------------------------------------------------------------------------
def test_grad_is_grads_batched():
    def program(lib):
        x = _t(lib, X, True)
        y = x.exp()
        return lib.autograd.grad(y, x, grad_outputs=_t(lib, np.eye(4)), is_grads_batched=True)
    _both(program)


def test_grad_is_grads_batched_several_outputs_and_create_graph():
    def program(lib):
        x = _t(lib, randn(3, 4, seed=4), True)
        y, z = x @ _t(lib, randn(4, 2, seed=5)), (x * x).sum()
        got = lib.autograd.grad([y, z], x, grad_outputs=[_t(lib, R), _t(lib, np.arange(5.0))],
                                is_grads_batched=True, create_graph=True)
        return got, lib.autograd.grad(got[0].sum(), x)
    _both(program)


def test_grad_is_grads_batched_unused_inputs_and_errors():
    def program(lib):
        x, w = _t(lib, X, True), _t(lib, V, True)
        eye = _t(lib, np.eye(4))
        unused = lib.autograd.grad(x.exp(), [x, w], eye, retain_graph=True, allow_unused=True, is_grads_batched=True)
        # the materialized zeros are not batched, as torch's
        zeros = lib.autograd.grad(x.exp(), [x, w], eye, is_grads_batched=True, materialize_grads=True)
        return unused, zeros
    _both(program)
    x = gt.tensor(X, requires_grad=True)
    with pytest.raises(RuntimeError, match="first dimension of each grad_output"):
        gt.autograd.grad(x.exp(), x, grad_outputs=gt.tensor(X), is_grads_batched=True)


def test_grad_materialized_zeros_require_grad_with_create_graph():
    def program(lib):
        x, w = _t(lib, X, True), _t(lib, V, True)
        got = lib.autograd.grad((x ** 3).sum(), [x, w], create_graph=True, materialize_grads=True)
        return got, [g.requires_grad for g in got]
    _both(program)


def test_grad_inputs_dict_generator_only_inputs_and_extra_grad_outputs():
    def program(lib):
        x, w = _t(lib, X, True), _t(lib, V, True)
        loss = (x ** 2).sum() + w.sum()
        named = lib.autograd.grad(loss, {"a": x, "b": w}, retain_graph=True)
        unused = lib.autograd.grad((x ** 2).sum(), {"a": x, "b": w}, allow_unused=True)
        generated = lib.autograd.grad(loss, (t for t in [x]), retain_graph=True)
        # torch's 6th positional argument is only_inputs: allow_unused stays a keyword
        positional = lib.autograd.grad(loss, [x, w], None, True, False, True)
        extra = lib.autograd.grad([x.exp()], x, grad_outputs=[_t(lib, X), _t(lib, X)])   # zipped, as torch
        return named, unused, generated, positional, extra
    _both(program)
    x = gt.tensor(X, requires_grad=True)
    with pytest.warns(FutureWarning, match="only_inputs argument is deprecated"):
        gt.autograd.grad((x * x).sum(), x, only_inputs=False)


# ---- higher-order gradients of piecewise-linear ops -------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda lib, x: lib.relu(x).sum(),
    lambda lib, x: x.abs().sum(),
    lambda lib, x: lib.nn.functional.l1_loss(x, x.detach() * 0),
    lambda lib, x: lib.nn.functional.max_pool1d(x.reshape(1, 1, 4), 2, 1).sum(),
    lambda lib, x: lib.nn.functional.avg_pool1d(x.reshape(1, 1, 4), 2, 1).sum(),
    lambda lib, x: lib.nn.functional.leaky_relu(x, 0.1).sum(),
    lambda lib, x: lib.nn.functional.hardtanh(x * 2).sum(),
    lambda lib, x: lib.nn.functional.threshold(x, 0.1, 2.0).sum(),
    lambda lib, x: lib.nn.functional.prelu(x, lib.tensor([0.2], dtype=lib.float64)).sum(),
    lambda lib, x: lib.nn.functional.rrelu(x).sum(),
    lambda lib, x: lib.nn.functional.softshrink(x, 0.5).sum(),
    lambda lib, x: lib.nn.functional.hardshrink(x, 0.5).sum(),
], ids=["relu", "abs", "l1", "max_pool", "avg_pool", "leaky_relu", "hardtanh", "threshold", "prelu", "rrelu",
        "softshrink", "hardshrink"])
def test_second_gradient_of_piecewise_linear_ops(fn):
    def program(lib):
        x = _t(lib, X, True)
        g, = lib.autograd.grad(fn(lib, x), x, create_graph=True)
        h, = lib.autograd.grad(g.sum(), x, create_graph=True)      # gt raised: g did not require grad
        third = lib.autograd.grad(h.sum(), x)[0] if h.requires_grad else None
        return g, h, third
    _both(program)


def test_hessian_of_relu_with_create_graph():
    def program(lib):
        return lib.autograd.functional.hessian(lambda x: lib.relu(x).sum(), _t(lib, X), create_graph=True)
    _both(program)


# ---- gt.func ---------------------------------------------------------------------------------
@pytest.mark.parametrize("api", ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd"])
def test_non_tensor_aux_is_refused(api):
    for lib in (gt, torch_or_skip()):
        f, x = (lambda x: ((x * x).sum(), {"n": 2})), _t(lib, X)
        calls = {"grad": lambda: lib.func.grad(f, has_aux=True)(x),
                 "grad_and_value": lambda: lib.func.grad_and_value(f, has_aux=True)(x),
                 "vjp": lambda: lib.func.vjp(f, x, has_aux=True),
                 "jvp": lambda: lib.func.jvp(f, (x,), (x,), has_aux=True),
                 "jacrev": lambda: lib.func.jacrev(f, has_aux=True)(x),
                 "jacfwd": lambda: lib.func.jacfwd(f, has_aux=True)(x)}
        with pytest.raises(RuntimeError, match="Expected tensors, got unsupported type"):
            calls[api]()


def test_jacfwd_refuses_random_draws_in_error_mode():
    for lib in (gt, torch_or_skip()):
        with pytest.raises(RuntimeError, match="randomness error mode"):
            lib.func.jacfwd(lambda x: x * lib.randn(4))(_t(lib, X))
        lib.func.jacfwd(lambda x: x * lib.randn(4), randomness="different")(_t(lib, X))


def test_vmap_one_element_tuple_out_dims_for_a_tensor():
    _both(lambda lib: (lib.func.vmap(lambda x: x * 2, out_dims=(1,))(_t(lib, R)),
                       lib.func.vmap(lambda x: x * 2, out_dims=(-1,))(_t(lib, R))))


def test_vmap_over_an_empty_batch():
    def program(lib):
        x, m = _t(lib, np.zeros((3, 0, 4))), _t(lib, randn(4, 5, seed=6))
        pair = lib.func.vmap(lambda x, m: (x @ m, x.sum()), in_dims=(1, None), out_dims=(1, 0))(x, m)
        return pair, lib.func.vmap(lambda x: x * 2)(_t(lib, np.zeros((0, 3))))
    _both(program)


def test_vmap_refuses_in_place_change_of_an_unmapped_input():
    for lib in (gt, torch_or_skip()):
        acc = _t(lib, np.zeros(2))
        with pytest.raises(RuntimeError):
            lib.func.vmap(lambda x, a: a.add_(x), in_dims=(0, None))(_t(lib, R[:, 0]), acc)


def test_transpose_of_a_zero_dim_tensor_inside_vmap():
    _both(lambda lib: lib.func.vmap(lambda v: v.transpose(0, -1) * 2)(_t(lib, V)))
