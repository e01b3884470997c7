"""gt.optim.Muon (gt/optim/muon.py) beside torch.optim.Muon: the trajectory of torch's algorithm
in float64 (torch runs its Newton-Schulz iteration in bfloat16, gt in the parameter's dtype, so
the reference is torch's own formula in float64), torch's Muon itself to bfloat16's precision,
the state dict layout, and torch's errors."""

import math

import numpy as np
import pytest

import gt
from helpers import torch_or_skip

RNG = np.random.default_rng(11)
SHAPES = [(6, 4), (3, 5)]
START = [RNG.normal(size=s) for s in SHAPES]
GRADS = [[RNG.normal(size=s) for s in SHAPES] for _ in range(4)]


def _reference(torch, kwargs):
    """torch's Muon step, written with torch's ops in float64 (its bfloat16 cast left out)."""
    a, b, c = kwargs.get("ns_coefficients", (3.4445, -4.7750, 2.0315))
    lr, wd, mu = kwargs.get("lr", 1e-3), kwargs.get("weight_decay", 0.1), kwargs.get("momentum", 0.95)
    params = [torch.tensor(w) for w in START]
    bufs = [torch.zeros_like(p) for p in params]
    for grads in GRADS:
        for p, buf, g in zip(params, bufs, map(torch.tensor, grads)):
            buf.lerp_(g, 1 - mu)
            u = g.lerp(buf, mu) if kwargs.get("nesterov", True) else buf
            x = u.T if u.shape[0] > u.shape[1] else u
            x = x / x.norm().clamp(min=1e-7)
            for _ in range(kwargs.get("ns_steps", 5)):
                gram = x @ x.T
                x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
            o = x.T if u.shape[0] > u.shape[1] else x
            rows, cols = p.shape
            fn = kwargs.get("adjust_lr_fn")
            scale = math.sqrt(max(1, rows / cols)) if fn in (None, "original") else 0.2 * math.sqrt(max(rows, cols))
            p.mul_(1 - lr * wd)
            p.add_(o, alpha=-lr * scale)
    return [p.numpy() for p in params]


def _run(m, kwargs, dtype):
    params = [m.nn.Parameter(m.tensor(w, dtype=dtype)) for w in START]
    opt = m.optim.Muon(params, **kwargs)
    for grads in GRADS:
        for p, g in zip(params, grads):
            p.grad = m.tensor(g, dtype=dtype)
        opt.step()
    return [p.detach().numpy() for p in params], opt


@pytest.mark.parametrize("kwargs", [
    {}, {"lr": 0.05, "nesterov": False}, {"lr": 0.02, "weight_decay": 0.0, "adjust_lr_fn": "match_rms_adamw"},
    {"momentum": 0.5, "ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5)},
], ids=["defaults", "no nesterov", "match_rms_adamw", "own iteration"])
def test_muon_follows_torch_s_algorithm(kwargs):
    torch = torch_or_skip()
    got, opt = _run(gt, kwargs, gt.float64)
    for g, r in zip(got, _reference(torch, kwargs)):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-14)
    theirs, topt = _run(torch, kwargs, torch.float32)       # torch's own Muon: bfloat16 inside
    ours, _ = _run(gt, kwargs, gt.float32)
    for g, t, w in zip(ours, theirs, START):
        change = np.abs(t - w).max()
        np.testing.assert_allclose(g, t, atol=0.03 * change)
    assert sorted(opt.state_dict()["param_groups"][0]) == sorted(topt.state_dict()["param_groups"][0])
    assert sorted(opt.state_dict()["state"][0]) == sorted(topt.state_dict()["state"][0]) == ["momentum_buffer"]


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.optim.Muon([m.nn.Parameter(m.ones(3))]), ValueError, "only supports 2D parameters"),
    (lambda m: m.optim.Muon([m.nn.Parameter(m.ones(2, 2))], lr=-1.0), ValueError, "Learning rate should be >= 0"),
    (lambda m: m.optim.Muon([m.nn.Parameter(m.ones(2, 2))], adjust_lr_fn="x"), ValueError, "is not supported"),
])
def test_muon_errors_are_torch_s(call, error, match):
    torch = torch_or_skip()
    for m in (torch, gt):
        with pytest.raises(error, match=match):
            call(m)
