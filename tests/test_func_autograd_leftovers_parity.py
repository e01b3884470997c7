"""Leftover differences from torch 2.13 in autograd and gt.func, beside torch: ``//`` has no
derivative (its backward raises) where the rounding divisions and remainders have zero or
identity ones; ``requires_grad_()`` is refused inside a transform's function; ``jvp``/``jacfwd``
of a function that changes its input in place (the caller's input and tangent change with it);
``vmap`` of a function that changes a captured tensor makes the change once."""

import contextlib
import re

import numpy as np
import pytest

import gt
from helpers import torch_or_skip
from test_view_func_leftovers_parity import _outcome

A = np.array([1.5, -2.7, 3.2, 0.3])
B = np.array([0.4, 1.1, -0.9, -0.7])
T = np.array([1.0, 0.5, 2.0, -1.5])


def _leaves(lib):
    return (lib.tensor(A, dtype=lib.float64, requires_grad=True), lib.tensor(B, dtype=lib.float64, requires_grad=True))


def _np(x):
    return None if x is None else np.asarray(x.detach().tolist())


# ---- 1. // and its relatives: which have a derivative -------------------------------------------
DIVISIONS = {
    "//": lambda a, b, lib: a // b,
    "floor_divide": lambda a, b, lib: lib.floor_divide(a, b),
    "// number": lambda a, b, lib: a // 0.7,
    "number //": lambda a, b, lib: 2.0 // b,
    "floor_divide number first": lambda a, b, lib: lib.floor_divide(2.0, b),
    "floor_divide_": lambda a, b, lib: a.clone().floor_divide_(b),
    "//=": lambda a, b, lib: a.clone().__ifloordiv__(b),
    "floor_divide_ of a view": lambda a, b, lib: a.clone()[1:].floor_divide_(2.0),
    "div floor": lambda a, b, lib: lib.div(a, b, rounding_mode="floor"),
    "div trunc": lambda a, b, lib: lib.div(a, b, rounding_mode="trunc"),
    "div_ floor": lambda a, b, lib: a.clone().div_(b, rounding_mode="floor"),
    "remainder": lambda a, b, lib: lib.remainder(a, b),
    "%": lambda a, b, lib: a % b,
    "% number": lambda a, b, lib: a % 0.7,
    "number %": lambda a, b, lib: 5.0 % b,
    "remainder number first": lambda a, b, lib: lib.remainder(5.0, b),
    "fmod": lambda a, b, lib: lib.fmod(a, b),
    "fmod number": lambda a, b, lib: lib.fmod(a, 0.7),
    "floor": lambda a, b, lib: a.floor() * b,
    "round": lambda a, b, lib: lib.round(a) * b,
    "round decimals": lambda a, b, lib: a.round(decimals=1) * b,
    "trunc": lambda a, b, lib: a.trunc() * b,
}


@pytest.mark.parametrize("name", list(DIVISIONS))
def test_division_gradients_as_torchs(name):
    """torch's ``floor_divide`` has no derivative: its result requires grad and a backward through
    it raises "derivative for aten::floor_divide is not implemented" (``floor_divide_`` names
    itself; ``remainder`` with a number first likewise); gt gave zero gradients. The rounding
    divisions have zero gradients, the remainders 1 and ``-(a // b)``, as before."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        a, b = _leaves(lib)
        y = DIVISIONS[name](a, b, lib)
        kind, text = _outcome(lambda: y.sum().backward())
        got.append((y.requires_grad, _np(y), kind, text if kind != "ok" else (_np(a.grad), _np(b.grad)),
                    y.grad_fn.name() if kind != "ok" and y.grad_fn is not None else None))
    (g_rg, g_val, g_kind, g_res, g_node), (t_rg, t_val, t_kind, t_res, t_node) = got
    assert g_rg == t_rg and g_kind == t_kind, (got[0][:3], got[1][:3])
    np.testing.assert_allclose(g_val, t_val, rtol=1e-12)
    if t_kind == "ok":
        for ours, theirs in zip(g_res, t_res):
            assert (ours is None) == (theirs is None)
            if theirs is not None:
                np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    else:
        assert g_res == t_res
        assert g_node == t_node or "NotImplemented" not in t_node     # (a view's node: torch's AsStrided)


def test_floor_division_in_a_graph_that_does_not_reach_it():
    """A ``//`` result that the loss does not use leaves the backward alone (torch's too), and
    ``//`` of tensors that do not require grad records nothing."""
    torch = torch_or_skip()
    for lib in (gt, torch):
        a, b = _leaves(lib)
        _ = a // b
        (a * b).sum().backward()
        np.testing.assert_allclose(_np(a.grad), B)
        assert not (a.detach() // b.detach()).requires_grad


# ---- 2. requires_grad_() inside a transform's function -----------------------------------------
X = np.array([1.0, 2.0, 3.0])
CALLS = {
    "input": lambda a, lib: a.requires_grad_(),
    "input, False": lambda a, lib: a.requires_grad_(False),
    "intermediate": lambda a, lib: (a * 2).requires_grad_(),
    "new tensor": lambda a, lib: lib.ones(3, dtype=lib.float64).requires_grad_(),
    "detached": lambda a, lib: a.detach().requires_grad_(),
    "under no_grad": lambda a, lib: _under(lib.no_grad(), lambda: a.requires_grad_()),
    "Module.requires_grad_": lambda a, lib: MODULES[lib.__name__].requires_grad_(False),
    "autograd.functional": lambda a, lib: lib.autograd.functional.jacobian(lambda z: z * 2, a.detach()),
    # torch's C++ sets the flag without the Python method: allowed
    "factory requires_grad=": lambda a, lib: lib.zeros(3, dtype=lib.float64, requires_grad=True),
    "tensor requires_grad=": lambda a, lib: lib.tensor([1.0, 2.0], requires_grad=True),
    "new_zeros requires_grad=": lambda a, lib: a.new_zeros(3, requires_grad=True),
    "Parameter": lambda a, lib: lib.nn.Parameter(lib.ones(3)),
    "attribute": lambda a, lib: setattr(lib.ones(3), "requires_grad", True),
    "autograd.grad": lambda a, lib: lib.autograd.grad((a * a).sum(), a, create_graph=True),
}
TRANSFORMS = {
    "grad": lambda f, lib: lib.func.grad(f)(lib.tensor(X, dtype=lib.float64)),
    "vjp": lambda f, lib: lib.func.vjp(f, lib.tensor(X, dtype=lib.float64))[0],
    "jvp": lambda f, lib: lib.func.jvp(f, (lib.tensor(X, dtype=lib.float64),), (lib.ones(3, dtype=lib.float64),))[1],
    "vmap": lambda f, lib: lib.func.vmap(f)(lib.ones(2, 3, dtype=lib.float64)),
    "jacrev": lambda f, lib: lib.func.jacrev(f)(lib.tensor(X, dtype=lib.float64)),
    "jacfwd": lambda f, lib: lib.func.jacfwd(f)(lib.tensor(X, dtype=lib.float64)),
    "hessian": lambda f, lib: lib.func.hessian(f)(lib.tensor(X, dtype=lib.float64)),
    "linearize": lambda f, lib: lib.func.linearize(f, lib.tensor(X, dtype=lib.float64))[1](
        lib.ones(3, dtype=lib.float64)),
    "grad of grad": lambda f, lib: lib.func.grad(lambda y: lib.func.grad(f)(y).sum())(lib.tensor(X, dtype=lib.float64)),
}


MODULES = {}


def _under(context, fn):
    with context:
        return fn()


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_requires_grad_inside_a_transform_as_torch(transform):
    """torch refuses ``Tensor.requires_grad_()`` inside a transform's function, on any tensor, with
    any flag, also through ``autograd.functional`` and ``Module.requires_grad_``; factories'
    ``requires_grad=``, ``Parameter`` and the attribute are allowed; ``linearize`` traces under
    forward AD, outside functorch's layers, and allows it. gt allowed every call."""
    torch = torch_or_skip()
    MODULES.update(gt=gt.nn.Linear(3, 2), torch=torch.nn.Linear(3, 2))    # (made outside: vmap refuses draws)
    for call in CALLS:
        if transform == "linearize" and call == "input, False":
            continue        # gt's linearize differentiates the input by reverse mode: its flag turned off cuts it
        got = []
        for lib in (gt, torch):
            def f(a, lib=lib):
                # vmap's slices, jvp's and jacfwd's inputs (dual tensors: torch's require no grad, gt's do; its
                # grad refuses them as torch's: tests/test_func_leftovers4_parity.py): nothing to differentiate
                if call == "autograd.grad" and (not a.requires_grad or transform in ("jvp", "jacfwd")):
                    return (a * a).sum()
                CALLS[call](a, lib)
                return (a * a).sum()
            kind, out = _outcome(lambda: TRANSFORMS[transform](f, lib))
            got.append((kind, out if kind != "ok" else _np(out)))
        assert got[0][0] == got[1][0], (call, got)
        if got[1][0] == "ok":
            np.testing.assert_allclose(got[0][1], got[1][1], rtol=1e-12, err_msg=call)
        else:
            assert got[0][1] == got[1][1], call


def test_requires_grad_outside_a_transform_still_works():
    x = gt.ones(3).requires_grad_()
    gt.func.grad(lambda y: (y * y).sum())(x)
    assert x.requires_grad_(False) is x and not x.requires_grad


# ---- 3. jvp/jacfwd of a function that changes its input in place -------------------------------
CHANGES = {
    "mul_": lambda a: (a.mul_(2), a * a)[1],
    "add_": lambda a: (a.add_(1), a.sin())[1],
    "item assignment": lambda a: (a.__setitem__(0, 5.0), a * 3)[1],
    "sin_, returned": lambda a: a.sin_(),
    "a view's add_": lambda a: (a[1:].add_(a[0].detach()), a.exp())[1],
    "t_ then mul_": lambda a: (a.t_(), a.mul_(3), a.sum(0, keepdim=True))[2],
    "no change": lambda a: a * a,
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_jvp_of_a_function_changing_its_input_as_torch(name):
    """torch's forward mode lets the function change its input in place: the caller's primal
    changes, and so does its tangent (the dual keeps the caller's tensor); ``jacfwd`` the same
    (its tangents are its own). gt raised the leaf error."""
    torch = torch_or_skip()
    got = []
    shape = (4,) if name != "t_ then mul_" else (2, 2)
    # on a mesh gt refuses a write through a view of a sharded tensor in the graph (its own limit)
    mesh = gt.sharding.use_mesh(1) if name == "a view's add_" else contextlib.nullcontext()
    for lib in (gt, torch):
        with mesh if lib is gt else contextlib.nullcontext():
            x, t = lib.tensor(A.reshape(shape), dtype=lib.float64), lib.tensor(T.reshape(shape), dtype=lib.float64)
            out, tangent = lib.func.jvp(CHANGES[name], (x,), (t,))
            x2 = lib.tensor(A.reshape(shape), dtype=lib.float64)
            jac = lib.func.jacfwd(CHANGES[name])(x2)
            got.append([_np(v) for v in (out, tangent, x, t, jac, x2)])
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_jvp_of_a_function_changing_two_inputs_and_reverse_mode_still_refuses():
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        x, c = lib.tensor(A, dtype=lib.float64), lib.tensor(B, dtype=lib.float64)
        tx, tc = lib.tensor(T, dtype=lib.float64), lib.tensor(T * 3, dtype=lib.float64)
        out, tangent = lib.func.jvp(lambda a, b: (a.mul_(2), b.add_(a), a * b)[2], (x, c), (tx, tc))
        kind, _ = _outcome(lambda: lib.func.vjp(lambda a: a.mul_(2), lib.tensor(A, dtype=lib.float64)))
        assert kind is RuntimeError, lib.__name__        # reverse mode's leaf error, as before
        got.append([_np(v) for v in (out, tangent, x, c, tx, tc)])
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# ---- 4. vmap of a function that changes a captured tensor --------------------------------------
VMAP_CHANGES = {
    "add_ number": lambda c, x: (c.add_(1), x + c)[1],
    "mul_ after a read": lambda c, x: (lambda y: (c.mul_(2), y + c)[1])(x * c),
    "a view's add_": lambda c, x: (c[1:].add_(1), x + c)[1],
    "detached alias": lambda c, x: (c.detach().mul_(3), x * c)[1],
    "two changes": lambda c, x: (c.add_(1), c.mul_(c.detach()), x - c)[2],
    "exp_": lambda c, x: (c.exp_(), x * c)[1],
}


@pytest.mark.parametrize("name", list(VMAP_CHANGES))
def test_vmap_changes_a_captured_tensor_once_as_torch(name):
    """torch's vmap changes a captured tensor once where the values are not batched; gt's runs the
    function once per element, and puts the tensor's values back before each later element, so
    each element reads and changes the same values: torch's outputs and final tensor. gt refused
    these (and before that made the change once per element)."""
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        c = lib.tensor([0.5, 1.0, 2.0], dtype=lib.float64)
        out = lib.func.vmap(lambda x: VMAP_CHANGES[name](c, x))(lib.tensor(np.arange(9.0).reshape(3, 3),
                                                                            dtype=lib.float64))
        got.append((_np(out), _np(c)))
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_vmap_refuses_a_captured_change_it_cannot_make_once():
    """A change with values made inside the function (batched, for torch, which refuses those
    too) differs per element: refused, the tensor unchanged. (A change recorded for autograd is
    made once since: tests/test_func_inplace_leftovers_parity.py.)"""
    for c in (gt.ones(3, dtype=gt.float64), gt.ones(3, dtype=gt.float64, requires_grad=True) * 1):
        before = c.tolist()
        with pytest.raises(RuntimeError, match=re.escape("output with shape [3] doesn't match the broadcast shape "
                                                         "[2, 3]")):      # (torch's words)
            gt.func.vmap(lambda x: (c.add_(x), x * c)[1])(gt.ones(2, 3, dtype=gt.float64))
        assert c.tolist() == before


def test_nested_vmap_changes_a_captured_tensor_once():
    torch = torch_or_skip()
    got = []
    for lib in (gt, torch):
        c = lib.zeros(3, dtype=lib.float64)
        inner = lib.func.vmap(lambda y: (c.add_(1), y + c)[1])
        out = lib.func.vmap(inner)(lib.ones(2, 2, 3, dtype=lib.float64))
        got.append((_np(out), _np(c)))
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
