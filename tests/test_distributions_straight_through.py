"""OneHotCategoricalStraightThrough and SoftplusTransform beside torch's."""

import numpy as np

import gt
from helpers import torch_or_skip


def test_softplus_transform_is_torch_s():
    torch = torch_or_skip()
    got = []
    for m in (torch, gt):
        t = m.distributions.SoftplusTransform()
        x = m.tensor([-30.0, -3.0, 0.0, 2.5, 40.0], dtype=m.float64, requires_grad=True)
        y = t(x)
        jac = t.log_abs_det_jacobian(x, y)
        (y.sum() + jac.sum()).backward()
        got.append([y.detach().numpy(), t.inv(y).detach().numpy(), jac.detach().numpy(), x.grad.numpy()])
        assert t.bijective and t.sign == 1 and t == m.distributions.transforms.SoftplusTransform()
    for g, w in zip(got[1], got[0]):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_one_hot_straight_through_draws_one_hot_and_passes_the_probabilities_gradient():
    torch = torch_or_skip()
    grads = []
    for m in (torch, gt):
        p = m.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], dtype=m.float64, requires_grad=True)
        d = m.distributions.OneHotCategoricalStraightThrough(probs=p)
        s = d.rsample((4,))
        assert tuple(s.shape) == (4, 2, 3) and d.has_rsample
        np.testing.assert_array_equal(s.detach().numpy().sum(-1), np.ones((4, 2)))   # one-hot draws
        assert set(np.unique(s.detach().numpy())) <= {0.0, 1.0}
        (s * m.tensor([1.0, 2.0, 3.0], dtype=m.float64)).sum().backward()
        grads.append(p.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)     # the draws differ; their gradient does not
