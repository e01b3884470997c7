"""Inference tensors beside torch 2.13: an op recorded outside ``inference_mode`` that saves for its
backward a tensor made inside it (or a view, ``detach()`` of one) raises torch's RuntimeError; an op
that saves nothing of it (add, sum, cat) or only the other operand computes, as torch's. gt saved them
(it computed every case). The same inside gt.func's transforms (a vmap nested in grad, an outer leaf
inside grad or jvp, a custom Function) and over the mesh (inputs of 4 rows: sharded in the mesh passes).
In-place changes of an inference tensor outside inference mode, ``requires_grad_()`` of one and
``Parameter`` of one raise torch's errors (gt allowed them); a ``detach()`` alias taken outside
inference mode may be changed in place, as torch's; ``clone()`` is an ordinary tensor (torch's
documented workaround)."""

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(11)
_DATA = {"x": _RNG.standard_normal((4, 3)), "w": _RNG.standard_normal((4, 3)), "m": _RNG.standard_normal((3, 3)),
         "w3": _RNG.standard_normal((3, 3)), "img": _RNG.standard_normal((4, 2, 5)),
         "ck": _RNG.standard_normal((4, 2, 3)), "cw": _RNG.standard_normal((4, 2, 2)), "b4": _RNG.standard_normal(4),
         "v": _RNG.standard_normal(3), "p": _RNG.uniform(0.1, 0.9, (4, 3))}


def _t(lib, key, **kw):
    return lib.tensor(_DATA[key].tolist(), dtype=lib.float64, **kw)


def _setup(lib):
    """Inference tensors (made in inference mode) and leaves that require grad, in ``lib``."""
    with lib.inference_mode():
        inf = {"xi": _t(lib, "x"), "w3i": _t(lib, "w3"), "cki": _t(lib, "ck"), "imgi": _t(lib, "img"), "b4i": _t(lib, "b4"),
               "vi": _t(lib, "v"), "pi": _t(lib, "p"), "ii": lib.tensor([1, 0, 3, 2]),
               "mi": lib.tensor([True, False, True, False]), "ci": lib.tensor([2, 0, 1, 1])}
    leaves = {"w": _t(lib, "w", requires_grad=True), "m": _t(lib, "m", requires_grad=True),
              "img": _t(lib, "img", requires_grad=True), "cw": _t(lib, "cw", requires_grad=True)}
    return inf, leaves


class _Saves:
    """Custom Functions saving their first input (``ctx.save_for_backward``) or nothing, in torch's
    style that the transforms take (``setup_context``)."""

    @staticmethod
    def make(lib):
        class SaveFirst(lib.autograd.Function):
            @staticmethod
            def forward(a, b):
                return a * b

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(inputs[0])
                ctx.b = inputs[1]

            @staticmethod
            def backward(ctx, g):
                a, = ctx.saved_tensors
                return g * ctx.b, g * a

        class SaveNone(lib.autograd.Function):
            @staticmethod
            def forward(a, b):
                return a * b

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.a, ctx.b = inputs      # (kept as attributes: not saved for backward)

            @staticmethod
            def backward(ctx, g):
                return g * ctx.b, g * ctx.a
        return SaveFirst, SaveNone


_OPS = {   # name: f(lib, inference tensors, leaves that require grad)
    "add": lambda lib, i, l: i["xi"] + l["w"],
    "sub": lambda lib, i, l: l["w"] - i["xi"],
    "mul": lambda lib, i, l: i["xi"] * l["w"],
    "mul, leaf first": lambda lib, i, l: l["w"] * i["xi"],
    "mul by a row (view)": lambda lib, i, l: l["w"] * i["xi"][0],
    "mul by a transposed view": lambda lib, i, l: l["w"] * i["xi"].T.T,
    "mul by detach()": lambda lib, i, l: l["w"] * i["xi"].detach(),
    "mul by clone()": lambda lib, i, l: l["w"] * i["xi"].clone(),
    "mul by exp() (a new tensor)": lambda lib, i, l: l["w"] * i["xi"].exp(),
    "mul by a number": lambda lib, i, l: l["w"] * 2 + i["xi"],
    "div, numerator": lambda lib, i, l: i["xi"] / l["w"],
    "div, denominator": lambda lib, i, l: l["w"] / i["pi"],
    "pow, base": lambda lib, i, l: i["pi"] ** l["w"],
    "pow, exponent": lambda lib, i, l: l["w"].abs() ** i["xi"],
    "exp of a sum": lambda lib, i, l: (l["w"] + i["xi"]).exp(),
    "sum": lambda lib, i, l: (l["w"] + i["xi"]).sum(),
    "matmul, left": lambda lib, i, l: i["xi"] @ l["m"],
    "matmul, right": lambda lib, i, l: l["w"] @ i["w3i"],
    "matmul, transposed view": lambda lib, i, l: l["m"] @ i["xi"].T,
    "linear, weight": lambda lib, i, l: lib.nn.functional.linear(l["w"], i["w3i"]),
    "linear, input": lambda lib, i, l: lib.nn.functional.linear(i["xi"], l["m"]),
    "linear, bias": lambda lib, i, l: lib.nn.functional.linear(l["w"], l["m"], i["vi"]),
    "softmax, added after": lambda lib, i, l: lib.nn.functional.softmax(l["w"], -1) + i["xi"],
    "softmax of a sum": lambda lib, i, l: lib.nn.functional.softmax(l["w"] + i["xi"], -1),
    "log_softmax of a product": lambda lib, i, l: lib.nn.functional.log_softmax(l["w"] * i["xi"], -1),
    "layer_norm, input": lambda lib, i, l: lib.nn.functional.layer_norm(i["xi"], (3,), l["m"][0]),
    "layer_norm, weight": lambda lib, i, l: lib.nn.functional.layer_norm(l["w"], (3,), i["vi"]),
    "layer_norm, bias": lambda lib, i, l: lib.nn.functional.layer_norm(l["w"], (3,), None, i["vi"]),
    "conv1d, weight": lambda lib, i, l: lib.nn.functional.conv1d(l["img"], i["cki"]),
    "conv1d, input": lambda lib, i, l: lib.nn.functional.conv1d(i["imgi"], l["cw"]),
    "conv1d, bias": lambda lib, i, l: lib.nn.functional.conv1d(l["img"], i["cki"].clone(), i["b4i"]),
    "index by a tensor": lambda lib, i, l: l["w"][i["ii"]],
    "index by a mask": lambda lib, i, l: l["w"][i["mi"]],
    "index by a number": lambda lib, i, l: l["w"][1] + i["xi"][1],
    "index the inference tensor": lambda lib, i, l: i["xi"][i["ii"]] + l["w"],
    "gather": lambda lib, i, l: l["w"].gather(1, i["ci"][:, None]),
    "index_select": lambda lib, i, l: l["w"].index_select(0, i["ii"]),
    "embedding": lambda lib, i, l: lib.nn.functional.embedding(i["ii"], l["w"]),
    "where, condition": lambda lib, i, l: lib.where(i["mi"][:, None], l["w"], 0.0),
    "masked_fill": lambda lib, i, l: l["w"].masked_fill(i["mi"][:, None], 0.0),
    "cat": lambda lib, i, l: lib.cat([l["w"], i["xi"]]),
    "stack": lambda lib, i, l: lib.stack([l["w"], i["xi"]]),
    "maximum": lambda lib, i, l: lib.maximum(i["xi"], l["w"]),
    "cross_entropy, target": lambda lib, i, l: lib.nn.functional.cross_entropy(l["w"], i["ci"]),
    "nll_loss, target": lambda lib, i, l: lib.nn.functional.nll_loss(l["w"], i["ci"]),
    "mse_loss, target": lambda lib, i, l: lib.nn.functional.mse_loss(l["w"], i["xi"]),
    "smooth_l1_loss, target": lambda lib, i, l: lib.nn.functional.smooth_l1_loss(l["w"], i["xi"]),
    "huber_loss, target": lambda lib, i, l: lib.nn.functional.huber_loss(l["w"], i["xi"]),
    "l1_loss (saves the difference)": lambda lib, i, l: lib.nn.functional.l1_loss(l["w"], i["xi"]),
    "Function saving the inference tensor": lambda lib, i, l: _Saves.make(lib)[0].apply(i["xi"], l["w"]),
    "Function saving the leaf": lambda lib, i, l: _Saves.make(lib)[0].apply(l["w"], i["xi"]),
    "Function saving nothing": lambda lib, i, l: _Saves.make(lib)[1].apply(i["xi"], l["w"]),
    "inside inference_mode": lambda lib, i, l: _in_inference(lib, lambda: i["xi"] * l["w"]),
    "under no_grad": lambda lib, i, l: _no_grad(lib, lambda: i["xi"] * l["w"]),
}


def _in_inference(lib, f):
    with lib.inference_mode():
        return f()


def _no_grad(lib, f):
    with lib.no_grad():
        return f()


def _outcome(lib, f):
    """``("raised", class, message)`` or ``("computed", value, gradients of the leaves)``."""
    inf, leaves = _setup(lib)
    try:
        out = f(lib, inf, leaves)
    except RuntimeError as e:
        return "raised", type(e), str(e)
    if out.requires_grad:
        out.sum().backward()
    grads = {k: v.grad for k, v in leaves.items()}
    return "computed", out, grads


def _np(t):
    return t.detach().numpy() if t is not None else None


def _same(got, want):
    assert got[0] == want[0], (got, want)
    if got[0] == "raised":
        assert got[1:] == want[1:]
        return
    np.testing.assert_allclose(_np(got[1]), _np(want[1]), rtol=1e-10, atol=1e-12)
    for k, g in got[2].items():
        w = want[2][k]
        assert (g is None) == (w is None), k
        if w is not None:
            np.testing.assert_allclose(_np(g), _np(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(_OPS))
def test_op_saving_an_inference_tensor(name):
    # torch raises where the op saves the inference tensor (or a view of it) for its backward;
    # gt computed every case
    _same(_outcome(gt, _OPS[name]), _outcome(torch, _OPS[name]))


def test_mesh_passes_shard_the_inputs():
    # the cases above run over the mesh in the passes that set GT_DEVICES (rows of 4: cut over 2 to 4 devices)
    inf, _ = _setup(gt)
    devices = gt.sharding.mesh.get_mesh().size
    assert (inf["xi"]._placed is not None) == (1 < devices <= inf["xi"].shape[0])
    assert inf["xi"].is_inference() and inf["xi"][0].is_inference()


def _made_in_inference(lib, x):
    with lib.inference_mode():
        return (x * 2).exp()


_TRANSFORMS = {   # name: f(lib, x (3,), batch (4, 3), c: inference (3,), w: a leaf (3,))
    "grad(vmap), made inside": lambda lib, x, b, c, w: lib.func.grad(
        lambda b: lib.func.vmap(lambda y: y * _made_in_inference(lib, y))(b).sum())(b),
    "grad(vmap), made of a captured tensor": lambda lib, x, b, c, w: lib.func.grad(
        lambda b: lib.func.vmap(lambda y: y * _made_in_inference(lib, x))(b).sum())(b),
    "grad(vmap), captured": lambda lib, x, b, c, w: lib.func.grad(lambda b: lib.func.vmap(lambda y: y * c)(b).sum())(b),
    "vmap(grad), made inside": lambda lib, x, b, c, w: lib.func.vmap(
        lib.func.grad(lambda y: (y * _made_in_inference(lib, y)).sum()))(b),
    "vmap, outer leaf times captured": lambda lib, x, b, c, w: lib.func.vmap(lambda y: y + w * c)(b),
    "vmap, captured times a slice, then a leaf": lambda lib, x, b, c, w: lib.func.vmap(lambda y: y * c * w)(b),
    "vmap, outer leaf times made inside": lambda lib, x, b, c, w: lib.func.vmap(lambda y: w * _made_in_inference(lib, y))(b),
    "grad, outer leaf times captured": lambda lib, x, b, c, w: lib.func.grad(lambda y: (y + w * c).sum())(x),
    "grad, outer leaf times made inside": lambda lib, x, b, c, w: lib.func.grad(
        lambda y: (y + w * _made_in_inference(lib, x)).sum())(x),
    "grad, captured": lambda lib, x, b, c, w: lib.func.grad(lambda y: (y * c).sum())(x),
    "grad, made inside, added": lambda lib, x, b, c, w: lib.func.grad(lambda y: (y + _made_in_inference(lib, y)).sum())(x),
    "grad, made inside, cloned": lambda lib, x, b, c, w: lib.func.grad(
        lambda y: (y * _made_in_inference(lib, y).clone()).sum())(x),
    "grad(grad), captured": lambda lib, x, b, c, w: lib.func.grad(
        lambda z: lib.func.grad(lambda y: (y * y * c).sum())(z).sum())(x),
    "jacrev, captured": lambda lib, x, b, c, w: lib.func.jacrev(lambda y: y.sin() * c)(x),
    "jvp, outer leaf times captured": lambda lib, x, b, c, w: lib.func.jvp(lambda y: y + w * c, (x,), (x,)),
    "jvp, made inside": lambda lib, x, b, c, w: lib.func.jvp(lambda y: y * _made_in_inference(lib, y), (x,), (x,)),
    "grad(jvp), made inside": lambda lib, x, b, c, w: lib.func.grad(
        lambda z: lib.func.jvp(lambda y: y * _made_in_inference(lib, y), (z,), (z,))[1].sum())(x),
    "grad of an inference tensor": lambda lib, x, b, c, w: lib.func.grad(lambda y: (y * y).sum())(c),
    "vjp, Function saving a captured one": lambda lib, x, b, c, w: lib.func.vjp(
        lambda y: _Saves.make(lib)[0].apply(c, y), x)[1](x),
    "Function saving one made inside grad": lambda lib, x, b, c, w: lib.func.grad(
        lambda y: _Saves.make(lib)[0].apply(_made_in_inference(lib, y), y).sum())(x),
}


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


@pytest.mark.parametrize("name", list(_TRANSFORMS))
def test_inference_tensor_in_transforms(name):
    def run(lib):
        x, b, w = _t(lib, "v"), _t(lib, "x"), _t(lib, "v", requires_grad=True)
        with lib.inference_mode():
            c = _t(lib, "p")[0]
        try:
            return _flat(_TRANSFORMS[name](lib, x, b, c, w))
        except RuntimeError as e:
            return type(e), str(e)
    got, want = run(gt), run(torch)
    assert isinstance(got, tuple) == isinstance(want, tuple), (got, want)
    if isinstance(want, tuple):
        assert got == want
        return
    for g, t in zip(got, want):
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-10, atol=1e-12)


_INPLACE = {
    "add_": lambda lib, x: x.add_(1), "mul_": lambda lib, x: x.mul_(2), "+=": lambda lib, x: x.__iadd__(1),
    "setitem": lambda lib, x: x.__setitem__(0, 5.0), "zero_": lambda lib, x: x.zero_(),
    "fill_": lambda lib, x: x.fill_(3), "copy_": lambda lib, x: x.copy_(lib.zeros(4, 3, dtype=lib.float64)),
    "sin_": lambda lib, x: x.sin_(), "clamp_": lambda lib, x: x.clamp_(0, 1), "t_": lambda lib, x: x.t_(),
    "unsqueeze_": lambda lib, x: x.unsqueeze_(0), "normal_": lambda lib, x: x.normal_(),
    "index_put_": lambda lib, x: x.index_put_((lib.tensor([0]),), lib.tensor(1.0, dtype=lib.float64)),
    "masked_fill_": lambda lib, x: x.masked_fill_(x > 0, 1.0),
    "scatter_": lambda lib, x: x.scatter_(0, lib.zeros(1, 3, dtype=lib.int64), 1.0),
    "index_fill_": lambda lib, x: x.index_fill_(0, lib.tensor([0]), 2.0),
    "a slice's add_": lambda lib, x: x[1:].add_(1), "a column's mul_": lambda lib, x: x[:, 0].mul_(2),
    "a detach()'s row written": lambda lib, x: x.detach().__setitem__(0, 1.0),
    "requires_grad_()": lambda lib, x: x.requires_grad_(),
    "requires_grad = True": lambda lib, x: setattr(x, "requires_grad", True),
    "Parameter": lambda lib, x: lib.nn.Parameter(x),
    "detach()'s requires_grad_()": lambda lib, x: x.detach().requires_grad_(),
}


@pytest.mark.parametrize("name", list(_INPLACE))
def test_inplace_change_outside_inference_mode(name):
    # the same error as torch's; torch writes the values before it raises, gt raises before writing
    def run(lib):
        with lib.inference_mode():
            x = _t(lib, "x")
        try:
            _INPLACE[name](lib, x)
        except RuntimeError as e:
            return type(e), str(e)
        return None
    want = run(torch)
    assert want is not None
    assert run(gt) == want


_ALLOWED = {
    "detach().add_": lambda x: x.detach().add_(1), "detach().mul_": lambda x: x.detach().mul_(3),
    ".data.mul_": lambda x: x.data.mul_(5), "requires_grad_(False)": lambda x: x.requires_grad_(False),
    "add_ inside inference_mode": None, "x * 2 (a new tensor)": lambda x: x * 2,
}


@pytest.mark.parametrize("name", list(_ALLOWED))
def test_changes_torch_allows(name):
    def run(lib):
        with lib.inference_mode():
            x = _t(lib, "x")
        if _ALLOWED[name] is None:
            with lib.inference_mode():
                x.add_(1)
        else:
            _ALLOWED[name](x)
        return x
    np.testing.assert_array_equal(_np(run(gt)), _np(run(torch)))


_DERIVED = {
    "detach()": lambda lib, x: x.detach(), "clone()": lambda lib, x: x.clone(), ".data": lambda lib, x: x.data,
    "a row": lambda lib, x: x[1], "a slice": lambda lib, x: x[1:], ".T": lambda lib, x: x.T,
    "view": lambda lib, x: x.view(3, 4), "reshape": lambda lib, x: x.reshape(12), "sin()": lambda lib, x: x.sin(),
    "an index tensor's rows": lambda lib, x: x[lib.tensor([0, 2])], "clone() inside": lambda lib, x: _in_inference(
        lib, lambda: x.clone()), "contiguous()": lambda lib, x: x.contiguous(), "x + 0": lambda lib, x: x + 0,
}


@pytest.mark.parametrize("name", list(_DERIVED))
def test_what_is_an_inference_tensor(name):
    # views and aliases of an inference tensor are inference tensors, as torch's; results of other
    # ops outside inference mode are not (clone() is torch's documented way to an ordinary tensor)
    def run(lib):
        with lib.inference_mode():
            x = _t(lib, "x")
        return _DERIVED[name](lib, x).is_inference()
    assert run(gt) == run(torch)


def test_clone_is_the_workaround():
    def run(lib):
        with lib.inference_mode():
            x = _t(lib, "x")
        w = _t(lib, "w", requires_grad=True)
        y = (x.clone() * w).exp().sum()
        y.backward()
        return y, w.grad
    for g, t in zip(run(gt), run(torch)):
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-12)


def test_training_after_an_evaluation():
    # the usual loop: evaluate under inference_mode, then train on the same model: no refusal, the
    # same gradients as torch's
    def run(lib):
        lib.manual_seed(0)
        model = lib.nn.Linear(3, 2).double()
        for p, v in zip(model.parameters(), (_DATA["w3"][:2], _DATA["v"][:2])):
            with lib.no_grad():
                p.copy_(lib.tensor(v.tolist(), dtype=lib.float64))
        with lib.inference_mode():
            seen = model(_t(lib, "x"))
        loss = (model(_t(lib, "w")) ** 2).sum() + seen.sum().item()
        loss.backward()
        return [loss, model.weight.grad, model.bias.grad]
    for g, t in zip(run(gt), run(torch)):
        np.testing.assert_allclose(_np(g), _np(t), rtol=1e-12)


_OF_AN_INFERENCE_LEAF = {   # p: made in inference mode with requires_grad=True; w: an ordinary leaf
    "sin": lambda p, w: p.sin(), "sum": lambda p, w: p.sum(), "a row": lambda p, w: p[0], "exp": lambda p, w: p.exp(),
    "times a leaf": lambda p, w: p * w, "plus a leaf": lambda p, w: p + w,
}


@pytest.mark.parametrize("name", list(_OF_AN_INFERENCE_LEAF))
def test_ops_of_an_inference_tensor_that_requires_grad(name):
    # torch's inference tensors have no autograd history: an op whose only inputs that require grad
    # are inference tensors records nothing (gt recorded it; with the refusal above it raised); beside an
    # ordinary leaf it is recorded, and refused where it saves the inference tensor
    def run(lib):
        with lib.inference_mode():
            p = _t(lib, "x", requires_grad=True)
        try:
            out = _OF_AN_INFERENCE_LEAF[name](p, _t(lib, "w", requires_grad=True))
        except RuntimeError as e:
            return type(e), str(e)
        return out.requires_grad, out.grad_fn is None, _np(out)
    got, want = run(gt), run(torch)
    assert got[:2] == want[:2]
    if not isinstance(want[0], type):
        np.testing.assert_allclose(got[2], want[2], rtol=1e-12)
