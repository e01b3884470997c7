"""gt.special's gradients and values beside torch where an earlier gt differed: trigamma (digamma's
gradient) far below zero, the gradients of ``i1``/``i1e`` at NaN."""

import os
import subprocess
import sys

import numpy as np
import pytest

import gt

torch = pytest.importorskip("torch")

FAR_NEGATIVE = [-279071264.09745413, -1447453707.6585727, -7851508437327.535, -2.5, -0.3, 0.25, 3.5]


def test_trigamma_far_below_zero_is_torchs_and_quick():
    # scipy's polygamma(1, x) summed |x| terms there (hours at -7.8e12); torch reflects below 1/2
    code = ("import gt; x = gt.tensor(%r, dtype=gt.float64, requires_grad=True); "
            "print(gt.polygamma(1, x).tolist()); x.digamma().sum().backward(); print(x.grad.tolist())") % FAR_NEGATIVE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ)).stdout.split("\n")
    expected = torch.polygamma(1, torch.tensor(FAR_NEGATIVE, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(eval(out[0]), expected, rtol=1e-8)
    np.testing.assert_allclose(eval(out[1]), expected, rtol=1e-8)


@pytest.mark.parametrize("name", ["i1", "i1e"])
def test_i1_gradient_at_nan_is_torchs(name):
    values = [float("nan"), 0.0, 1e-30, 1.5, -2.0]
    x = gt.tensor(values, dtype=gt.float64, requires_grad=True)
    getattr(gt.special, name)(x).sum().backward()
    t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    getattr(torch.special, name)(t).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    # the recorded gradient (create_graph) takes the same mask
    x = gt.tensor(values, dtype=gt.float64, requires_grad=True)
    (g,) = gt.autograd.grad(getattr(gt.special, name)(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), t.grad.numpy(), rtol=1e-12)
