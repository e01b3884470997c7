"""gt.func (torch.func): grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap,
functional_call and stack_module_state, each beside torch.func on the same functions and values."""

import warnings

import numpy as np
import pytest

import gt
import gt.nn.utils.stateless
from gt.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, stack_module_state, vjp,
                     vmap)
from helpers import randn, torch_or_skip

TOL = dict(rtol=1e-10, atol=1e-12)


def tf():
    return torch_or_skip().func


def G(a):
    return gt.tensor(np.asarray(a), dtype=gt.float64)


def T(a):
    return torch_or_skip().tensor(np.asarray(a), dtype=torch_or_skip().float64)


def close(ours, theirs):
    """Same structure, shapes, dtypes and values (pytrees of tensors)."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            close(a, b)
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            close(ours[k], theirs[k])
    else:
        assert isinstance(ours, gt.Tensor), type(ours)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), **TOL)


# functions written once for both libraries: only tensor methods
def f_scalar(x):
    return (x.sin() * x.exp()).sum()


def f_two(x, y):
    return (x * y.cos()).sum() + (x ** 2).sum() * y.sum()


def f_vec(x):
    return (x.sin() * x[..., :1]).tanh()


X, Y = randn(3, seed=1), randn(3, seed=2)


# ---- grad, grad_and_value ------------------------------------------------------------------
@pytest.mark.parametrize("argnums", [0, 1, -1, (0, 1), (1,)])
def test_grad_argnums(argnums):
    close(grad(f_two, argnums)(G(X), G(Y)), tf().grad(f_two, argnums)(T(X), T(Y)))


def test_grad_and_value_has_aux_and_pytree_input():
    def f(d, k):
        loss = (d["a"] ** 2 * d["b"][0]).sum() * k
        return loss, {"aux": d["a"] * 2}
    ours = grad_and_value(f, has_aux=True)({"a": G(X), "b": (G(Y),)}, 3.0)
    theirs = tf().grad_and_value(f, has_aux=True)({"a": T(X), "b": (T(Y),)}, 3.0)
    close(ours, theirs)
    assert not ours[1][0].requires_grad and not ours[1][1]["aux"].requires_grad
    g, aux = grad(f, has_aux=True)({"a": G(X), "b": (G(Y),)}, 3.0)
    close((g, aux), tf().grad(f, has_aux=True)({"a": T(X), "b": (T(Y),)}, 3.0))


@pytest.mark.parametrize("shape", [(), (4,)])
def test_nested_grad_is_second_derivative(shape):
    x = randn(*shape, seed=3)

    def f(a):
        return (a.sin() * a ** 3).sum()
    ours = grad(lambda a: grad(f)(a).sum())(G(x))
    theirs = tf().grad(lambda a: tf().grad(f)(a).sum())(T(x))
    close(ours, theirs)
    if shape == ():
        close(grad(grad(grad(lambda a: a.sin() * a ** 3)))(G(x)),
              tf().grad(tf().grad(tf().grad(lambda a: a.sin() * a ** 3)))(T(x)))


def test_grad_of_unused_input_is_zeros_and_closure_keeps_graph():
    close(grad(lambda a, b: (a * 2).sum(), argnums=1)(G(X), G(Y)),
          tf().grad(lambda a, b: (a * 2).sum(), argnums=1)(T(X), T(Y)))
    # a closed-over tensor that requires grad: the gradient is differentiable with respect to it
    w, tw = G(Y).requires_grad_(), T(Y).requires_grad_()
    grad(lambda a: (a * a * w).sum())(G(X)).sum().backward()
    tf().grad(lambda a: (a * a * tw).sum())(T(X)).sum().backward()
    close(w.grad, tw.grad)


def test_grad_input_that_requires_grad_stays_connected():
    x, tx = G(X).requires_grad_(), T(X).requires_grad_()
    grad(f_scalar)(x).pow(2).sum().backward()
    tf().grad(f_scalar)(tx).pow(2).sum().backward()
    close(x.grad, tx.grad)


@pytest.mark.first_pass
@pytest.mark.parametrize("call, err, match", [
    (lambda: grad(f_vec)(G(X)), RuntimeError, "Expected f\\(\\*args\\) to return a scalar Tensor, got tensor with 1"),
    (lambda: grad(lambda a: a.sum(), argnums=2)(G(X)), RuntimeError, "Got argnum=2, but only 1 positional inputs"),
    (lambda: grad(lambda a: a.sum(), argnums=1.0)(G(X)), RuntimeError, "argnums must be int or Tuple"),
    (lambda: grad(lambda a: a.sum(), argnums=())(G(X)), RuntimeError, "argnums must be non-empty"),
    (lambda: grad(lambda a: a.sum(), has_aux=True)(G(X)), RuntimeError, "should be a tuple: \\(output, aux\\)"),
    (lambda: grad(lambda a: a.sum())(3.0), ValueError, "must be Tensor, got <class 'float'>"),
    (lambda: grad(lambda a: a.sum())(gt.tensor([1, 2])), RuntimeError, "floating point"),
    (lambda: grad(lambda a: 3)(G(X)), RuntimeError, "to return a Tensor"),
])
def test_grad_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ---- vjp, jvp --------------------------------------------------------------------------------
def test_vjp_pytree_output_called_twice_and_aux():
    def f(x, y):
        return {"p": x * y, "q": (x.sin(), y.exp().sum())}, x.sum()
    out, fn, aux = vjp(f, G(X), G(Y), has_aux=True)
    tout, tfn, taux = tf().vjp(f, T(X), T(Y), has_aux=True)
    close((out, aux), (tout, taux))
    ct = {"p": randn(3, seed=5), "q": (randn(3, seed=6), randn(seed=7))}
    gct = {"p": G(ct["p"]), "q": (G(ct["q"][0]), G(ct["q"][1]))}
    tct = {"p": T(ct["p"]), "q": (T(ct["q"][0]), T(ct["q"][1]))}
    for _ in range(2):
        close(fn(gct), tfn(tct))


def test_vjp_errors():
    out, fn = vjp(f_vec, G(X))
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        fn(G(randn(2, 3)))
    with pytest.raises(RuntimeError, match="structure"):
        fn((G(randn(3, 3)), G(X)))
    with pytest.raises(RuntimeError, match="only tensors, got unsupported type <class 'int'>"):
        vjp(lambda a: 3, G(X))


@pytest.mark.parametrize("fn", [f_vec, lambda x, y: (x * y, (x ** 3).sum() + y), lambda x, y: x.exp().sum()])
def test_jvp_beside_torch(fn):
    nargs = fn.__code__.co_argcount
    prim, tang = (X, Y)[:nargs], (randn(3, seed=8), randn(3, seed=9))[:nargs]
    ours = jvp(fn, tuple(map(G, prim)), tuple(map(G, tang)))
    theirs = tf().jvp(fn, tuple(map(T, prim)), tuple(map(T, tang)))
    close(ours, theirs)


def test_jvp_has_aux_and_independent_output():
    ours = jvp(lambda x: (x.sin(), x * 2), (G(X),), (G(Y),), has_aux=True)
    close(ours, tf().jvp(lambda x: (x.sin(), x * 2), (T(X),), (T(Y),), has_aux=True))
    close(jvp(lambda x: G(Y) * 1.0, (G(X),), (G(Y),)), tf().jvp(lambda x: T(Y) * 1.0, (T(X),), (T(Y),)))


@pytest.mark.first_pass
def test_jvp_errors():
    with pytest.raises(RuntimeError, match="Expected primals to be a tuple"):
        jvp(f_vec, G(X), G(X))
    with pytest.raises(RuntimeError, match="different size"):
        jvp(f_vec, (G(X),), (G(randn(3, 3)),))
    with pytest.raises(RuntimeError, match="same python structure"):
        jvp(f_vec, (G(X),), (G(X), G(X)))


# ---- jacrev, jacfwd, hessian -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["jacrev", "jacfwd"])
@pytest.mark.parametrize("argnums", [0, (0, 1)])
def test_jacobians(name, argnums):
    def f(x, y):
        return {"a": x.sin().unsqueeze(0) * y.reshape(3, 1, 1), "b": (x * y).sum()}
    xs = randn(2, 3, seed=10)
    ours = getattr(gt.func, name)(f, argnums)(G(xs), G(Y))
    theirs = getattr(tf(), name)(f, argnums)(T(xs), T(Y))
    close(ours, theirs)


def test_jacrev_has_aux_and_pytree_input():
    def f(d):
        return d["u"].exp() * d["v"][0], d["u"].sum()
    ours = jacrev(f, has_aux=True)({"u": G(X), "v": [G(Y)]})
    theirs = tf().jacrev(f, has_aux=True)({"u": T(X), "v": [T(Y)]})
    close(ours, theirs)
    close(jacfwd(f, has_aux=True)({"u": G(X), "v": [G(Y)]}), theirs)


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_hessian(argnums):
    close(hessian(f_two, argnums)(G(X), G(Y)), tf().hessian(f_two, argnums)(T(X), T(Y)))


def test_jacrev_of_grad_and_empty_output():
    close(jacrev(grad(f_scalar))(G(X)), tf().jacrev(tf().grad(f_scalar))(T(X)))
    close(jacrev(lambda x: x[:0] * 2)(G(X)), tf().jacrev(lambda x: x[:0] * 2)(T(X)))


@pytest.mark.first_pass
def test_jacobian_errors():
    with pytest.raises(ValueError, match="chunk_size"):
        jacrev(f_vec, chunk_size=0)
    with pytest.raises(RuntimeError, match="randomness"):
        jacfwd(f_vec, randomness="x")
    with pytest.raises(RuntimeError, match="argnum=3"):
        jacrev(f_two, 3)(G(X), G(Y))


# ---- vmap ------------------------------------------------------------------------------------
@pytest.mark.parametrize("in_dims, out_dims", [(0, 0), (1, 0), ((0, None), 1), ((-1, 0), -1), ((1, 1), 2)])
def test_vmap_dims(in_dims, out_dims):
    x, y = randn(4, 4, 4, seed=11), randn(4, 4, 4, seed=12)
    if in_dims == (0, None):
        y = randn(4, 4, seed=12)

    def f(a, b):
        return a * b.sin() + a.sum()
    close(vmap(f, in_dims, out_dims)(G(x), G(y)), tf().vmap(f, in_dims, out_dims)(T(x), T(y)))


def test_vmap_pytrees_kwargs_and_multiple_outputs():
    def f(d, scale, *, shift):
        return d["a"] @ d["b"][0] * scale + shift, (d["a"].sum(),)
    a, b = randn(5, 2, 3, seed=13), randn(3, 4, seed=14)
    in_dims = ({"a": 0, "b": [None]}, None)
    ours = vmap(f, in_dims, (1, 0))({"a": G(a), "b": [G(b)]}, 2.0, shift=G(1.5))
    theirs = tf().vmap(f, in_dims, (1, 0))({"a": T(a), "b": [T(b)]}, 2.0, shift=T(1.5))
    close(ours, theirs)


def test_nested_vmap_and_out_dims_none():
    x, y = randn(2, 3, seed=15), randn(4, 3, seed=16)

    def outer(a, b):
        return (a * b).sum()
    close(vmap(vmap(outer, (None, 0)), (0, None))(G(x), G(y)),
          tf().vmap(tf().vmap(outer, (None, 0)), (0, None))(T(x), T(y)))
    c = G(Y)
    close(vmap(lambda a: (a * 2, c), out_dims=(0, None))(G(x)),
          tf().vmap(lambda a: (a * 2, T(Y)), out_dims=(0, None))(T(x)))


def test_vmap_is_differentiable_and_sharded_input():
    x = G(randn(4, 3, seed=17)).requires_grad_()
    tx = T(randn(4, 3, seed=17)).requires_grad_()
    vmap(lambda a: a.exp() * a[0])(x).sum().backward()
    tf().vmap(lambda a: a.exp() * a[0])(tx).sum().backward()
    close(x.grad, tx.grad)
    from gt.sharding.mesh import use_mesh
    with use_mesh(2):
        xs = G(randn(4, 3, seed=17)).shard(0)
        close(vmap(lambda a: a.exp() * a[0])(xs), tf().vmap(lambda a: a.exp() * a[0])(tx))


def test_vmap_randomness():
    x = G(randn(3, 2))
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda a: a + gt.rand(2))(x)
    same = vmap(lambda a: gt.rand(2) + a * 0, randomness="same")(x).numpy()
    assert np.array_equal(same[0], same[1]) and np.array_equal(same[0], same[2])
    diff = vmap(lambda a: gt.rand(2) + a * 0, randomness="different")(x).numpy()
    assert not np.array_equal(diff[0], diff[1])


@pytest.mark.first_pass
@pytest.mark.parametrize("call, err, match", [
    (lambda: vmap(gt.add)(G(randn(2, 3)), G(randn(3, 3))), ValueError, "same size in the mapped dimension, got sizes \\[2, 3\\]"),
    (lambda: vmap(gt.add, in_dims=(0,))(G(X), G(X)), ValueError, "in_dims is not compatible with the structure"),
    (lambda: vmap(gt.add, in_dims=(0, 2))(G(randn(2, 3)), G(randn(2, 3))), ValueError, "-2 <= in_dim < 2"),
    (lambda: vmap(gt.add, in_dims=(None, None))(G(X), G(X)), ValueError, "at least one Tensor to vmap over"),
    (lambda: vmap(lambda a, b: a * b, in_dims=(0, 0))(G(X), 2), ValueError, "cannot vmap over non-Tensor"),
    (lambda: vmap(gt.add, in_dims="a")(G(X), G(X)), ValueError, "expected `in_dims` to be int or a"),
    (lambda: vmap(gt.add, in_dims=[0, 0])(G(X), G(X)), ValueError, "expected `in_dims` to be int or a"),
    (lambda: vmap(lambda a: 3)(G(X)), ValueError, "must only return Tensors, got type <class 'int'>"),
    (lambda: vmap(lambda a: a, out_dims=2)(G(randn(2, 3))), IndexError, "Dimension out of range"),
    (lambda: vmap(lambda a: (a, a), out_dims=(0, 1, 2))(G(X)), ValueError, "out_dims is not compatible"),
    (lambda: vmap(lambda a: a, out_dims=None)(G(X)), ValueError, "can not return a BatchedTensor when out_dim is None"),
    (lambda: vmap(lambda a: a, randomness="x"), RuntimeError, "Only allowed values for randomness"),
    (lambda: vmap(lambda a: a, chunk_size=0), ValueError, "chunk_size should be None or greater than 0"),
    (lambda: vmap(lambda a: a)(), ValueError, "got no inputs"),
    (lambda: vmap(lambda a: a)(G(1.0)), ValueError, "dimensionality 0"),
])
def test_vmap_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()


# ---- functional_call, stack_module_state, per-sample gradients, ensembles --------------------
def _mlps(seed=0, n=1):
    """``n`` pairs (gt MLP, torch MLP) with the same float64 weights, and a BatchNorm buffer."""
    torch = torch_or_skip()
    pairs = []
    for i in range(n):
        torch.manual_seed(seed + i)
        tm = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
        gm = gt.nn.Sequential(gt.nn.Linear(3, 5), gt.nn.Tanh(), gt.nn.Linear(5, 2)).to(gt.float64)
        gm.load_state_dict({k: G(v.numpy()) for k, v in tm.state_dict().items()})
        pairs.append((gm, tm))
    return pairs


def test_functional_call_gradients_and_restore():
    (gm, tm), = _mlps()
    x = randn(4, 3, seed=20)
    gp = {k: G(v.detach().numpy() * 2).requires_grad_() for k, v in tm.named_parameters() if k != "2.bias"}
    tp = {k: T(v.detach().numpy() * 2).requires_grad_() for k, v in tm.named_parameters() if k != "2.bias"}
    out, tout = functional_call(gm, gp, (G(x),)), tf().functional_call(tm, tp, (T(x),))
    close(out, tout)
    out.pow(2).sum().backward()
    tout.pow(2).sum().backward()
    close({k: v.grad for k, v in gp.items()}, {k: v.grad for k, v in tp.items()})
    assert gm[0].weight.grad is None and gm[2].bias.grad is not None   # given ones replace; others are its own
    assert isinstance(gm[0].weight, gt.nn.Parameter)
    close(gm(G(x)), tm(T(x)))                                            # restored
    # a tuple of dicts, kwargs-free single argument, and the older path
    half = list(gp.items())
    close(functional_call(gm, (dict(half[:2]), dict(half[2:])), G(x)), tout)
    with pytest.warns(FutureWarning):
        close(gt.nn.utils.stateless.functional_call(gm, gp, G(x)), tout)


def test_functional_call_restores_on_exception_and_buffers():
    torch = torch_or_skip()
    gbn, tbn = gt.nn.BatchNorm1d(3).to(gt.float64), torch.nn.BatchNorm1d(3).double()
    x = randn(4, 3, seed=21)
    bufs = {"running_mean": G(np.ones(3)), "running_var": G(np.full(3, 2.0))}
    tbufs = {"running_mean": T(np.ones(3)), "running_var": T(np.full(3, 2.0))}
    gbn.eval(), tbn.eval()
    close(functional_call(gbn, bufs, G(x)), tf().functional_call(tbn, tbufs, T(x)))
    with pytest.raises((RuntimeError, ValueError), match="running_mean"):
        functional_call(gbn, {"running_mean": G(np.ones(5))}, G(x))
    np.testing.assert_array_equal(gbn.running_mean.numpy(), np.zeros(3))
    assert gbn.weight is gbn._parameters["weight"]


class _Tied(gt.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = gt.nn.Linear(2, 2, bias=False)
        self.b = gt.nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(self.a(x))


@pytest.mark.first_pass
def test_functional_call_tied_strict_and_errors():
    m, x, w = _Tied(), G(np.ones((1, 2))), G(np.eye(2) * 2)
    m.to(gt.float64)
    np.testing.assert_allclose(functional_call(m, {"a.weight": w}, x).numpy(), [[4.0, 4.0]])   # tied: both
    own = m.a.weight.detach().numpy()
    np.testing.assert_allclose(functional_call(m, {"a.weight": w}, x, tie_weights=False).numpy(),
                               (np.ones((1, 2)) @ (2 * np.eye(2)).T) @ own.T)
    with pytest.raises(ValueError, match="which are tied"):
        functional_call(m, {"a.weight": w, "b.weight": G(np.eye(2))}, x)
    with pytest.raises(RuntimeError, match="Unexpected key\\(s\\): 'c'.*\n\tMissing key\\(s\\): 'a.weight', 'b.weight'"):
        functional_call(m, {"c": w}, x, strict=True)
    with pytest.raises(ValueError, match="appeared in multiple dictionaries"):
        functional_call(m, ({"a.weight": w}, {"a.weight": w}), x)
    with pytest.raises(ValueError, match="to be a dict, or a list/tuple of dicts"):
        functional_call(m, 3, x)
    np.testing.assert_array_equal(m.a.weight.detach().numpy(), own)


def test_per_sample_gradients_of_an_mlp():
    (gm, tm), = _mlps(seed=3)
    x, y = randn(6, 3, seed=22), randn(6, 2, seed=23)

    def make_loss(model, fcall):
        def loss(params, xi, yi):
            out = fcall(model, params, (xi.unsqueeze(0),))
            return ((out - yi.unsqueeze(0)) ** 2).mean()
        return loss
    gp = {k: v.detach() for k, v in gm.named_parameters()}
    tp = {k: v.detach() for k, v in tm.named_parameters()}
    ours = vmap(grad(make_loss(gm, functional_call)), in_dims=(None, 0, 0))(gp, G(x), G(y))
    theirs = tf().vmap(tf().grad(make_loss(tm, tf().functional_call)), in_dims=(None, 0, 0))(tp, T(x), T(y))
    close(ours, theirs)


def test_ensemble_with_stack_module_state():
    torch = torch_or_skip()
    pairs = _mlps(seed=7, n=3)
    params, buffers = stack_module_state([g for g, _ in pairs])
    tparams, tbuffers = tf().stack_module_state([t for _, t in pairs])
    close((params, buffers), (tparams, tbuffers))
    assert all(p.requires_grad and p.is_leaf for p in params.values())
    base, tbase = pairs[0][0], pairs[0][1]
    x = randn(4, 3, seed=24)

    def run(model, fcall):
        return lambda p, b, xx: fcall(model, (p, b), (xx,))
    ours = vmap(run(base, functional_call), in_dims=(0, 0, None))(params, buffers, G(x))
    theirs = tf().vmap(run(tbase, tf().functional_call), in_dims=(0, 0, None))(tparams, tbuffers, T(x))
    close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    close({k: v.grad for k, v in params.items()}, {k: v.grad for k, v in tparams.items()})
    del torch


@pytest.mark.first_pass
def test_stack_module_state_errors():
    a, b = gt.nn.Linear(2, 2), gt.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="at least one model"):
        stack_module_state([])
    with pytest.raises(RuntimeError, match="same class"):
        stack_module_state([a, gt.nn.Tanh()])
    b.eval()
    with pytest.raises(RuntimeError, match="same training/eval mode"):
        stack_module_state([a, b])
    b.train()
    b.weight.requires_grad_(False)
    with pytest.raises(RuntimeError, match="weight from each model to have the same .requires_grad"):
        stack_module_state([a, b])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stack_module_state(gt.nn.ModuleList([a]))


def test_transforms_under_no_grad_still_differentiate():
    # torch: a transform ignores the caller's no_grad (its results are then plain values)
    x, tx = G(X).requires_grad_(), T(X).requires_grad_()
    with gt.no_grad():
        ours = (grad(f_scalar)(x), jacrev(f_vec)(x), jvp(f_vec, (x,), (G(Y),)), vjp(f_vec, x)[1](G(Y)))
    with torch_or_skip().no_grad():
        theirs = (tf().grad(f_scalar)(tx), tf().jacrev(f_vec)(tx), tf().jvp(f_vec, (tx,), (T(Y),)),
                  tf().vjp(f_vec, tx)[1](T(Y)))
    close(ours, theirs)
    assert not ours[0].requires_grad and not ours[1].requires_grad


def test_sharded_inputs_give_the_unsharded_answer():
    from gt.sharding.mesh import use_mesh
    x = randn(4, 3, seed=30)
    want = (tf().grad(f_scalar)(T(x)), tf().vmap(tf().grad(f_scalar))(T(x)), tf().jacrev(f_vec)(T(x)),
            tf().hessian(f_scalar)(T(x)))
    with use_mesh(2):
        xs = G(x).shard(0)
        close((grad(f_scalar)(xs), vmap(grad(f_scalar))(xs), jacrev(f_vec)(xs), hessian(f_scalar)(xs)), want)


def test_linearize_beside_torch():
    def f(x, y):
        return {"s": x.sin() * y, "t": (x * x).sum()}
    out, fn = gt.func.linearize(f, G(X), G(Y))
    tout, tfn = tf().linearize(f, T(X), T(Y))
    close(out, tout)
    for seed in (1, 2):         # jvp_fn may be called again
        close(fn(G(randn(3, seed=seed)), G(Y)), tfn(T(randn(3, seed=seed)), T(Y)))
    with pytest.raises(RuntimeError, match="shape"):
        fn(G(randn(2)), G(Y))


def test_functionalize_and_replace_all_batch_norm_modules():
    torch = torch_or_skip()

    def f(a):
        b = a * 1
        b.add_(1)
        return b
    close(gt.func.functionalize(f)(G(X)), tf().functionalize(f)(T(X)))
    with pytest.raises(RuntimeError, match="invalid argument for remove"):
        gt.func.functionalize(f, remove="x")
    gm = gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.BatchNorm1d(4)).to(gt.float64)
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    gm.load_state_dict({k: G(v.numpy()) for k, v in tm.state_dict().items()})
    assert gt.func.replace_all_batch_norm_modules_(gm) is gm
    tf().replace_all_batch_norm_modules_(tm)
    assert gm[1].running_mean is None and gm[1].num_batches_tracked is None and not gm[1].track_running_stats
    x = randn(2, 5, 3, seed=31)
    close(vmap(gm)(G(x)), tf().vmap(tm)(T(x)))


@pytest.mark.parametrize("name, kwargs, shape", [
    ("Conv2d", dict(in_channels=2, out_channels=3, kernel_size=2), (2, 2, 5, 5)),
    ("LayerNorm", dict(normalized_shape=4), (3, 4)),
    ("MultiheadAttention", dict(embed_dim=4, num_heads=2, batch_first=True), (2, 3, 4)),
    ("GRU", dict(input_size=3, hidden_size=4, batch_first=True), (2, 5, 3)),
])
def test_functional_call_on_layers(name, kwargs, shape):
    torch = torch_or_skip()
    tm = getattr(torch.nn, name)(**kwargs).double()
    gm = getattr(gt.nn, name)(**kwargs, dtype=gt.float64)
    gm.load_state_dict({k: G(v.numpy()) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(0)
    new = {k: rng.standard_normal(tuple(v.shape)) for k, v in tm.named_parameters()}
    gp = {k: G(v).requires_grad_() for k, v in new.items()}
    tp = {k: T(v).requires_grad_() for k, v in new.items()}
    x = randn(*shape, seed=32)
    nargs = 3 if name == "MultiheadAttention" else 1
    out, tout = functional_call(gm, gp, (G(x),) * nargs), tf().functional_call(tm, tp, (T(x),) * nargs)
    out, tout = (out[0], tout[0]) if isinstance(out, tuple) else (out, tout)
    close(out, tout)
    out.pow(2).sum().backward()
    tout.pow(2).sum().backward()
    close({k: v.grad for k, v in gp.items()}, {k: v.grad for k, v in tp.items()})
    for k, v in gm.named_parameters():          # the module's own are back
        np.testing.assert_array_equal(v.detach().numpy(), tm.state_dict()[k].numpy())
