"""A custom ``autograd.Function`` written with ``setup_context`` inside ``gt.func.vmap``, ``jacfwd`` and
``hessian`` (torch runs those two under a vmap of its own), beside torch.func 2.13: without a ``vmap``
staticmethod or ``generate_vmap_rule = True`` torch refuses (gt computed), with both it refuses too; a
``vmap`` staticmethod's outputs are the call's (gt ran ``forward``), with torch's out_dims handling and
its errors for wrong returns. gt calls the staticmethod once per batch element on a batch of one
(``info.batch_size`` 1): values are compared, not its calls."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_X = np.random.default_rng(5).standard_normal((3, 2))


def _outcome(fn):
    """``("ok", leaves)`` or ``(exception type's name, message)``, for comparing the two libraries."""
    try:
        out = fn()
    except Exception as exc:           # noqa: BLE001 (the type and the text are the comparison)
        return type(exc).__name__, str(exc).replace("torch.Tensor", "Tensor").replace("gt.tensor.core.Tensor",
                                                                                       "Tensor")
    return "ok", out if isinstance(out, tuple) else (out,)


def _leaves(tree):
    """The leaves of nested tuples and lists, tensors as numpy arrays."""
    if isinstance(tree, (tuple, list)):
        return [(type(tree).__name__, len(tree))] + [leaf for x in tree for leaf in _leaves(x)]
    return [np.asarray(tree.detach().tolist()) if hasattr(tree, "detach") else tree]


def _same(got, want):
    assert got[0] == want[0], (got, want)
    if got[0] != "ok":
        assert got[1] == want[1]
        return
    got, want = _leaves(got[1]), _leaves(want[1])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, np.ndarray):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
        else:
            assert g == w


def _function(lib, rule=None, generate=False):
    """sin, whose backward and jvp give cos; ``rule``: its vmap staticmethod."""
    class Sin(lib.autograd.Function):
        generate_vmap_rule = generate

        @staticmethod
        def forward(x, scale=1.0):
            return x.sin() * scale

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])
            ctx.scale = inputs[1]

        @staticmethod
        def backward(ctx, g, *_):
            x, = ctx.saved_tensors
            return g * x.cos() * ctx.scale, None

        @staticmethod
        def jvp(ctx, t, *_):
            x, = ctx.saved_tensors
            return t * x.cos() * ctx.scale
    if rule is not None:
        Sin.vmap = staticmethod(rule)
    return Sin


def _twice(info, in_dims, x, scale=1.0):
    """A rule that gives twice forward's value (its ops' gradient: twice backward's)."""
    return x.sin() * (2 * scale), in_dims[0]


_KINDS = {"neither": {}, "generate_vmap_rule": {"generate": True}, "both": {"generate": True, "rule": _twice},
          "vmap staticmethod": {"rule": _twice}}
_CALLS = {
    "vmap": lambda lib, f, x: lib.func.vmap(f.apply)(x),
    "vmap in_dims=1, out_dims=1": lambda lib, f, x: lib.func.vmap(f.apply, in_dims=1, out_dims=1)(x.T),
    "vmap, a keyword": lambda lib, f, x: lib.func.vmap(lambda a: f.apply(a, scale=3.0))(x),
    "vmap randomness='same'": lambda lib, f, x: lib.func.vmap(f.apply, randomness="same")(x),
    "nested vmap": lambda lib, f, x: lib.func.vmap(lib.func.vmap(f.apply))(x),
    "vmap, an unmapped input": lambda lib, f, x: _captured(lib, f, x[0], x),
    "grad of vmap": lambda lib, f, x: lib.func.grad(lambda a: lib.func.vmap(f.apply)(a).sum())(x),
    "vmap of grad": lambda lib, f, x: lib.func.vmap(lib.func.grad(lambda a: f.apply(a).sum()))(x),
    "jacfwd": lambda lib, f, x: lib.func.jacfwd(f.apply)(x[0]),
    "hessian": lambda lib, f, x: lib.func.hessian(lambda a: f.apply(a).sum())(x[0]),
    "jacrev": lambda lib, f, x: lib.func.jacrev(f.apply)(x[0]),
}


def _captured(lib, f, c, x):
    # torch skips the vmap staticmethod where no input is batched (gt: none made from a mapped input,
    # nor inside the function)
    return lib.func.vmap(lambda a: f.apply(c) + a)(x)


@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("call", list(_CALLS))
def test_function_with_setup_context_under_vmap(call, kind):
    def run(lib):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        return _outcome(lambda: _CALLS[call](lib, _function(lib, **_KINDS[kind]), x))
    _same(run(gt), run(torch))


_RETURNS = {   # what a vmap staticmethod returns (x: its batched input)
    "not a tuple": lambda x: x.sin(),
    "a list": lambda x: [x.sin(), 0],
    "three returns": lambda x: (x.sin(), 0, 0),
    "out_dims a tuple of two for one output": lambda x: (x.sin(), (0, 0)),
    "out_dims (0,) for one output": lambda x: (x.sin(), (0,)),
    "out_dims a list for a tuple": lambda x: ((x.sin(), x.cos()), [0, 0]),
    "out_dim out of range": lambda x: (x.sin(), 5),
    "out_dim not an int": lambda x: (x.sin(), "a"),
    "two outputs, one out_dim": lambda x: ((x.sin(), x.cos()), 0),
    "nested outputs": lambda x: ((x.sin(), [x.cos(), x.exp()]), (0, [0, 0])),
    "a tensor not batched": lambda x: ((x.sin(), x.new_ones(2)), (0, None)),
    "a number": lambda x: ((x.sin(), 3), 0),
    "the input itself": lambda x: (x, 5),
}


@pytest.mark.parametrize("case", list(_RETURNS))
def test_vmap_staticmethod_returns(case):
    def run(lib):
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        f = _function(lib, rule=lambda info, in_dims, a, scale=1.0: _RETURNS[case](a))
        return _outcome(lambda: lib.func.vmap(f.apply)(x))
    _same(run(gt), run(torch))


@pytest.mark.parametrize("rule", [None, lambda info, in_dims, x, *, y: (x * y, 0)], ids=["no rule", "a rule"])
def test_keyword_only_tensor_refused_first(rule):
    # torch's first check under vmap, before the vmap rule's
    def run(lib):
        class Scaled(lib.autograd.Function):
            @staticmethod
            def forward(x, *, y):
                return x * y

            @staticmethod
            def setup_context(ctx, inputs, output):
                pass

            @staticmethod
            def backward(ctx, g):
                return g
        if rule is not None:
            Scaled.vmap = staticmethod(rule)
        x = lib.tensor(_X.tolist(), dtype=lib.float64)
        return (_outcome(lambda: lib.func.vmap(lambda a: Scaled.apply(a, y=lib.ones(2)))(x)),
                _outcome(lambda: lib.func.vmap(lambda a: Scaled.apply(a, y=2.0))(x)))
    got, want = run(gt), run(torch)
    # (the message ends with the keywords' repr: over the mesh gt's names the tensor's placement)
    assert got[0][0] == want[0][0] == "NotImplementedError"
    assert got[0][1].split(" Got: ")[0] == want[0][1].split(" Got: ")[0]
    assert got[0][1].startswith(want[0][1][:-2])
    _same(got[1], want[1])
