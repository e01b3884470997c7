"""Higher-order gradients (``create_graph=True``) beside torch: for each op whose backward gt can
record, the gradient and the gradient of a function of it (a Hessian-vector product) against
torch's in float64; backward(create_graph=True); gradients given as tensors with a graph; a
third derivative; a gradient penalty through a small network; hooks; the errors."""

import numpy as np
import pytest

import gt
from gt.sharding.mesh import use_mesh
from helpers import randn

torch = pytest.importorskip("torch")
# torch's own note on an even kernel with padding="same" (the uneven padding is the point of that case)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
F = gt.nn.functional
TF = torch.nn.functional


def _pos(*shape, seed=0):
    return np.abs(randn(*shape, seed=seed)) + 0.5


def _away(*shape, seed=0):        # no value near a kink (abs, relu, max/min ties)
    x = randn(*shape, seed=seed)
    return np.where(np.abs(x) < 0.2, x + 0.5 * np.sign(x + 1e-9), x)


# name -> (inputs, f(xs, lib)) with lib = (gt or torch, its functional module)
_IDX = np.array([0, 2, 2, 1])
_SIDX = np.array([[1, 3, 1], [0, 0, 2]])       # repeats: summed, averaged, the largest
_UIDX = np.array([[1, 3, 0], [0, 2, 3]])       # scatter's positions distinct (torch leaves repeats to chance)
_BLOCK = np.array([[True, False, True, True, True], [True, True, True, False, True], [False, False, True, False, True]])


def _sdpa(m, F, q, k, v, mask=None, is_causal=False):
    """gt's fused attention, or torch's arithmetic written out (torch cannot differentiate its
    CPU flash-attention kernel twice)."""
    if m is gt:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    s = q @ k.mT / q.shape[-1] ** 0.5
    if is_causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else s + mask   # True: attends
    return torch.softmax(s, -1) @ v
CASES = {
    "add": ([randn(3, 4), randn(4, seed=1)], lambda x, m, F: x[0] + x[1]),
    "sub": ([randn(3, 4), randn(3, 1, seed=1)], lambda x, m, F: x[0] - x[1]),
    "mul": ([randn(3, 4), randn(3, 4, seed=1)], lambda x, m, F: x[0] * x[1]),
    "div": ([randn(3, 4), _pos(3, 4, seed=1)], lambda x, m, F: x[0] / x[1]),
    "pow_number": ([randn(3, 4)], lambda x, m, F: x[0] ** 3),
    "pow_tensor": ([_pos(3, 4), randn(3, 4, seed=1)], lambda x, m, F: x[0] ** x[1]),
    "rpow": ([randn(3, 4)], lambda x, m, F: 2.0 ** x[0]),
    "neg_abs": ([_away(3, 4)], lambda x, m, F: -(x[0].abs()) * x[0]),
    "exp_log_sqrt": ([_pos(3, 4)], lambda x, m, F: x[0].exp() + x[0].log() * x[0].sqrt()),
    "maximum_minimum": ([randn(3, 4), randn(3, 4, seed=1)],
                        lambda x, m, F: m.maximum(x[0], x[1]) * m.minimum(x[0], x[1])),
    "clamp": ([_away(3, 4)], lambda x, m, F: x[0].clamp(-0.5, 0.5) * x[0]),
    "where": ([randn(3, 4), randn(3, 4, seed=1)], lambda x, m, F: m.where(x[0] > 0, x[0] * x[1], x[1] ** 2)),
    "cast": ([randn(3, 4)], lambda x, m, F: x[0].float().double() ** 2),
    "relu": ([_away(3, 4)], lambda x, m, F: F.relu(x[0]) * x[0]),
    "sigmoid_tanh": ([randn(3, 4)], lambda x, m, F: x[0].sigmoid() * x[0].tanh()),
    "gelu": ([randn(3, 4)], lambda x, m, F: F.gelu(x[0]) + F.gelu(x[0], approximate="tanh") * x[0]),
    "softmax": ([randn(3, 5)], lambda x, m, F: F.softmax(x[0], dim=-1) * x[0]),
    "log_softmax": ([randn(3, 5)], lambda x, m, F: F.log_softmax(x[0], dim=0) * x[0]),
    "cross_entropy": ([randn(4, 5)], lambda x, m, F: F.cross_entropy(x[0] * x[0], m.tensor([0, 3, 1, 4]))),
    "bce": ([np.clip(_pos(3, 4) / 3, 0.05, 0.95), np.clip(_pos(3, 4, seed=1) / 3, 0, 1)],
            lambda x, m, F: F.binary_cross_entropy(x[0], x[1], reduction="none") * x[0]),
    "bce_with_logits": ([randn(3, 4), _pos(3, 4, seed=1) / 3],
                        lambda x, m, F: F.binary_cross_entropy_with_logits(x[0] * x[1], x[1], reduction="none",
                                                                           pos_weight=m.tensor([1.0, 2.0, 0.5, 3.0]))
                        + F.binary_cross_entropy_with_logits(x[0], x[1], reduction="none") * x[0]),
    "conv1d": ([randn(2, 2, 7), randn(3, 2, 3, seed=1), randn(3, seed=2)],
               lambda x, m, F: F.conv1d(x[0], x[1], x[2], stride=2, padding=1).tanh()),
    "conv2d_groups_dilation": ([randn(2, 4, 6, 5), randn(4, 2, 2, 3, seed=1)],
                               lambda x, m, F: F.conv2d(x[0], x[1], groups=2, dilation=(2, 1), padding=(1, 0)) ** 2),
    "conv2d_same": ([randn(1, 2, 5, 5), randn(2, 2, 2, 2, seed=1)],
                    lambda x, m, F: F.conv2d(x[0], x[1], padding="same").sigmoid() * 3),
    "conv3d": ([randn(1, 1, 4, 4, 3), randn(2, 1, 2, 2, 2, seed=1)],
               lambda x, m, F: F.conv3d(x[0], x[1], stride=(1, 2, 1)) ** 3),
    "max_pool": ([randn(2, 2, 6, 5), randn(1, 3, 7, seed=1)],
                 lambda x, m, F: F.max_pool2d(x[0] ** 3, 2, stride=(2, 1), padding=1).sum() * x[0]
                 + (F.max_pool1d(x[1].tanh(), 3, stride=2, dilation=2) ** 2).sum()),
    "avg_pool": ([randn(2, 2, 6, 5), randn(1, 3, 7, seed=1)],
                 lambda x, m, F: F.avg_pool2d(x[0] ** 3, 3, stride=2, padding=1, count_include_pad=False).sum() * x[0]
                 + (F.avg_pool1d(x[1].tanh(), 2) ** 2).sum()),
    "sdpa": ([randn(2, 3, 4), randn(2, 5, 4, seed=1), randn(2, 5, 3, seed=2)],
             lambda x, m, F: _sdpa(m, F, x[0], x[1], x[2]) ** 2),
    "sdpa_causal": ([randn(2, 4, 4), randn(2, 4, 4, seed=1), randn(2, 4, 3, seed=2)],
                    lambda x, m, F: _sdpa(m, F, x[0], x[1], x[2], is_causal=True) ** 2),
    "sdpa_masks": ([randn(2, 3, 4), randn(2, 5, 4, seed=1), randn(2, 5, 3, seed=2), randn(3, 5, seed=3)],
                   lambda x, m, F: _sdpa(m, F, x[0], x[1], x[2], x[3]) ** 2
                   + _sdpa(m, F, x[0], x[1], x[2], m.tensor(_BLOCK)) ** 3),
    # q, k and v one tensor, or made from one another: each needs its own partial derivative
    # (the recorded gradient summed the paths through the others: q = k = v got 3x its share)
    "sdpa_self": ([randn(2, 4, 4)], lambda x, m, F: _sdpa(m, F, x[0], x[0], x[0]) ** 2),
    "sdpa_related": ([randn(2, 4, 4)], lambda x, m, F: _sdpa(m, F, x[0], x[0] * 0.5, x[0].sin()) ** 2),
    "batch_norm_train": ([randn(3, 2, 4), randn(2, seed=1), randn(2, seed=2)],
                         lambda x, m, F: F.batch_norm(x[0], None, None, x[1], x[2], training=True) ** 3),
    "batch_norm_eval": ([randn(3, 2, 4), randn(2, seed=1), randn(2, seed=2)],
                        lambda x, m, F: F.batch_norm(x[0], m.tensor(np.array([0.1, -0.2])), m.tensor(np.array([1.5, 0.7])), x[1], x[2],
                                                     training=False) ** 3),
    "group_instance_norm": ([randn(2, 4, 3), randn(4, seed=1)],
                            lambda x, m, F: F.group_norm(x[0], 2, x[1]) ** 3 + F.instance_norm(x[0] * x[0]) ** 2),
    "pad": ([randn(1, 2, 4, 5)],
            lambda x, m, F: (F.pad(x[0], (1, 2, 2, 1), mode="reflect") ** 3).sum() * F.pad(x[0], (1, -1, 0, 2), value=0.5)
            + F.pad(x[0] ** 2, (2, 1, 1, 1), mode="replicate").sum() * F.pad(x[0], (1, 1, 1, 1), mode="circular").mean()),
    "cumsum": ([randn(3, 4)], lambda x, m, F: x[0].cumsum(1) ** 3),
    "einsum": ([randn(3, 4), randn(4, 2, seed=1), randn(2, 3, 3, seed=2)],
               lambda x, m, F: m.einsum("ij,jk->ik", x[0], x[1]) ** 2
               + m.einsum("bii,ij->bj", x[2], x[0][:, :3].mT @ x[0][:, :3]).sum() * m.einsum("ij->", x[0] ** 3)),
    "conv_transpose": ([randn(2, 4, 3, 4), randn(4, 3, 2, 3, seed=1), randn(6, seed=2), randn(1, 2, 5, seed=3),
                        randn(2, 3, 3, seed=4)],
                       lambda x, m, F: F.conv_transpose2d(x[0], x[1], x[2], stride=(2, 1), padding=(1, 0),
                                                          output_padding=(1, 0), groups=2, dilation=(1, 2)) ** 2
                       + (F.conv_transpose1d(x[3], x[4], stride=3, padding=1) ** 3).sum() * x[0].mean()),
    "sort_topk": ([randn(3, 5)], lambda x, m, F: x[0].sort(1).values ** 3 * m.tensor(np.arange(5.0))
                  + x[0].topk(2, dim=0).values.sum() * x[0]),
    "unfold_fold": ([randn(1, 2, 5, 4)],
                    lambda x, m, F: F.fold(F.unfold(x[0] ** 2, (2, 3), padding=1, stride=(2, 1)) ** 2, (5, 4), (2, 3),
                                           padding=1, stride=(2, 1)) * x[0]),
    "scatter_family": ([randn(3, 4), randn(2, 3, seed=1), randn(3, 2, seed=2)],
                       lambda x, m, F: x[0].scatter(1, m.tensor(_UIDX), x[1] ** 2) ** 3
                       + x[0].scatter_add(1, m.tensor(_SIDX), x[1] * x[1]) * x[0]
                       + x[0].scatter_reduce(1, m.tensor(_SIDX), x[1] ** 3, "mean", include_self=False) ** 2
                       + x[0].scatter_reduce(1, m.tensor(_SIDX), x[1] ** 3, "amax") ** 2
                       + x[0].index_add(1, m.tensor([3, 0]), x[2] ** 2, alpha=0.5) ** 2
                       + x[0].index_copy(1, m.tensor([2, 0]), x[2] * x[2]) ** 3),
    "binary_math": ([randn(3, 4), _pos(3, 4, seed=1)],
                    lambda x, m, F: m.atan2(x[0], x[1]) * x[0] + m.hypot(x[0], x[1]) ** 2 + m.logaddexp(x[0], x[1]) ** 3
                    + m.xlogy(x[0], x[1]) * x[1]),
    "prod_cumprod": ([_away(3, 4)], lambda x, m, F: x[0].prod(1)[:, None] ** 2 * x[0].prod() + x[0].cumprod(0) ** 2),
    # zeros, one and two in a slice: the recorded gradients take no quotient
    "prod_cumprod_zeros": ([np.array([[2.0, 0.0, 3.0, 0.5], [1.0, 2.0, 0.0, 0.0], [1.5, -2.0, 3.0, 4.0]])],
                           lambda x, m, F: x[0].prod(1)[:, None] ** 2 * x[0].prod(0) + x[0].prod() * x[0]
                           + x[0].cumprod(1) ** 2 + x[0].cumprod(0) * x[0]),
    "logit": ([np.clip(_pos(3, 4) / 3, 0.05, 0.95) * np.where(randn(3, 4, seed=3) > 1, 1.2, 1.0)],
              lambda x, m, F: x[0].logit(eps=0.1) ** 3 + x[0].clamp(0.01, 0.99).logit() ** 2),
    "item_assignment": ([randn(3, 4), randn(4, seed=1)], lambda x, m, F: _assigned(x[0], x[1]) ** 3),
    "written_through_views": ([randn(4, 3), randn(6, seed=1)], lambda x, m, F: _written_through_views(x[0], x[1]) ** 3),
    "sum_mean": ([randn(3, 4)], lambda x, m, F: (x[0] * x[0]).sum(dim=1, keepdim=True) * x[0].mean(dim=0)),
    "max_min": ([randn(3, 4)], lambda x, m, F: x[0].amax(dim=1) * x[0].amin(dim=1) + x[0].max() ** 2),
    "norm": ([randn(3, 4)], lambda x, m, F: x[0].norm(dim=1) ** 3),
    "shape_ops": ([randn(2, 3, 4)],
                  lambda x, m, F: (x[0] ** 2).reshape(6, 4).permute(1, 0)[:, :5].unsqueeze(0).expand(2, 4, 5)),
    "indexing": ([randn(3, 4)], lambda x, m, F: x[0][m.tensor(_IDX)] ** 3 + x[0][1:, ::2].sum() * x[0][0]),
    "embedding": ([randn(5, 3)], lambda x, m, F: F.embedding(m.tensor(_IDX), x[0]) ** 2),
    "cat_stack": ([randn(2, 3), randn(2, 2, seed=1)],
                  lambda x, m, F: m.cat([x[0] ** 2, x[1] * x[0][:, :2]], dim=1) * m.stack([x[0][:, 0], x[1][:, 1]], -1)[:, :1]),
    "matmul": ([randn(3, 4), randn(4, 2, seed=1)], lambda x, m, F: (x[0] @ x[1]) ** 2),
    "matmul_batched_vector": ([randn(2, 3, 4), randn(4, seed=1)], lambda x, m, F: (x[0] @ x[1]) ** 2 + (x[1] @ x[1])),
    "linear": ([randn(2, 3, 4), randn(5, 4, seed=1), randn(5, seed=2)],
               lambda x, m, F: F.linear(x[0], x[1], x[2]).tanh()),
    "layer_norm": ([randn(3, 6), randn(6, seed=1), randn(6, seed=2)],
                   lambda x, m, F: F.layer_norm(x[0], (6,), x[1], x[2]) ** 3),
}


def _unit(*shape, seed=0):
    return np.tanh(randn(*shape, seed=seed)) * 0.9


_MATH = {"sin": randn, "cos": randn, "tan": _unit, "atan": randn, "sinh": randn, "cosh": randn, "asinh": randn,
         "log1p": _pos, "expm1": randn, "exp2": randn, "erf": randn, "erfc": randn, "atanh": _unit, "asin": _unit,
         "acos": _unit, "acosh": lambda *s, seed=0: _pos(*s, seed=seed) + 1, "erfinv": _unit}
for _name, _make in _MATH.items():
    CASES["math_" + _name] = ([_make(3, 4)], lambda x, m, F, n=_name: getattr(m, n)(x[0]) * x[0])


def _assigned(x, v):
    y = x * 1.0
    y[1] = v * v            # recorded as the write it is (torch's CopySlices)
    y[0, 1:3] = 2.0
    return y


def _written_through_views(x, v):
    y = x * 1.0
    y[1:3].reshape(-1).mul_(v)            # through a slice and a reshape (torch's CopySlices)
    y.permute(1, 0)[0] = v[:4] * y[:, 2].clone()   # through a transpose, with a value read from y
    y[0].add_(v[2:5] ** 2)
    return y


def _run(lib, F_, inputs, f, weights, vs):
    xs = [lib.tensor(a, requires_grad=True) for a in inputs]
    y = f(xs, lib, F_)
    y = (y * lib.tensor(weights[: y.numel()].reshape(tuple(y.shape)))).sum()
    grads = lib.autograd.grad(y, xs, create_graph=True)
    h = sum((g * lib.tensor(v)).sum() for g, v in zip(grads, vs)) + sum((x * x).sum() for x in xs)
    second = lib.autograd.grad(h, xs)
    return [g.detach().numpy() for g in grads], [s.numpy() for s in second]


@pytest.mark.parametrize("name", sorted(CASES))
def test_hessian_vector_product_matches_torch(name):
    inputs, f = CASES[name]
    weights = randn(1000, seed=7)
    vs = [randn(*a.shape, seed=11 + i) for i, a in enumerate(inputs)]
    g1, s1 = _run(gt, F, inputs, f, weights, vs)
    g2, s2 = _run(torch, TF, inputs, f, weights, vs)
    for a, b in zip(g1 + s1, g2 + s2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_order_gradient_is_the_same_with_and_without_a_graph(name):
    inputs, f = CASES[name]
    weights = randn(1000, seed=7)
    got = []
    for create in (False, True):
        xs = [gt.tensor(a, requires_grad=True) for a in inputs]
        y = f(xs, gt, F)
        y = (y * gt.tensor(weights[: y.numel()].reshape(y.shape))).sum()
        got.append([g.detach().numpy() for g in gt.autograd.grad(y, xs, create_graph=create)])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_third_derivative_of_x_to_the_fourth():
    x = gt.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (g1,) = gt.autograd.grad((x ** 4).sum(), x, create_graph=True)
    (g2,) = gt.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = gt.autograd.grad(g2.sum(), x)
    np.testing.assert_allclose(g1.detach().numpy(), 4 * x.detach().numpy() ** 3)
    np.testing.assert_allclose(g2.detach().numpy(), 12 * x.detach().numpy() ** 2)
    np.testing.assert_allclose(g3.numpy(), 24 * x.detach().numpy())


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")   # torch's own
def test_backward_create_graph_gives_grads_with_a_graph():
    a = randn(4, 3)
    res = []
    for lib in (gt, torch):
        x = lib.tensor(a, requires_grad=True)
        (x.exp() * x ** 3).sum().backward(create_graph=True)
        assert x.grad.requires_grad and x.grad.grad_fn is not None
        (h,) = lib.autograd.grad((x.grad ** 2).sum(), x)
        res.append((x.grad.detach().numpy(), h.numpy()))
    for a_, b_ in zip(*res):
        np.testing.assert_allclose(a_, b_, rtol=1e-12)


def test_backward_create_graph_accumulates_out_of_place():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    (x ** 2).sum().backward(create_graph=True)
    first = x.grad
    (x ** 3).sum().backward(create_graph=True)
    np.testing.assert_allclose(first.detach().numpy(), [2.0, 4.0])      # the first .grad is not changed
    np.testing.assert_allclose(x.grad.detach().numpy(), [2.0 + 3.0, 4.0 + 12.0])
    (h,) = gt.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(h.numpy(), [2.0 + 6.0, 2.0 + 12.0])


def test_gradient_outputs_given_as_tensors_with_a_graph():
    a, va = randn(3, 4), randn(3, 4, seed=1)
    res = []
    for lib in (gt, torch):
        x = lib.tensor(a, requires_grad=True)
        v = lib.tensor(va, requires_grad=True)
        y = x.tanh() * x
        (g,) = lib.autograd.grad(y, x, grad_outputs=v, create_graph=True)
        (g * g).sum().backward()
        res.append((g.detach().numpy(), x.grad.numpy(), v.grad.numpy()))
    for a_, b_ in zip(*res):
        np.testing.assert_allclose(a_, b_, rtol=1e-12)


def _penalty(lib, nn_mod, layers, xa):
    x = lib.tensor(xa, requires_grad=True)
    out = layers(x)
    (gx,) = lib.autograd.grad(out.sum(), x, create_graph=True)
    return ((gx.norm(dim=1) - 1) ** 2).mean() + out.mean()


def test_gradient_penalty_through_a_network_matches_torch():
    """WGAN-GP's penalty: the norm of d(critic)/d(input), trained through the critic's weights."""
    gt.manual_seed(0)
    g_net = gt.nn.Sequential(gt.nn.Linear(4, 8), gt.nn.Tanh(), gt.nn.LayerNorm(8), gt.nn.Linear(8, 6),
                             gt.nn.GELU(), gt.nn.Linear(6, 1)).double()
    t_net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.LayerNorm(8), torch.nn.Linear(8, 6),
                                torch.nn.GELU(), torch.nn.Linear(6, 1)).double()
    t_net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in g_net.state_dict().items()})
    xa = randn(5, 4, seed=3)
    _penalty(gt, gt.nn, g_net, xa).backward()
    _penalty(torch, torch.nn, t_net, xa).backward()
    for (name, p), (_, q) in zip(g_net.named_parameters(), t_net.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


def test_transformer_feed_forward_second_order_matches_torch():
    """gt's fused Linear + ReLU (TransformerBlock's feed-forward) records its gradient too."""
    gt.manual_seed(1)
    ff = gt.nn.FeedForward(6, 10).double()
    sd = {k: torch.from_numpy(np.array(v)) for k, v in ff.state_dict().items()}
    xa = _away(3, 6, seed=5)
    x = gt.tensor(xa, requires_grad=True)
    (g,) = gt.autograd.grad((ff(x) ** 2).sum(), x, create_graph=True)
    (h,) = gt.autograd.grad((g ** 2).sum(), x)
    t = torch.tensor(xa, requires_grad=True)
    b1, w1, b2, w2 = sd["fc1.bias"], sd["fc1.weight"], sd["fc2.bias"], sd["fc2.weight"]
    y = TF.linear(TF.relu(TF.linear(t, w1, b1)), w2, b2)
    (gt_,) = torch.autograd.grad((y ** 2).sum(), t, create_graph=True)
    (ht,) = torch.autograd.grad((gt_ ** 2).sum(), t)
    np.testing.assert_allclose(g.detach().numpy(), gt_.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-10)


def test_an_optimizer_in_the_backward_steps_from_the_recorded_gradient():
    res = []
    for in_backward in (False, True):
        w = gt.tensor([0.5, -1.0, 2.0], requires_grad=True)
        opt = gt.optim.SGD([w], lr=0.1, in_backward=in_backward)
        loss = (w.tanh() ** 2).sum()
        (g,) = gt.autograd.grad(loss, w, create_graph=True)
        ((g ** 2).sum() + loss).backward(create_graph=True)
        if not in_backward:
            opt.step()
        res.append(w.detach().numpy().copy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-12)
    assert not np.allclose(res[0], [0.5, -1.0, 2.0])


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_second_order_matches_torch(batch_first):
    """Self-attention of torch's MultiheadAttention layout, a padding mask, the input's gradient
    differentiated again through every weight."""
    gt.manual_seed(2)
    g_mha = gt.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    t_mha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    t_mha.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in g_mha.state_dict().items()})
    xa = randn(2, 4, 8, seed=6) if batch_first else randn(4, 2, 8, seed=6)
    pad = np.array([[False, False, True, False], [False, True, False, False]])
    res = []
    for lib, mha in ((gt, g_mha), (torch, t_mha)):
        x = lib.tensor(xa, requires_grad=True)
        # torch: its arithmetic path (need_weights), since it cannot differentiate its flash kernel twice
        out, _ = mha(x, x, x, key_padding_mask=lib.tensor(pad), need_weights=lib is torch)
        (gx,) = lib.autograd.grad((out ** 2).sum(), x, create_graph=True)
        ((gx ** 2).sum()).backward()
        res.append([gx.detach().numpy(), x.grad.numpy()] + [p.grad.numpy() for p in mha.parameters()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_transformer_block_second_order_equals_finite_differences_of_its_gradient():
    """gt's own TransformerBlock (packed attention, the fused kernel): the recorded gradient's
    derivative against central differences of the plain gradient."""
    gt.manual_seed(3)
    block = gt.nn.TransformerBlock(8, 2, 16, causal=True).double()
    xa, va = randn(2, 3, 8, seed=8), randn(2, 3, 8, seed=9)

    def grad_at(a):
        x = gt.tensor(a, requires_grad=True)
        (g,) = gt.autograd.grad((block(x) ** 2).sum(), x)
        return g.numpy()

    x = gt.tensor(xa, requires_grad=True)
    (g,) = gt.autograd.grad((block(x) ** 2).sum(), x, create_graph=True)
    (hv,) = gt.autograd.grad((g * gt.tensor(va)).sum(), x)
    eps = 1e-6
    fd = (grad_at(xa + eps * va) - grad_at(xa - eps * va)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), fd, rtol=1e-5, atol=1e-7)


def test_a_query_without_keys_gets_zero_second_order_gradients():
    block = np.array([[True, False], [False, False]])        # torch's meaning (True: attends); query 1: nothing
    q = gt.tensor(randn(2, 3), requires_grad=True)
    k, v = gt.tensor(randn(2, 3, seed=1), requires_grad=True), gt.tensor(randn(2, 3, seed=2))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=gt.tensor(block))
    (gq, gk) = gt.autograd.grad((out ** 2).sum() + (q * k).sum(), [q, k], create_graph=True)
    (h,) = gt.autograd.grad((gq ** 2).sum() + (gk ** 2).sum(), q)
    np.testing.assert_array_equal(out.detach().numpy()[1], 0.0)
    assert np.isfinite(h.numpy()).all()
    np.testing.assert_allclose(h.numpy()[1], 2 * q.detach().numpy()[1])   # only the (q * k) term is left


def test_tensor_hooks_see_and_replace_the_recorded_gradient():
    x = gt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.requires_grad) or g * 2)
    (g,) = gt.autograd.grad(y.sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 4 * x.detach().numpy())
    (h,) = gt.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [4.0, 4.0, 4.0])
    assert seen == [False]       # the seed has no graph; the hook's product is recorded


def test_the_graph_is_kept_by_default_and_freed_on_request():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    gt.autograd.grad(y, x, create_graph=True)
    y.backward()                   # kept: retain_graph defaults to create_graph
    np.testing.assert_allclose(x.grad.numpy(), (np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0]))))
    z = (x.exp() * x).sum()
    gt.autograd.grad(z, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="backward through a graph a second time"):
        z.backward()


def test_an_op_without_a_recorded_backward_is_named_before_any_change():
    x = gt.tensor(randn(1, 1, 5, 5), requires_grad=True)
    w = gt.tensor(randn(1, 2, 3, 3, seed=1), requires_grad=True)
    y = (F.conv_transpose2d(x, w, stride=2, output_padding=2, dilation=3) ** 2).sum() + (w * w).sum()
    with pytest.raises(NotImplementedError, match=r"create_graph=True: the backward of ConvTranspose .*cannot be recorded"):
        y.backward(create_graph=True)
    assert x.grad is None and w.grad is None
    y.backward()                   # the graph is intact: the plain backward still runs
    assert x.grad is not None


def test_third_derivatives_of_prod_and_cumprod_over_zeros_are_torchs():
    x0 = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0], [2.0, -1.0, 0.5]])
    got = []
    for m in (gt, torch):
        x = m.tensor(x0, requires_grad=True)
        y = (x.prod(1) ** 2).sum() + (x.cumprod(1) * x).sum() + x.prod()
        (g1,) = m.autograd.grad(y, x, create_graph=True)
        (g2,) = m.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        (g3,) = m.autograd.grad(g2.sum(), x)
        got.append([g.detach().numpy() for g in (g1, g2, g3)])
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_sinc_second_derivative_near_zero_and_far_from_it_is_torchs():
    a = np.array([0.0, 1e-3, 0.2, 0.31, 0.7, -2.5])
    res = []
    for lib in (gt, torch):
        x = lib.tensor(a, requires_grad=True)
        (g,) = lib.autograd.grad(lib.sinc(x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad(g.sum(), x)
        res.append((g.detach().numpy(), h.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-9, atol=1e-12)
    # torch's own second derivative cancels near 0; gt's series is exact there (-pi^2 / 3 at 0)
    np.testing.assert_allclose(res[0][1][2:], res[1][1][2:], rtol=1e-7)
    np.testing.assert_allclose(res[0][1][0], -np.pi ** 2 / 3, rtol=1e-12)


def test_allow_unused_and_materialize_grads_with_a_graph():
    x = gt.tensor([1.0, 2.0], requires_grad=True)
    u = gt.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        gt.autograd.grad((x * x).sum(), [x, u], create_graph=True)
    gx, gu = gt.autograd.grad((x * x).sum(), [x, u], create_graph=True, allow_unused=True)
    assert gu is None and gx.requires_grad
    gx, gu = gt.autograd.grad((x * x).sum(), [x, u], create_graph=True, materialize_grads=True)
    np.testing.assert_array_equal(gu.numpy(), [0.0])


@pytest.mark.own_mesh
def test_sharded_tensors_give_the_unsharded_second_derivative():
    a, b = randn(4, 3), randn(3, 2, seed=1)
    def f(x):
        y = x @ gt.tensor(b)
        return ((y.tanh() ** 2) + F.relu(y) * y + F.layer_norm(y, (2,)) ** 3).sum()

    ref_x = gt.tensor(a, requires_grad=True)
    (g,) = gt.autograd.grad(f(ref_x), ref_x, create_graph=True)
    (ref,) = gt.autograd.grad((g ** 2).sum(), ref_x)
    with use_mesh(2):
        x = gt.tensor(a, requires_grad=True)
        (g,) = gt.autograd.grad(f(x.shard(0)), x, create_graph=True)
        (h,) = gt.autograd.grad((g ** 2).sum(), x)
    np.testing.assert_allclose(h.numpy(), ref.numpy(), rtol=1e-10)
