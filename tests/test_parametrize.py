"""``gt.nn.utils.parametrize`` and ``gt.nn.utils.parametrizations`` (weight_norm, spectral_norm,
orthogonal) beside torch's: the same module with the same weights gives the same state dict keys
and values, outputs, gradients of every original, three SGD steps, spectral norm's ``_u``/``_v``
in train and eval mode; registration, chaining, assignment, removal, caching and the errors."""

import copy
import pickle
import re

import numpy as np
import pytest

import gt
from gt import nn
from helpers import randn, torch_or_skip

P = nn.utils.parametrize
PS = nn.utils.parametrizations
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=2e-4, atol=2e-5), "float64": dict(rtol=1e-9, atol=1e-11)}


def _modules(kind, dtype):
    """(torch module, gt module) of ``kind`` in ``dtype``, gt's holding torch's weights."""
    torch = torch_or_skip()
    torch.manual_seed(0), gt.manual_seed(0)   # the random draws of the parametrizations: reruns see the same
    if kind == "linear":
        pair = torch.nn.Linear(4, 3), nn.Linear(4, 3)
    elif kind == "square":
        pair = torch.nn.Linear(3, 3), nn.Linear(3, 3)
    else:
        pair = torch.nn.Conv2d(2, 3, 3), nn.Conv2d(2, 3, 3)
    ref, mine = pair
    ref, mine = (ref.double(), mine.double()) if dtype == "float64" else (ref, mine)
    mine.load_state_dict(ref.state_dict())
    return ref, mine


def _input(kind, dtype, seed=1):
    shape = {"linear": (2, 4), "square": (2, 3), "conv": (2, 2, 5, 5)}[kind]
    return randn(*shape, seed=seed).astype(dtype)


def _parametrize(module, how, library):
    fn = getattr(library.nn.utils.parametrizations, how.split(":")[0])
    return fn(module, orthogonal_map=how.split(":")[1]) if ":" in how else fn(module)


def _same_state(mine, ref, dtype):
    want = ref.state_dict()
    got = mine.state_dict()
    assert list(got) == list(want)
    for key, value in got.items():
        assert value.dtype == np.dtype(dtype), key
        np.testing.assert_allclose(value, want[key].detach().numpy(), err_msg=key, **TOL[dtype])


def _same_grads(mine, ref, dtype):
    want = dict(ref.named_parameters())
    got = dict(mine.named_parameters())
    assert list(got) == list(want)
    rtol, atol = TOL[dtype]["rtol"], TOL[dtype]["atol"]
    for key, p in got.items():
        expected = want[key].grad.numpy()   # atol grows with the largest gradient: rounding accumulates
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=rtol, atol=atol * max(1.0, np.abs(expected).max()),
                                   err_msg=key)


CASES = [("weight_norm", "linear"), ("weight_norm", "conv"), ("spectral_norm", "linear"), ("spectral_norm", "conv"),
         ("orthogonal", "linear"), ("orthogonal", "square"), ("orthogonal:householder", "square"),
         ("orthogonal", "conv"), ("orthogonal:cayley", "linear")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how,kind", CASES, ids=[f"{h}-{k}" for h, k in CASES])
def test_parametrized_module_matches_torch(how, kind, dtype):
    torch = torch_or_skip()
    ref, mine = _modules(kind, dtype)
    _parametrize(ref, how, torch)
    _parametrize(mine, how, gt)
    mine.load_state_dict(ref.state_dict())      # torch's u, v and orthogonal base: gt's draws differ
    _same_state(mine, ref, dtype)
    assert type(mine).__name__ == type(ref).__name__
    assert re.sub(r"  # [\d,]+ parameters", "", repr(mine)) == repr(ref)
    x = _input(kind, dtype)
    out, want = mine(gt.tensor(x)), ref(torch.tensor(x))
    assert out.dtype == getattr(gt, dtype)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(mine.weight.numpy(), ref.weight.detach().numpy(), **TOL[dtype])
    (out * gt.tensor(x[:, :1].sum() + 1.0)).sum().backward()
    (want * float(x[:, :1].sum() + 1.0)).sum().backward()
    _same_grads(mine, ref, dtype)
    _same_state(mine, ref, dtype)                 # spectral norm: the power iteration moved u and v alike


@pytest.mark.parametrize("how,kind", CASES[::2] + [("orthogonal:matrix_exp", "linear"), ("spectral_norm", "conv")])
def test_three_sgd_steps_match_torch(how, kind):
    torch = torch_or_skip()
    ref, mine = _modules(kind, "float64")
    _parametrize(ref, how, torch)
    _parametrize(mine, how, gt)
    mine.load_state_dict(ref.state_dict())
    opt = gt.optim.SGD(mine.parameters(), lr=0.1)
    for step in range(3):
        x = _input(kind, "float64", seed=step)
        opt.zero_grad()
        (mine(gt.tensor(x)) ** 2).sum().backward()
        opt.step()
        ref.zero_grad()
        (ref(torch.tensor(x)) ** 2).sum().backward()
        with torch.no_grad():       # torch's SGD without momentum (torch.optim's first step costs seconds)
            for p in ref.parameters():
                p -= 0.1 * p.grad
    _same_state(mine, ref, "float64")
    np.testing.assert_allclose(mine.weight.numpy(), ref.weight.detach().numpy(), **TOL["float64"])


def test_spectral_norm_buffers_follow_torch_in_train_and_eval_mode():
    torch = torch_or_skip()
    ref, mine = _modules("linear", "float64")
    torch.nn.utils.parametrizations.spectral_norm(ref, n_power_iterations=2)
    PS.spectral_norm(mine, n_power_iterations=2)
    mine.load_state_dict(ref.state_dict())
    sn, ref_sn = mine.parametrizations.weight[0], ref.parametrizations.weight[0]
    assert (sn._u.shape, sn._v.shape) == ((3,), (4,))
    x = _input("linear", "float64")
    mine(gt.tensor(x)), ref(torch.tensor(x))
    np.testing.assert_allclose(sn._u.numpy(), ref_sn._u.numpy(), rtol=1e-10)
    np.testing.assert_allclose(sn._v.numpy(), ref_sn._v.numpy(), rtol=1e-10)
    mine.eval(), ref.eval()
    with torch.no_grad():
        ref.parametrizations.weight.original.mul_(3.0)
    mine.load_state_dict(ref.state_dict())
    u, v = sn._u.numpy().copy(), sn._v.numpy().copy()
    out, want = mine(gt.tensor(x)), ref(torch.tensor(x))
    np.testing.assert_array_equal(sn._u.numpy(), u)   # eval: no power iteration, in gt as in torch
    np.testing.assert_array_equal(sn._v.numpy(), v)
    np.testing.assert_array_equal(ref_sn._u.numpy(), u)
    assert not sn.training and not mine.parametrizations.training
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-10)


def test_spectral_norm_of_a_vector_and_of_conv_transpose_match_torch():
    torch = torch_or_skip()
    ref, mine = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    mine.load_state_dict(ref.state_dict())
    torch.nn.utils.parametrizations.spectral_norm(ref, "bias")
    PS.spectral_norm(mine, "bias")
    np.testing.assert_allclose(mine.bias.numpy(), ref.bias.detach().numpy(), rtol=1e-12)
    assert list(mine.state_dict()) == list(ref.state_dict())
    t = PS.spectral_norm(nn.ConvTranspose2d(2, 3, 2))
    assert t.parametrizations.weight[0].dim == 1 and t.parametrizations.weight[0]._u.shape == (3,)


@pytest.mark.parametrize("dim", [None, 1, -2])
def test_weight_norm_dims_and_the_old_state_dict_keys(dim):
    torch = torch_or_skip()
    ref, mine = _modules("linear", "float64")
    torch.nn.utils.parametrizations.weight_norm(ref, dim=dim)
    PS.weight_norm(mine, dim=dim)
    _same_state(mine, ref, "float64")
    old = {"bias": ref.bias.detach().numpy(), "weight_g": ref.parametrizations.weight.original0.detach().numpy() * 2,
           "weight_v": ref.parametrizations.weight.original1.detach().numpy()}
    mine.load_state_dict(old)
    np.testing.assert_allclose(mine.weight.numpy(), 2 * ref.weight.detach().numpy(), rtol=1e-12)


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).mT

    def right_inverse(self, A):
        return A.triu()


class Scale(nn.Module):
    def forward(self, X):
        return 2 * X

    def right_inverse(self, A):
        return A / 2


class Split(nn.Module):      # right_inverse returns two tensors: original0, original1
    def forward(self, A, B):
        return A + B

    def right_inverse(self, X):
        return X / 4, 3 * X / 4


def _torch_twins():
    torch = torch_or_skip()

    class TSymmetric(torch.nn.Module):
        def forward(self, X):
            return X.triu() + X.triu(1).mT

        def right_inverse(self, A):
            return A.triu()

    class TScale(torch.nn.Module):
        def forward(self, X):
            return 2 * X

        def right_inverse(self, A):
            return A / 2
    return TSymmetric, TScale


def test_chained_parametrizations_assignment_and_removal_match_torch():
    torch = torch_or_skip()
    TSymmetric, TScale = _torch_twins()
    for leave in (True, False):
        ref, mine = _modules("square", "float64")
        tP = torch.nn.utils.parametrize
        tP.register_parametrization(ref, "weight", TSymmetric())
        tP.register_parametrization(ref, "weight", TScale())
        P.register_parametrization(mine, "weight", Symmetric())
        P.register_parametrization(mine, "weight", Scale())
        _same_state(mine, ref, "float64")
        assert len(mine.parametrizations.weight) == 2 and P.is_parametrized(mine, "weight")
        value = randn(3, 3, seed=5)
        original = mine.parametrizations.weight.original
        mine.weight = gt.tensor(value)
        ref.weight = torch.tensor(value)
        assert mine.parametrizations.weight.original is original     # set in place: optimizers keep it
        _same_state(mine, ref, "float64")
        np.testing.assert_allclose(mine.weight.numpy(), ref.weight.detach().numpy(), rtol=1e-12)
        tP.remove_parametrizations(ref, "weight", leave_parametrized=leave)
        P.remove_parametrizations(mine, "weight", leave_parametrized=leave)
        assert type(mine) is nn.Linear and not P.is_parametrized(mine) and "parametrizations" not in dir(mine)
        assert mine.weight is original and isinstance(mine.weight, nn.Parameter)
        _same_state(mine, ref, "float64")


def test_a_sequence_of_originals_is_saved_removed_and_its_gradients_flow():
    m = nn.Linear(3, 2).double()
    w = m.weight.numpy().copy()
    P.register_parametrization(m, "weight", Split())
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    np.testing.assert_allclose(m.weight.numpy(), w)
    m(gt.tensor(randn(2, 3))).sum().backward()
    g0, g1 = m.parametrizations.weight.original0.grad, m.parametrizations.weight.original1.grad
    np.testing.assert_allclose(g0.numpy(), g1.numpy())
    with pytest.raises(ValueError, match="Cannot leave unparametrized"):
        P.remove_parametrizations(m, "weight", leave_parametrized=False)
    P.remove_parametrizations(m, "weight")
    np.testing.assert_allclose(m.weight.numpy(), w)
    assert isinstance(m.weight, nn.Parameter) and list(m.state_dict()) == ["bias", "weight"]


def test_cached_computes_each_parametrized_tensor_once_per_block():
    m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    assert m.weight is not m.weight
    with P.cached():
        with P.cached():
            first = m.weight
        assert m.weight is first
    assert m.weight is not first


def test_parametrizing_a_buffer_type_before_transfer_and_copies():
    bn = nn.BatchNorm1d(3)
    P.register_parametrization(bn, "running_var", Scale())
    assert "parametrizations.running_var.original" in bn.state_dict()
    assert not isinstance(bn.parametrizations.running_var.original, nn.Parameter)
    np.testing.assert_allclose(bn.running_var.numpy(), np.ones(3))
    m = P.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    assert P.type_before_parametrizations(m) is nn.Linear and P.type_before_parametrizations(bn.weight) is nn.Parameter
    other = P.transfer_parametrizations_and_params(m, nn.Linear(3, 3))
    assert other.parametrizations.weight.original is m.parametrizations.weight.original
    np.testing.assert_array_equal(other.weight.numpy(), m.weight.numpy())
    twin = copy.deepcopy(m)
    assert type(twin).__name__ == "ParametrizedLinear"
    np.testing.assert_array_equal(twin.weight.numpy(), m.weight.numpy())
    assert twin.parametrizations.weight.original is not m.parametrizations.weight.original
    assert type(nn.Linear(2, 2)) is nn.Linear   # the generated class is the module's alone
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(m)


def test_orthogonal_weights_are_orthogonal_and_assignment_sets_the_base():
    for shape, how in (((4, 4), "matrix_exp"), ((5, 3), "householder"), ((3, 5), "matrix_exp"), ((2, 4, 3), None),
                       ((3, 4), "cayley")):
        base = _with_weight(shape) if len(shape) == 3 else nn.Linear(shape[-1], shape[-2]).double()
        m = PS.orthogonal(base, orthogonal_map=how)
        W = m.weight.numpy()
        small = min(shape[-2:])
        gram = W.swapaxes(-1, -2) @ W if shape[-2] >= shape[-1] else W @ W.swapaxes(-1, -2)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(small), gram.shape), atol=1e-12)
    m = PS.orthogonal(nn.Linear(3, 3).double())
    Q = np.linalg.qr(randn(3, 3, seed=3))[0]
    m.weight = gt.tensor(Q)
    np.testing.assert_allclose(m.weight.numpy(), Q, atol=1e-12)
    np.testing.assert_allclose(m.parametrizations.weight[0].base.numpy(), Q, atol=1e-12)
    plain = PS.orthogonal(nn.Linear(3, 3).double(), use_trivialization=False)
    assert "base" not in plain.parametrizations.weight[0]._buffers
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        plain.weight = gt.tensor(Q)


def _with_weight(shape):
    m = nn.Module()
    m.weight = nn.Parameter(gt.tensor(randn(*shape, seed=8)))
    return m


def test_errors_name_the_value_and_what_was_expected():
    m = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element with name 'w'"):
        P.register_parametrization(m, "w", Scale())
    with pytest.raises(ValueError, match="may not change the shape of the tensor, unless `unsafe`"):
        P.register_parametrization(m, "weight", _Lambda(lambda X: X.sum(0)))
    with pytest.raises(ValueError, match="may not change the dtype"):
        P.register_parametrization(m, "weight", _Lambda(lambda X: X.double()))
    with pytest.raises(ValueError, match="A parametrization must return a tensor. Got int"):
        P.register_parametrization(m, "weight", _Lambda(lambda X: 3))
    with pytest.raises(TypeError, match="parametrization must be a gt.nn.Module, got function"):
        P.register_parametrization(m, "weight", lambda X: X)
    assert not P.is_parametrized(m) and type(m) is nn.Linear
    P.register_parametrization(m, "weight", _Lambda(lambda X: X.sum(0)), unsafe=True)
    assert m.weight.shape == (3,)
    with pytest.raises(RuntimeError, match="parametrization _Lambda does not implement right_inverse"):
        m.weight = gt.zeros(2, 3)
    with pytest.raises(ValueError, match="does not have a parametrization on bias"):
        P.remove_parametrizations(m, "bias")
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions"):
        PS.orthogonal(nn.Linear(3, 2), "bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of .* Got: qr'):
        PS.orthogonal(nn.Linear(3, 2), orthogonal_map="qr")
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'kernel'"):
        PS.spectral_norm(nn.Linear(3, 2), "kernel")
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\] but got 2\)"):
        PS.spectral_norm(nn.Linear(3, 2), dim=2)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"):
        PS.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    o = PS.orthogonal(nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"Expected a matrix or batch of matrices of shape \(3, 3\). Got a tensor "
                                         r"of shape \(2, 3\)"):
        o.weight = gt.zeros(2, 3)


class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, X):
        return self.fn(X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how,kind", [("orthogonal", "square"), ("orthogonal:householder", "linear"),
                                      ("orthogonal", "conv"), ("orthogonal:cayley", "linear")])
def test_orthogonal_maps_of_a_general_original_match_torch(how, kind, dtype):
    torch = torch_or_skip()
    ref, mine = _modules(kind, dtype)
    _parametrize(ref, how, torch)
    _parametrize(mine, how, gt)
    original = ref.parametrizations.weight.original
    with torch.no_grad():   # far from the identity: matrix_exp scales and squares, every reflection counts
        original.copy_(torch.tensor(randn(*original.shape, seed=4, scale=3.0)))
    mine.load_state_dict(ref.state_dict())
    np.testing.assert_allclose(mine.weight.numpy(), ref.weight.detach().numpy(), **TOL[dtype])
    x = _input(kind, dtype)
    mine(gt.tensor(x)).square().sum().backward()
    ref(torch.tensor(x)).square().sum().backward()
    _same_grads(mine, ref, dtype)


def test_the_deprecated_hook_weight_norm_matches_torch():
    torch = torch_or_skip()
    ref, mine = _modules("conv", "float64")
    with pytest.warns(FutureWarning, match="weight_norm` is deprecated"):
        nn.utils.weight_norm(mine, dim=1)
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(ref, dim=1)
    _same_state(mine, ref, "float64")
    assert not isinstance(mine.weight, nn.Parameter) and mine.weight_g.shape == (1, 2, 1, 1)
    x = _input("conv", "float64")
    mine(gt.tensor(x)).sum().backward()
    ref(torch.tensor(x)).sum().backward()
    _same_grads(mine, ref, "float64")
    with pytest.warns(FutureWarning), \
            pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
        nn.utils.weight_norm(mine)
    nn.utils.remove_weight_norm(mine)
    torch.nn.utils.remove_weight_norm(ref)
    _same_state(mine, ref, "float64")
    assert isinstance(mine.weight, nn.Parameter) and not mine._forward_pre_hooks
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Conv2d"):
        nn.utils.remove_weight_norm(mine)


def test_torch_import_paths():
    import gt.nn.utils.parametrize as parametrize
    from gt.nn.utils.parametrizations import orthogonal
    assert parametrize is P and orthogonal is PS.orthogonal


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_the_hook_spectral_norm_matches_torch_in_train_and_eval_mode(kind):
    torch = torch_or_skip()
    ref, mine = _modules(kind, "float64")
    torch.nn.utils.spectral_norm(ref, n_power_iterations=2, dim=1 if kind == "conv" else None)
    nn.utils.spectral_norm(mine, n_power_iterations=2, dim=1 if kind == "conv" else None)
    assert list(mine.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"] == list(ref.state_dict())
    mine.load_state_dict(ref.state_dict())
    for training in (True, False):
        mine.train(training), ref.train(training)
        x = _input(kind, "float64", seed=int(training))
        out, want = mine(gt.tensor(x)), ref(torch.tensor(x))
        np.testing.assert_allclose(out.numpy(), want.detach().numpy(), **TOL["float64"])
        mine.zero_grad(), ref.zero_grad()
        out.square().sum().backward()
        want.square().sum().backward()
        _same_grads(mine, ref, "float64")
        _same_state(mine, ref, "float64")
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
        nn.utils.spectral_norm(mine)
    nn.utils.remove_spectral_norm(mine)
    torch.nn.utils.remove_spectral_norm(ref)
    _same_state(mine, ref, "float64")
    assert isinstance(mine.weight, nn.Parameter) and not mine._forward_pre_hooks
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in"):
        nn.utils.remove_spectral_norm(mine)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"):
        nn.utils.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
