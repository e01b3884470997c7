"""Activations, shape layers and loss modules that follow torch's (SiLU, LeakyReLU, ELU, Softplus,
Flatten, Unflatten, L1Loss, NLLLoss): values and gradients beside torch's."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import compare_with_torch, torch_or_skip

RNG = np.random.default_rng(3)
# both signs, away from the kinks at 0, and large values that would overflow exp in float32
X = np.concatenate([RNG.uniform(-4, -0.1, 6), RNG.uniform(0.1, 4, 6), [-90.0, 90.0, 30.0, -30.0]]).reshape(4, 4)


@pytest.mark.parametrize("name, ours, theirs", [
    ("silu", lambda x: F.silu(x), lambda x: __import__("torch").nn.functional.silu(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x), lambda x: __import__("torch").nn.functional.leaky_relu(x)),
    ("leaky_relu 0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: __import__("torch").nn.functional.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x), lambda x: __import__("torch").nn.functional.elu(x)),
    ("elu alpha", lambda x: F.elu(x, alpha=0.5), lambda x: __import__("torch").nn.functional.elu(x, alpha=0.5)),
    ("softplus", lambda x: F.softplus(x), lambda x: __import__("torch").nn.functional.softplus(x)),
    ("softplus beta", lambda x: F.softplus(x, beta=2.0, threshold=10.0),
     lambda x: __import__("torch").nn.functional.softplus(x, beta=2.0, threshold=10.0)),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activations_are_torchs(name, ours, theirs, dtype):
    torch_or_skip()
    compare_with_torch(ours, theirs, X, dtype=dtype)


@pytest.mark.parametrize("make, shape", [
    (lambda L: L.nn.SiLU(), (2, 3, 4)), (lambda L: L.nn.LeakyReLU(0.1), (2, 3, 4)),
    (lambda L: L.nn.ELU(alpha=2.0), (2, 3, 4)), (lambda L: L.nn.Softplus(beta=0.5), (2, 3, 4)),
    (lambda L: L.nn.Flatten(), (2, 3, 4)), (lambda L: L.nn.Flatten(0, 1), (2, 3, 4)),
    (lambda L: L.nn.Unflatten(1, (2, 6)), (2, 12)), (lambda L: L.nn.Unflatten(-1, (3, -1)), (2, 12)),
], ids=["SiLU", "LeakyReLU", "ELU", "Softplus", "Flatten", "Flatten(0, 1)", "Unflatten", "Unflatten(-1)"])
def test_modules_are_torchs(make, shape):
    torch = torch_or_skip()
    x = RNG.standard_normal(shape).astype(np.float32)
    ours, theirs = make(gt)(gt.tensor(x)), make(torch)(torch.tensor(x))
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)
    assert repr(make(gt)).split("(")[0] == repr(make(torch)).split("(")[0]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_are_torchs(reduction):
    torch = torch_or_skip()
    a, b = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))
    log_probs = np.log(np.full((5, 3), 1 / 3)) + RNG.standard_normal((5, 3)) * 0.1
    target = np.array([0, 2, 1, 1, 0])
    compare_with_torch(lambda x, y: nn.L1Loss(reduction)(x, y), lambda x, y: torch.nn.L1Loss(reduction=reduction)(x, y),
                       a, b)
    compare_with_torch(lambda x, t: nn.NLLLoss(reduction)(x, t),
                       lambda x, t: torch.nn.NLLLoss(reduction=reduction)(x, t), log_probs, target)


def test_unflatten_names_a_bad_size():
    with pytest.raises(ValueError, match="do not multiply to the length 12"):
        nn.Unflatten(1, (5, 2))(gt.zeros(2, 12))
    with pytest.raises(IndexError, match="out of range"):
        nn.Unflatten(3, (2, 6))(gt.zeros(2, 12))


A = RNG.standard_normal((4, 5)) * 2
B_ = RNG.standard_normal((4, 5)) * 2
P = RNG.dirichlet(np.ones(5), size=4)
P[0, 1] = 0.0                        # a zero target probability: its term is 0, not NaN
P[0] /= P[0].sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, ours, theirs", [
    ("smooth_l1", lambda a, b, r: F.smooth_l1_loss(a, b, r),
     lambda a, b, r: __import__("torch").nn.functional.smooth_l1_loss(a, b, reduction=r)),
    ("smooth_l1 beta", lambda a, b, r: F.smooth_l1_loss(a, b, r, beta=0.5),
     lambda a, b, r: __import__("torch").nn.functional.smooth_l1_loss(a, b, reduction=r, beta=0.5)),
    ("smooth_l1 beta 0", lambda a, b, r: F.smooth_l1_loss(a, b, r, beta=0.0),
     lambda a, b, r: __import__("torch").nn.functional.smooth_l1_loss(a, b, reduction=r, beta=0.0)),
    ("huber", lambda a, b, r: F.huber_loss(a, b, r),
     lambda a, b, r: __import__("torch").nn.functional.huber_loss(a, b, reduction=r)),
    ("huber delta", lambda a, b, r: F.huber_loss(a, b, r, delta=2.5),
     lambda a, b, r: __import__("torch").nn.functional.huber_loss(a, b, reduction=r, delta=2.5)),
])
def test_regression_losses_are_torchs(name, ours, theirs, reduction):
    torch_or_skip()
    compare_with_torch(lambda a, b: ours(a, b, reduction), lambda a, b: theirs(a, b, reduction), A, B_)


# torch warns that its 'mean' will change meaning; gt follows today's torch, which this compares against
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")
@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_is_torchs(reduction, log_target):
    torch = torch_or_skip()
    log_q = np.log(RNG.dirichlet(np.ones(5), size=4))
    target = np.log(np.where(P > 0, P, 1e-3)) if log_target else np.where(P > 0, P, 1e-3)

    def ours(x, t):
        return F.kl_div(x, t, reduction=reduction, log_target=log_target)

    def theirs(x, t):
        return torch.nn.functional.kl_div(x, t, reduction=reduction, log_target=log_target)

    compare_with_torch(ours, theirs, log_q, target)
    if not log_target:
        # a target probability of 0 adds 0 (torch's xlogy); the gradient in the input stays finite
        # (in the target it is -inf there: torch gives NaN, gt 0)
        compare_with_torch(ours, theirs, log_q, P, grad=False)
        x = gt.tensor(log_q, requires_grad=True)
        ours(x, gt.tensor(P)).sum().backward()
        assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("name, ours, theirs", [
    ("normalize", lambda a: F.normalize(a), lambda a: __import__("torch").nn.functional.normalize(a)),
    ("normalize p=1 dim 0", lambda a: F.normalize(a, p=1, dim=0),
     lambda a: __import__("torch").nn.functional.normalize(a, p=1, dim=0)),
    ("normalize a zero row", lambda a: F.normalize(a * (np.arange(4) > 0)[:, None]),
     lambda a: __import__("torch").nn.functional.normalize(a * __import__("torch").tensor(np.arange(4) > 0)[:, None])),
])
def test_normalize_is_torchs(name, ours, theirs):
    torch_or_skip()
    compare_with_torch(ours, theirs, A)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cosine_similarity_is_torchs(dim):
    torch = torch_or_skip()
    compare_with_torch(lambda a, b: F.cosine_similarity(a, b, dim=dim),
                       lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=dim), A, B_)
    # broadcasting one row against many
    compare_with_torch(lambda a, b: F.cosine_similarity(a, b), lambda a, b: torch.nn.functional.cosine_similarity(a, b),
                       A, B_[:1])


def test_bad_loss_options_are_named():
    with pytest.raises(ValueError, match="beta must be >= 0"):
        F.smooth_l1_loss(gt.zeros(3), gt.zeros(3), beta=-1.0)
    with pytest.raises(ValueError, match="delta must be > 0"):
        F.huber_loss(gt.zeros(3), gt.zeros(3), delta=0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.kl_div(gt.zeros(3), gt.zeros(3), reduction="average")
    with pytest.raises(ValueError, match="differ"):
        F.huber_loss(gt.zeros(3), gt.zeros(4))


def _mixture(lib):
    """A module with a ParameterList and a ParameterDict, written once for gt and torch."""
    nn_ = lib.nn

    class Mixture(nn_.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn_.ParameterList([lib.ones(3), lib.ones(3) * 2])
            self.scales.append(nn_.Parameter(lib.ones(3) * 3))
            self.shifts = nn_.ParameterDict({"a": lib.zeros(3)})
            self.shifts["b"] = lib.ones(3)

        def forward(self, x):
            for s in self.scales:
                x = x * s
            return x + self.shifts["a"] + self.shifts["b"]

    return Mixture()


def test_parameter_containers_register_as_torchs():
    torch = torch_or_skip()
    ours, theirs = _mixture(gt), _mixture(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == \
        ["scales.0", "scales.1", "scales.2", "shifts.a", "shifts.b"]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(type(p) is nn.Parameter for p in ours.parameters())
    assert len(ours.scales) == 3 and ours.scales[-1].shape == (3,) and len(ours.scales[1:]) == 2
    assert "a" in ours.shifts and list(ours.shifts.keys()) == ["a", "b"]
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(gt.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy())
    # a step of gradient descent moves every parameter as torch's does
    for model, lib in ((ours, gt), (theirs, torch)):
        opt = lib.optim.SGD(model.parameters(), lr=0.1)
        model(lib.tensor(x)).sum().backward()
        opt.step()
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-6, err_msg=name)
    # and the state loads into a fresh one
    fresh = _mixture(gt)
    fresh.load_state_dict(ours.state_dict())
    np.testing.assert_array_equal(fresh.scales[2].numpy(), ours.scales[2].numpy())


def test_parameter_containers_name_bad_entries():
    with pytest.raises(TypeError, match="expected a gt.nn.Parameter or a tensor"):
        nn.ParameterList([3.0])
    with pytest.raises(IndexError, match="out of range for ParameterList of length 1"):
        nn.ParameterList([gt.zeros(1)])[2]
    with pytest.raises(NotImplementedError, match="ParameterDict has no forward"):
        nn.ParameterDict()(gt.zeros(1))
