"""nn.init, autocast's queries and activation checkpointing beside torch 2.13: the gains and fan
modes torch takes, trunc_normal_ far from the mean, eye_/dirac_ of any dtype, the fills' argument
checks, and a checkpointed segment whose argument is changed in place before the backward."""

import math
import warnings

import numpy as np
import pytest

import gt
from gt import nn
from gt.utils.checkpoint import checkpoint, checkpoint_sequential
from helpers import torch_or_skip


# ---- nn.init -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear", "sigmoid"])
def test_calculate_gain_of_linear_functions_is_torchs(name):
    torch = torch_or_skip()
    assert nn.init.calculate_gain(name) == torch.nn.init.calculate_gain(name) == 1
    assert type(nn.init.calculate_gain(name)) is type(torch.nn.init.calculate_gain(name))


@pytest.mark.parametrize("name", ["identity", "gelu", "Relu"])
def test_calculate_gain_refuses_what_torch_refuses(name):
    torch = torch_or_skip()
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        torch.nn.init.calculate_gain(name)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain(name)


@pytest.mark.parametrize("fn", ["kaiming_uniform_", "kaiming_normal_"])
@pytest.mark.parametrize("mode, fan", [("FAN_IN", 20 * 9), ("Fan_Out", 30 * 9)])
def test_kaiming_mode_in_any_case_as_torch(fn, mode, fan):
    torch = torch_or_skip()
    getattr(torch.nn.init, fn)(torch.empty(30, 20, 3, 3), mode=mode)      # torch lowers the mode
    w = getattr(nn.init, fn)(gt.empty(30, 20, 3, 3), mode=mode, nonlinearity="relu").numpy()
    if fn == "kaiming_uniform_":
        assert np.abs(w).max() <= math.sqrt(2.0) * math.sqrt(3.0 / fan) + 1e-6
    assert abs(w.std() - math.sqrt(2.0 / fan)) < 0.1 * math.sqrt(2.0 / fan)


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0,)])
def test_kaiming_of_zero_elements_warns_and_does_nothing_as_torch(shape):
    torch = torch_or_skip()
    with pytest.warns(UserWarning, match="zero-element"):
        torch.nn.init.kaiming_normal_(torch.empty(*shape))
    with pytest.warns(UserWarning, match="zero-element"):
        assert tuple(nn.init.kaiming_normal_(gt.empty(*shape)).shape) == shape
    with pytest.warns(UserWarning, match="zero-element"):
        assert tuple(nn.init.kaiming_uniform_(gt.empty(*shape)).shape) == shape


FAR_FROM_THE_MEAN = [dict(mean=10.0, std=1.0, a=-2.0, b=2.0), dict(mean=-6.0, std=0.5, a=-1.0, b=1.0),
                     dict(mean=0.0, std=1.0, a=3.0, b=4.0)]


def _truncated_normal_moments(mean, std, a, b):
    """The exact mean and standard deviation of N(mean, std**2) cut to [a, b]: what torch's
    trunc_normal_ (exact rejection sampling) draws, without its cost (seconds per 60,000 values
    this far out, where few proposals are accepted)."""
    lo, hi = (a - mean) / std, (b - mean) / std
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)      # noqa: E731
    tail = lambda x: 0.5 * math.erfc(x / math.sqrt(2))                  # noqa: E731 - P(X > x), exact far out
    mass = tail(lo) - tail(hi) if lo >= 0 else tail(-hi) - tail(-lo)
    shift = (pdf(lo) - pdf(hi)) / mass
    var = 1 + (lo * pdf(lo) - hi * pdf(hi)) / mass - shift * shift
    return mean + std * shift, std * math.sqrt(var)


@pytest.mark.first_pass     # torch's side only: no GT_* setting changes it
@pytest.mark.parametrize("kw", FAR_FROM_THE_MEAN)
def test_torchs_trunc_normal_far_from_the_mean_has_the_exact_moments(kw):
    """The reference of the test below: torch's own draws have these moments. 18,000 draws from a
    seeded generator (the same draws in every run; their moments within 0.43 of the tolerance): torch's
    exact rejection sampling this far out took 9 s of CPU for 60,000."""
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.init.trunc_normal_(torch.empty(60, 300), generator=torch.Generator().manual_seed(0),
                                             **kw).numpy()
    np.testing.assert_allclose([theirs.mean(), theirs.std()], _truncated_normal_moments(**kw), rtol=0.02, atol=2e-3)


@pytest.mark.parametrize("kw", FAR_FROM_THE_MEAN)
def test_trunc_normal_far_from_the_mean_as_torchs(kw):
    torch = torch_or_skip()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.nn.init.trunc_normal_(torch.empty(2, 3), **kw)        # its warnings; its values: the moments
    with warnings.catch_warnings(record=True) as ours_seen:
        warnings.simplefilter("always")
        ours = nn.init.trunc_normal_(gt.empty(200, 300), **kw).numpy()
    assert [str(w.message) for w in ours_seen] == [str(w.message) for w in seen]
    assert ours.min() >= kw["a"] and ours.max() <= kw["b"]
    np.testing.assert_allclose([ours.mean(), ours.std()], _truncated_normal_moments(**kw), rtol=0.02, atol=2e-3)


def test_trunc_normal_with_equal_bounds_fills_the_bound_as_torch():
    torch = torch_or_skip()
    theirs = torch.nn.init.trunc_normal_(torch.empty(3, 4), a=1.0, b=1.0).numpy()
    np.testing.assert_array_equal(nn.init.trunc_normal_(gt.empty(3, 4), a=1.0, b=1.0).numpy(), theirs)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_eye_and_dirac_fill_any_dtype_as_torch(dtype):
    torch = torch_or_skip()
    theirs = torch.nn.init.eye_(torch.empty(2, 3, dtype=getattr(torch, dtype)))
    ours = nn.init.eye_(gt.empty(2, 3, dtype=getattr(gt, dtype)))
    assert ours.dtype == getattr(gt, dtype)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    theirs = torch.nn.init.dirac_(torch.empty(4, 2, 3, dtype=getattr(torch, dtype)), groups=2)
    ours = nn.init.dirac_(gt.empty(4, 2, 3, dtype=getattr(gt, dtype)), groups=2)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@pytest.mark.parametrize("call", [lambda I, M: I.uniform_(M.empty(3, 4), 2.0, 1.0),
                                  lambda I, M: I.normal_(M.empty(3, 4), 0.0, -1.0)])
def test_fills_refuse_reversed_bounds_and_negative_std_as_torch(call):
    torch = torch_or_skip()
    with pytest.raises(RuntimeError):
        call(torch.nn.init, torch)
    with pytest.raises(RuntimeError):
        call(nn.init, gt)


# ---- autocast's queries ------------------------------------------------------------------------
def test_is_autocast_enabled_takes_torchs_device_type():
    torch = torch_or_skip()
    assert gt.is_autocast_enabled("cpu") is torch.is_autocast_enabled("cpu") is False
    with pytest.raises(RuntimeError):
        torch.is_autocast_enabled("tpu")
    with pytest.raises(RuntimeError):
        gt.is_autocast_enabled("tpu")
    assert gt.get_autocast_dtype("cpu") == gt.bfloat16 and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with gt.autocast("cpu", enabled=False):
        assert gt.is_autocast_enabled("cpu") is False


# ---- checkpoint --------------------------------------------------------------------------------
@pytest.mark.parametrize("use_reentrant, needs_grad", [(True, True), (False, True), (False, False)])
def test_checkpoint_argument_changed_in_place_before_backward_raises_as_torch(use_reentrant, needs_grad):
    torch = torch_or_skip()
    rows = np.random.RandomState(0).randn(3, 4).astype(np.float32)
    for M, cp in ((torch, torch.utils.checkpoint.checkpoint), (gt, checkpoint)):
        lin = M.nn.Linear(4, 4)
        x = M.tensor(rows, requires_grad=needs_grad)
        y = x * 1
        if M is gt and y._placed is not None:
            pytest.skip("sharded over the mesh (GT_DEVICES): in-place changes of sharded arguments are not seen "
                        "(MISSING.md)")
        out = cp(lambda a: lin(a), y, use_reentrant=use_reentrant)
        y.mul_(2)              # the recomputation would read the doubled input: a wrong weight gradient
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.sum().backward()


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpoint_sequential_refuses_more_segments_than_functions_as_torch(use_reentrant):
    torch = torch_or_skip()
    seq = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(3)])
    with pytest.raises(ValueError):
        torch.utils.checkpoint.checkpoint_sequential(seq, 4, torch.randn(2, 4, requires_grad=True),
                                                     use_reentrant=use_reentrant)
    ours = nn.Sequential(*[nn.Linear(4, 4) for _ in range(3)])
    with pytest.raises(ValueError):
        checkpoint_sequential(ours, 4, gt.randn(2, 4, requires_grad=True), use_reentrant=use_reentrant)
    x = gt.randn(2, 4, requires_grad=True)
    np.testing.assert_allclose(checkpoint_sequential(ours, 3, x, use_reentrant=use_reentrant).detach().numpy(),
                               ours(x).detach().numpy(), rtol=1e-6)
