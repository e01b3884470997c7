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


# ---- sixth pass: integer outputs, forward mode's dtypes, batch norm inside vmap ---------------
def _dtypes(tree):
    if isinstance(tree, (tuple, list)):
        return [_dtypes(t) for t in tree]
    return str(tree.dtype).split(".")[-1]


def _both_with_dtypes(program):
    ours, theirs = program(gt), program(torch_or_skip())
    _same(ours, theirs)
    assert _dtypes(ours) == _dtypes(theirs)


def test_jvp_and_linearize_of_an_integer_output_give_zero_tangents():
    def program(lib):
        f = lambda x: ((x > 0).long(), x * 2)      # noqa: E731
        out, tangent = lib.func.jvp(f, (_t(lib, X),), (_t(lib, V[:1].repeat(4)),))
        return out, tangent, lib.func.linearize(f, _t(lib, X))[1](_t(lib, X))
    _both_with_dtypes(program)


def test_jvp_where_no_gradient_of_a_gradient_is_recorded():
    """eigh, svd (pinv) and complex tensors: gt.func.jvp goes through gt.autograd.forward_ad."""
    def program(lib):
        a, t = _t(lib, randn(4, 4, seed=6)), _t(lib, randn(4, 4, seed=7))
        f = lambda x: (lib.linalg.eigvalsh(x + x.mT), lib.linalg.svdvals(x), lib.linalg.pinv(x),   # noqa: E731
                       (x * (1 + 2j)).sin(), (x * 1j + 1).abs())
        return lib.func.jvp(f, (a,), (t,))
    _both_with_dtypes(program)


@pytest.mark.parametrize("api", ["vjp", "jacrev"])
def test_vjp_and_jacrev_refuse_an_integer_output(api):
    for lib in (gt, torch_or_skip()):
        f = lambda x: ((x > 0).long(), x * 2)      # noqa: E731
        with pytest.raises(RuntimeError, match="All outputs of f must be floating-point or complex Tensors"):
            lib.func.vjp(f, _t(lib, X)) if api == "vjp" else lib.func.jacrev(f)(_t(lib, X))


def test_jacfwd_blocks_have_the_outputs_dtype():
    def program(lib):
        x = _t(lib, X)
        return (lib.func.jacfwd(lambda x: ((x > 0).long(), x.float().sin()))(x),
                lib.func.jacfwd(lambda x: x.double() ** 2)(x.float()),
                lib.func.jacrev(lambda x: x.double() ** 2)(x.float()))
    _both_with_dtypes(program)


def test_autograd_functional_forward_mode_jacobian_and_hessian():
    def program(lib):
        af, x, v = lib.autograd.functional, _t(lib, X), _t(lib, V)
        f = lambda x, v: (x.sin() * v.sum(), x[:3] * v, (x > 0).long())     # noqa: E731
        return (af.jacobian(f, (x, v), vectorize=True, strategy="forward-mode"),
                af.jacobian(lambda x: x.float() * 3, x, vectorize=True, strategy="forward-mode"),
                af.jacobian(lambda x: (x * x, x.double() * 3), x.float(), vectorize=True, strategy="forward-mode"),
                # torch's forward-over-reverse blocks carry a graph (a constant block too): values compared
                [[b.detach() for b in row] for row in af.hessian(
                    lambda x, v: (x[:3].sin() * v).sum(), (x, v), vectorize=True,
                    outer_jacobian_strategy="forward-mode")],
                af.hessian(lambda x: (x.sin() * x).sum(), x, vectorize=True, outer_jacobian_strategy="forward-mode"))
    _both_with_dtypes(program)


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, NotImplementedError, "only implemented for `vectorize=True`"),
    ({"vectorize": True, "create_graph": True}, NotImplementedError, "`create_graph=True` and `strategy="),
    ({"vectorize": True, "strict": True}, RuntimeError, "`strict=True` and `strategy="),
])
def test_autograd_functional_forward_mode_refusals(kwargs, error, message):
    for lib in (gt, torch_or_skip()):
        with pytest.raises(error, match=message):
            lib.autograd.functional.jacobian(lambda x: x.exp(), _t(lib, X), strategy="forward-mode", **kwargs)
        if "create_graph" not in kwargs:
            with pytest.raises(error, match=message):
                lib.autograd.functional.hessian(lambda x: x.exp().sum(), _t(lib, X),
                                                outer_jacobian_strategy="forward-mode", **kwargs)


def _bn_model(lib):
    lib.manual_seed(0)
    model = lib.nn.Sequential(lib.nn.Linear(4, 4), lib.nn.BatchNorm1d(4), lib.nn.Tanh()).double()
    with lib.no_grad():
        for p, value in zip(model.parameters(), (randn(4, 4, seed=7), randn(4, seed=8), randn(4, seed=9),
                                                 randn(4, seed=10))):
            p.copy_(_t(lib, value))
    return model


def test_batch_norm_in_training_inside_vmap_is_refused_as_torchs():
    x = randn(3, 2, 4, seed=11)
    for lib in (gt, torch_or_skip()):
        stats = (_t(lib, np.zeros(4)), _t(lib, np.ones(4)))
        calls = [lambda: lib.func.vmap(_bn_model(lib))(_t(lib, x)),
                 lambda: lib.func.vmap(lambda e: lib.nn.functional.batch_norm(e, *stats, training=True))(_t(lib, x)),
                 lambda: lib.func.vmap(lib.nn.InstanceNorm1d(2, track_running_stats=True).double())(
                     _t(lib, randn(3, 2, 2, 4, seed=12)))]
        for call in calls:
            with pytest.raises(RuntimeError, match="Batch norm got a batched tensor as input while the running_mean"):
                call()


@pytest.mark.own_mesh     # one device: the rows of a sharded stack are copies, not writable views
def test_batch_norm_inside_vmap_that_torch_runs():
    from gt.sharding.mesh import use_mesh
    x = randn(3, 2, 4, seed=11)

    def program(lib):
        eval_out = lib.func.vmap(_bn_model(lib).eval())(_t(lib, x))
        replaced = lib.func.vmap(lib.func.replace_all_batch_norm_modules_(_bn_model(lib)))(_t(lib, x))
        models = [_bn_model(lib) for _ in range(3)]
        params, buffers = lib.func.stack_module_state(models)
        ensemble = lib.func.vmap(lambda p, b, e: lib.func.functional_call(models[0], (p, b), (e,)),
                                 in_dims=(0, 0, None))(params, buffers, _t(lib, x[0]))
        mean, var = _t(lib, np.zeros((3, 4))), _t(lib, np.ones((3, 4)))
        mapped = lib.func.vmap(lambda e, m, v: lib.nn.functional.batch_norm(e, m, v, training=True))(
            _t(lib, x), mean, var)
        return eval_out, replaced, ensemble, buffers["1.running_mean"], buffers["1.running_var"], mapped, mean, var
    with use_mesh(1):
        _both(program)


def test_autograd_functional_unknown_strategy_is_torchs_assertion():
    for lib in (gt, torch_or_skip()):
        with pytest.raises(AssertionError, match='Expected strategy to be either "forward-mode" or "reverse-mode"'):
            lib.autograd.functional.jacobian(lambda x: x.exp(), _t(lib, X), strategy="forward")
        with pytest.raises(AssertionError, match='Expected strategy to be either "forward-mode" or "reverse-mode"'):
            lib.autograd.functional.hessian(lambda x: x.exp().sum(), _t(lib, X), outer_jacobian_strategy="fwd")


def test_functional_call_with_the_modules_own_state_dict():
    # gt's state_dict() gives numpy arrays (gt's convention): torch's idiom still runs
    def program(lib):
        model = _bn_model(lib).eval()
        state = {k: v * 2 for k, v in model.state_dict().items() if "num_batches" not in k}
        return lib.func.functional_call(model, state, (_t(lib, randn(3, 4, seed=13)),))
    _both(program)


# ---- tenth pass: complex Jacobians, in-place changes of shape inside vmap ---------------------
def test_jacrev_jacfwd_hessian_refuse_complex_inputs_and_outputs():
    """torch's jacrev/jacfwd take real tensors only (any argument, not only those at argnums); gt's
    gave a real Jacobian of a complex output (its imaginary part dropped)."""
    for lib in (gt, torch_or_skip()):
        x, z = _t(lib, X), lib.tensor(np.array([1 + 2j, 3 - 1j]))
        for api in ("jacrev", "jacfwd"):
            jac = getattr(lib.func, api)
            with pytest.raises(RuntimeError, match=f"{api}: Expected all outputs to be real but received complex "
                                                   "tensor at flattened input idx: 1"):
                jac(lambda x: (x, lib.complex(x, x)))(x)
            with pytest.raises(RuntimeError, match=f"{api}: Expected all inputs to be real but received complex "
                                                   "tensor at flattened input idx: 2"):
                jac(lambda x, n, z: z.abs().sum() * x, argnums=0)(x, None, z)
        with pytest.raises(RuntimeError, match="jacfwd: Expected all inputs to be real"):
            lib.func.hessian(lambda z: z.abs().sum())(z)
    # a complex aux is not checked, as torch's
    _both(lambda lib: lib.func.jacrev(lambda x: (x * 2, lib.complex(x, x)), has_aux=True)(_t(lib, X))[0])


def test_vmap_refuses_an_in_place_change_of_shape():
    """An unmapped input's shape changed in place is changed once, as torch's (gt refused it,
    and before that changed it once per element); a mapped input's slices cannot pass the change
    to the input (torch's input changes shape)."""
    def unmapped(lib):
        b = _t(lib, V)
        return lib.func.vmap(lambda a, b: b.unsqueeze_(0) * a.sum(), in_dims=(0, None))(_t(lib, R[:, 0]), b), b
    _both(unmapped)
    for change in (lambda a: a.unsqueeze_(0), lambda a: a.t_(), lambda a: a.squeeze_(0)):
        with pytest.raises(RuntimeError, match="func changed the shape of a mapped input in place"):
            gt.func.vmap(change)(gt.tensor(R[:, :1, :]))
    # a change undone before func returns is no change
    _both(lambda lib: lib.func.vmap(lambda a: a.unsqueeze_(0).squeeze_(0) * 2)(_t(lib, R)))


def test_vmap_refuses_an_in_place_transpose_that_keeps_the_shape():
    """t_/transpose_ of square dims keeps the shape: an unmapped input was transposed once per
    element (element 1 saw it back as it was: silently wrong outputs; now once), a mapped one's
    slices were transposed and the input not (torch's input is)."""
    def unmapped(lib):       # changed once, as torch's (gt refused it)
        square = _t(lib, R[:2, :2, 0])
        return lib.func.vmap(lambda a, b: a @ b.t_(), in_dims=(0, None))(_t(lib, R[:, :2, :]), square), square
    _both(unmapped)
    if gt.tensor(R[:2, :2, 0])._placed is not None:
        # on a mesh gt's t_ re-lays the shards with row-major strides: a mapped input's slices show
        # no change (MISSING.md gt.func)
        return
    with pytest.raises(RuntimeError, match="func changed the shape of a mapped input in place"):
        gt.func.vmap(lambda a: a.t_() * 1)(gt.tensor(R[:, :2, :]))
    with pytest.raises(RuntimeError, match="func changed the shape of a mapped input in place"):
        gt.func.vmap(lambda a: a.transpose_(0, 1) * 1, in_dims=1)(gt.tensor(R[:2, :2, :]))
    # a transpose undone before func returns is no change
    _both(lambda lib: lib.func.vmap(lambda a, b: a @ b.t_().t_(), in_dims=(0, None))(_t(lib, R[:, :2, :]),
                                                                                      _t(lib, R[:2, :2, 0])))
