"""Activations, shape layers and loss modules that follow torch's (SiLU, LeakyReLU, ELU, Softplus,
Flatten, Unflatten, L1Loss, NLLLoss): values and gradients beside torch's."""

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from tests.helpers import compare_with_torch, torch_or_skip

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
