"""Module backward hooks (register_full_backward_hook, register_full_backward_pre_hook) beside
torch's: the same models run in both, and what the hooks see, when they run, what their results
change (the leaves' gradients) and the errors are compared."""

import copy
import warnings

import numpy as np
import pytest

import gt
from helpers import randn, torch_or_skip

DTYPES = ["float32", "float64"]


def _np(g):
    return None if g is None else np.array(g.detach().numpy())


def _same(ours, theirs, path="result"):
    """``ours`` and ``theirs`` (nested tuples/lists of arrays, None, strings, numbers) agree."""
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), f"{path}: {ours!r} vs {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{path}: {ours!r} vs an array"
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, \
            f"{path}: {ours.shape} {ours.dtype} vs {theirs.shape} {theirs.dtype}"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6, err_msg=path)
    else:
        assert ours == theirs, f"{path}: {ours!r} vs {theirs!r}"


def _beside_torch(program, *args, **kwargs):
    """Run ``program(L, ...)`` with gt and with torch; the records must agree."""
    torch = torch_or_skip()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch's warning when no input requires grad (tested below)
        theirs = program(torch, *args, **kwargs)
        ours = program(gt, *args, **kwargs)
    _same(ours, theirs)
    return ours


def _recorder(record, name):
    """A pre-hook and a hook that append what they see to ``record``."""
    def pre(module, grad_output):
        record.append(("pre", name, tuple(_np(g) for g in grad_output)))

    def hook(module, grad_input, grad_output):
        record.append(("hook", name, tuple(_np(g) for g in grad_input), tuple(_np(g) for g in grad_output)))
    return pre, hook


def _tensor(L, array, dtype, requires_grad=False):
    return L.tensor(array.astype(dtype), requires_grad=requires_grad)


_MODELS = {}


def _model(L, name, dtype):
    """The same model in gt and torch: torch's is made first (seeded), gt's loads its weights."""
    if L.__name__ == "torch":
        _MODELS[name] = model = _MAKERS[name](L).to(getattr(L, dtype))
        return model
    model = _MAKERS[name](L).to(getattr(L, dtype))
    model.load_state_dict(_MODELS[name].state_dict())
    return model


def _two_inputs(L):
    class TwoInputs(L.nn.Module):
        """forward(x, y, scale): x requires grad, y does not, scale is a number."""

        def __init__(self):
            super().__init__()
            self.fc = L.nn.Linear(3, 2)

        def forward(self, x, y, scale=2.0):
            return self.fc(x * y) * scale
    return TwoInputs()


def _tuple_out(L):
    class TupleOut(L.nn.Module):
        """Returns (fc(x), fc(x) squared, a tensor that needs no grad, a number)."""

        def __init__(self):
            super().__init__()
            self.fc = L.nn.Linear(3, 2)

        def forward(self, x):
            h = self.fc(x)
            return h, h * h, x.detach() * 2, 3
    return TupleOut()


_MAKERS = {
    "linear": lambda L: L.nn.Linear(3, 2),
    "mlp": lambda L: L.nn.Sequential(L.nn.Linear(3, 4), L.nn.Tanh(), L.nn.Linear(4, 2)),
    "two_inputs": _two_inputs,
    "tuple_out": _tuple_out,
}
X = randn(4, 3, seed=1)
UP = randn(4, 2, seed=2)


def _leaf_grads(*tensors):
    return tuple(_np(t.grad) for t in tensors)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_hooks_see_torchs_gradients(dtype):
    def program(L):
        lin, record = _model(L, "linear", dtype), []
        pre, hook = _recorder(record, "lin")
        lin.register_full_backward_pre_hook(pre)
        lin.register_full_backward_hook(hook)
        x = _tensor(L, X, dtype, requires_grad=True)
        (lin(x) * _tensor(L, UP, dtype)).sum().backward()
        return record, _leaf_grads(x, lin.weight, lin.bias)
    record, grads = _beside_torch(program)
    assert [r[:2] for r in record] == [("pre", "lin"), ("hook", "lin")]
    assert record[1][2][0].dtype == np.dtype(dtype)


@pytest.mark.parametrize("x_requires_grad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp_hooks_fire_in_torchs_order(dtype, x_requires_grad):
    def program(L):
        mlp, record = _model(L, "mlp", dtype), []
        for name, m in [("mlp", mlp), ("fc1", mlp[0]), ("tanh", mlp[1]), ("fc2", mlp[2])]:
            pre, hook = _recorder(record, name)
            m.register_full_backward_pre_hook(pre)
            m.register_full_backward_hook(hook)
        x = _tensor(L, X, dtype, requires_grad=x_requires_grad)
        (mlp(x) * _tensor(L, UP, dtype)).sum().backward()
        return record, _leaf_grads(x, mlp[0].weight, mlp[2].bias)
    record, _ = _beside_torch(program)
    assert len(record) == 8
    if not x_requires_grad:   # no input needs grad: the hook runs at once, with grad_input (None,)
        assert record[1][:3] == ("hook", "mlp", (None,))


def test_two_inputs_one_without_grad_and_a_number():
    def program(L):
        m, record = _model(L, "two_inputs", "float32"), []
        pre, hook = _recorder(record, "m")
        m.register_full_backward_pre_hook(pre)
        m.register_full_backward_hook(hook)
        x, y = _tensor(L, X, "float32", requires_grad=True), _tensor(L, randn(4, 3, seed=5), "float32")
        (m(x, y, 0.5) * _tensor(L, UP, "float32")).sum().backward()
        return record, _leaf_grads(x, y, m.fc.weight)
    record, _ = _beside_torch(program)
    grad_input = record[1][2]
    assert grad_input[2] is None and not grad_input[1].any()   # torch's zeros for y, None for the number


def test_an_integer_input_and_an_unused_one_get_zeros():
    def program(L):
        class Pick(L.nn.Module):
            def forward(self, x, index, unused):
                return x[index] * 2
        m, record = Pick(), []
        m.register_full_backward_hook(_recorder(record, "pick")[1])
        x, unused = _tensor(L, X, "float64", True), _tensor(L, randn(2, seed=3), "float64", True)
        m(x, L.tensor(np.array([0, 2])), unused).sum().backward()
        return record, _leaf_grads(x, unused)
    record, grads = _beside_torch(program)
    assert record[0][2][1].dtype == np.int64 and not grads[1].any()   # torch materializes zeros: they flow on


@pytest.mark.parametrize("use", ["first", "both"])
def test_tuple_outputs(use):
    def program(L):
        m, record = _model(L, "tuple_out", "float64"), []
        pre, hook = _recorder(record, "m")
        m.register_full_backward_pre_hook(pre)
        m.register_full_backward_hook(hook)
        x = _tensor(L, X, "float64", requires_grad=True)
        a, b, c, n = m(x)
        assert n == 3 and not c.requires_grad
        loss = (a * _tensor(L, UP, "float64")).sum() + (b.sum() if use == "both" else 0)
        loss.backward()
        return record, _leaf_grads(x, m.fc.weight)
    record, _ = _beside_torch(program)
    grad_output = record[0][2]
    assert grad_output[2] is None and grad_output[3] is None
    assert (grad_output[1] is None) == (use == "first")


@pytest.mark.parametrize("make", ["tuple", "list", "none"])
def test_hook_replaces_grad_input(make):
    def program(L):
        m = _model(L, "two_inputs", "float64")
        replace = {"tuple": lambda gi: (gi[0] * 3, gi[1]), "list": lambda gi: [gi[0] * 3, None],
                   "none": lambda gi: (None, None)}[make]
        m.register_full_backward_hook(lambda module, gi, go: replace(gi))
        x, y = _tensor(L, X, "float64", True), _tensor(L, randn(4, 3, seed=5), "float64")
        m(x, y).sum().backward()
        m(x, y).sum().backward()     # accumulates into x.grad
        return _leaf_grads(x, y, m.fc.weight)
    grads = _beside_torch(program)
    assert (grads[0] is None) == (make == "none")


def test_pre_hook_replaces_grad_output_and_hooks_see_the_new_one():
    def program(L):
        mlp, record = _model(L, "mlp", "float32"), []
        mlp[2].register_full_backward_pre_hook(lambda m, go: (go[0] * 0.5,))
        mlp[2].register_full_backward_hook(_recorder(record, "fc2")[1])
        mlp[0].register_full_backward_pre_hook(lambda m, go: (None,))   # stops the gradient at fc1's output
        x = _tensor(L, X, "float32", True)
        (mlp(x) * _tensor(L, UP, "float32")).sum().backward()
        return record, _leaf_grads(x, mlp[0].weight, mlp[2].weight)
    record, grads = _beside_torch(program)
    assert not grads[0].any() and grads[1] is None   # zeros reach x (torch's materialized gradient)
    np.testing.assert_allclose(record[0][3][0], UP * 0.5, rtol=1e-6)


def test_call_counts_removal_prepend_and_the_hooks_of_the_call():
    def program(L):
        lin, calls = _model(L, "linear", "float32"), []
        first = lin.register_full_backward_hook(lambda *a: calls.append("first"))
        lin.register_full_backward_hook(lambda *a: calls.append("prepended"), prepend=True)
        pre = lin.register_full_backward_pre_hook(lambda *a: calls.append("pre"))
        x = _tensor(L, X, "float32", True)
        y = lin(x)
        first.remove()        # after the call: still runs for it (the call keeps the hooks it found)
        y.sum().backward(retain_graph=True)
        y.sum().backward()    # once per backward
        calls.append("|")
        with pre:
            lin(x).sum().backward()
        calls.append("|")
        lin(x).sum().backward()
        first.remove()        # a second remove does nothing
        return calls
    calls = _beside_torch(program)
    assert calls[:3] == ["pre", "prepended", "first"] and calls.count("first") == 2


def test_with_forward_hooks():
    def program(L):
        lin, record = _model(L, "linear", "float64"), []
        lin.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        lin.register_forward_hook(lambda m, args, out: out * out)
        pre, hook = _recorder(record, "lin")
        lin.register_full_backward_pre_hook(pre)
        lin.register_full_backward_hook(hook)
        x = _tensor(L, X, "float64", True)
        out = lin(x)
        (out * _tensor(L, UP, "float64")).sum().backward()
        return _np(out), record, _leaf_grads(x, lin.weight)
    _beside_torch(program)


def test_no_input_requiring_grad_warns_and_may_return_only_none():
    lin = gt.nn.Linear(3, 2)
    seen = []
    handle = lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        lin(gt.tensor(X.astype("float32"))).sum().backward()
    assert seen == [((None,), (4, 2))] and lin.weight.grad is not None
    handle.remove()
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0],) if gi[0] is not None else (go[0],))
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="no input requires gradient should always "
                                                                      "return None"):
        lin(gt.tensor(X.astype("float32"))).sum().backward()


def test_no_hooks_run_without_grad_or_without_outputs_that_need_it():
    lin, calls = gt.nn.Linear(3, 2), []
    lin.register_full_backward_pre_hook(lambda *a: calls.append("pre"))
    x = gt.tensor(X.astype("float32"), requires_grad=True)
    with gt.no_grad():
        assert not lin(x).requires_grad
    lin.requires_grad_(False)
    assert not lin(gt.tensor(X.astype("float32"))).requires_grad
    assert calls == []


def test_errors_are_clear():
    lin = gt.nn.Linear(3, 2)
    with pytest.raises(TypeError, match="register_full_backward_hook: hook must be callable, got int"):
        lin.register_full_backward_hook(3)
    with pytest.raises(TypeError, match="register_full_backward_pre_hook: hook must be callable, got str"):
        lin.register_full_backward_pre_hook("hook")
    x = gt.tensor(X.astype("float32"), requires_grad=True)
    cases = [
        (lambda m, gi, go: (gi[0], gi[0]), RuntimeError, "Backward hook returned an invalid number of grad_input, "
                                                         "got 2, but expected 1"),
        (lambda m, gi, go: (gi[0][:2],), RuntimeError, r"changed the size or type of grad_input\[0\]: expected shape "
                                                       r"\(4, 3\) and gt.float32, got shape \(2, 3\)"),
        (lambda m, gi, go: (gi[0].to(gt.float64),), RuntimeError, "got shape .* and gt.float64"),
        (lambda m, gi, go: 5, TypeError, "must return None or a tuple of tensors .*got int"),
        (lambda m, gi, go: (np.ones((4, 3)),), TypeError, r"grad_input\[0\] .* must be a tensor or None, got ndarray"),
    ]
    for hook, error, match in cases:
        with lin.register_full_backward_hook(hook), pytest.raises(error, match=match):
            lin(x).sum().backward()
    with lin.register_full_backward_pre_hook(lambda m, go: (go[0], None)):
        with pytest.raises(RuntimeError, match="Backward pre hook returned an invalid number of grad_output, got 2, "
                                               "but expected 1"):
            lin(x).sum().backward()


def test_torchs_message_for_a_wrong_number_is_the_one_gt_gives():
    torch = torch_or_skip()
    lin = torch.nn.Linear(3, 2)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of grad_input, got 2, but "
                                           "expected 1"):
        lin(torch.ones(4, 3, requires_grad=True)).sum().backward()


def test_create_graph_gradient_penalty():
    def program(L):
        lin, record = _model(L, "linear", "float64"), []
        lin.register_full_backward_pre_hook(_recorder(record, "lin")[0])
        x = _tensor(L, X, "float64", True)
        (gx,) = L.autograd.grad((lin(x).tanh() * _tensor(L, UP, "float64")).sum(), x, create_graph=True)
        (gx * gx).sum().backward()
        return record[:1], _np(gx), _leaf_grads(lin.weight, lin.bias)
    _beside_torch(program)


def test_in_place_changes_of_wrapped_inputs_and_outputs_are_refused_as_torch_does():
    torch = torch_or_skip()
    for L, outputs, inputs in [(gt, "view of another tensor in the graph .*BackwardHookFunction.*clone",
                                "view of a leaf Variable that requires grad is being used in an in-place operation"),
                               (torch, "BackwardHookFunction is a view and is being modified inplace",
                                "BackwardHookFunction is a view and is being modified inplace")]:
        class Doubles(L.nn.Module):
            def forward(self, x):
                return x.mul_(2)
        lin, doubles = L.nn.Linear(3, 2), Doubles()
        for m in (lin, doubles):
            m.register_full_backward_hook(lambda *a: None)
        x = L.tensor(X.astype("float32"), requires_grad=True)
        with pytest.raises(RuntimeError, match=outputs):
            lin(x).mul_(3)
        with pytest.raises(RuntimeError, match=inputs):
            doubles(x)
        out = lin(x).clone()      # a copy may be changed
        out.mul_(3)
        out.sum().backward()


def test_a_deep_copy_keeps_its_hooks_and_the_handle_removes_the_original_s_only():
    lin, calls = gt.nn.Linear(3, 2), []
    handle = lin.register_full_backward_hook(lambda m, gi, go: calls.append(m))
    twin = copy.deepcopy(lin)
    handle.remove()
    x = gt.tensor(X.astype("float32"), requires_grad=True)
    lin(x).sum().backward()
    twin(x).sum().backward()
    assert len(calls) == 1 and calls[0] is twin


def test_fused_feed_forward_runs_the_backward_hooks():
    ff, calls = gt.nn.FeedForward(3, 5), []
    ff.fc1.register_full_backward_hook(lambda m, gi, go: calls.append(go[0].shape))   # fc1 + ReLU is one op otherwise
    ff(gt.tensor(X.astype("float32"), requires_grad=True)).sum().backward()
    assert calls == [(4, 5)]


def test_sharded_inputs_stay_sharded_and_give_the_unsharded_answers():
    def run(shard):
        mlp = gt.nn.Sequential(gt.nn.Linear(3, 4), gt.nn.Tanh(), gt.nn.Linear(4, 2))
        mlp.load_state_dict({k: v * 0 + np.arange(v.size).reshape(v.shape) / 10 for k, v in mlp.state_dict().items()})
        record = []
        for name, m in [("mlp", mlp), ("fc1", mlp[0]), ("fc2", mlp[2])]:
            pre, hook = _recorder(record, name)
            m.register_full_backward_pre_hook(pre)
            m.register_full_backward_hook(hook)
        mlp[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 2,))
        leaf = gt.tensor(X.astype("float32"), requires_grad=True)
        x = leaf.shard(0) if shard else leaf
        out = mlp(x)
        (out * gt.tensor(UP.astype("float32"))).sum().backward()
        return out.placement, record, _leaf_grads(leaf, mlp[0].weight)
    placement, record, grads = run(True)
    assert placement == gt.tensor(X).shard(0).placement     # Shard(0) on a mesh; the tensor itself on one device
    _same((record, grads), run(False)[1:])


def test_a_gradient_a_hook_keeps_is_not_changed_by_later_accumulation():
    lin, kept = gt.nn.Linear(3, 2), []
    lin.register_full_backward_hook(lambda m, gi, go: kept.append(gi[0]))
    x = gt.tensor(X.astype("float32"), requires_grad=True)
    lin(x).sum().backward()
    first = kept[0].numpy().copy()
    lin(x).sum().backward()       # adds into x.grad
    np.testing.assert_array_equal(kept[0].numpy(), first)
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_a_module_returning_its_input_twice():
    def program(L):
        class Same(L.nn.Module):
            def forward(self, x, y):
                return x, x, y * 2
        m, record = Same(), []
        pre, hook = _recorder(record, "m")
        m.register_full_backward_pre_hook(pre)
        m.register_full_backward_hook(hook)
        x, y = _tensor(L, X, "float64", True), _tensor(L, X, "float64", True)
        a, b, c = m(x, y)
        (a * 2 + b * 3 + c).sum().backward()
        return record, _leaf_grads(x, y)
    _beside_torch(program)


def test_a_module_called_twice_runs_its_hooks_once_per_call():
    def program(L):
        lin, record = L.nn.Linear(3, 3).double(), []
        with L.no_grad():
            lin.weight.copy_(L.tensor(np.arange(9.0).reshape(3, 3) / 10))
            lin.bias.zero_()
        pre, hook = _recorder(record, "lin")
        lin.register_full_backward_pre_hook(pre)
        lin.register_full_backward_hook(hook)
        x = _tensor(L, X, "float64", True)
        lin(lin(x)).tanh().sum().backward()
        return record, _leaf_grads(x, lin.weight)
    record, _ = _beside_torch(program)
    assert [r[0] for r in record] == ["pre", "hook", "pre", "hook"]


def test_autograd_grad_runs_the_hooks_on_its_paths_only():
    def program(L):
        lin, record = _model(L, "linear", "float64"), []
        pre, hook = _recorder(record, "lin")
        lin.register_full_backward_pre_hook(pre)
        lin.register_full_backward_hook(lambda m, gi, go: (hook(m, gi, go), (gi[0] * 2,))[1])
        x = _tensor(L, X, "float64", True)
        (gx,) = L.autograd.grad(lin(x).tanh().sum(), x)
        (gw,) = L.autograd.grad(lin(x).tanh().sum(), lin.weight)     # the input side is not on the way
        both = L.autograd.grad(lin(x).tanh().sum(), (x, lin.weight))
        return record, _np(gx), _np(gw), [_np(g) for g in both]
    record, *_ = _beside_torch(program)
    assert [r[0] for r in record] == ["pre", "hook", "pre", "pre", "hook"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_an_empty_batch(dtype):
    def program(L):
        lin, record = _model(L, "linear", dtype), []
        pre, hook = _recorder(record, "lin")
        lin.register_full_backward_pre_hook(pre)
        lin.register_full_backward_hook(hook)
        x = _tensor(L, np.zeros((0, 3)), dtype, True)
        lin(x).sum().backward()
        return record, _leaf_grads(x, lin.weight)
    _beside_torch(program)
