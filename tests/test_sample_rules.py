"""The per-sample ops of gt/tensor/sample_rules.py on a batch sharded over 2 and 4 virtual devices:
the same outputs and input and weight gradients as on one device (float64 to rounding), the
output still cut along the batch, each op under test run by its rule (never gathered), and where
the forward holds only ruled ops, every op run once on every device (none gathered to device 0)
and no all-gather; layouts the rules do not take are gathered and still right. Then a small CNN
(transposed convolution, pad, interpolate, pools, batch norm) trained three SGD steps sharded ==
unsharded.
"""

import contextlib

import numpy as np
import pytest

import gt
import gt.debug
from gt import nn
from gt.nn import functional as F
from gt.sharding.collectives import count_collectives
from gt.sharding.mesh import use_mesh
from gt.sharding.placement import Shard
from gt.tensor import rules
from helpers import positive, randn

pytestmark = pytest.mark.own_mesh     # picks its meshes itself (skipped in the GT_DEVICES passes)

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def _ops_per_device():
    stats = gt.debug.get_worker_stats()
    return [v["operations"]["total"] for k, v in stats.items() if k.startswith("device")]


@contextlib.contextmanager
def _plans():
    """Every op dispatched on sharded tensors inside: (name, whether a rule ran it per device)."""
    seen, plan_for = [], rules.plan_for

    def spy(cls, args, kwargs):
        plan = plan_for(cls, args, kwargs)
        seen.append((cls.__name__, plan is not None))
        return plan
    rules.plan_for = spy
    try:
        yield seen
    finally:
        rules.plan_for = plan_for


def _run(fn, x, params, n, dtype="float64", order=1):
    """``fn(x, *params)`` with x cut along its batch over ``n`` devices (n=1: not cut), the
    parameters replicated leaves. ``order=2``: the loss is that of the gradient in x (for an
    upstream gradient cut along the batch, ``create_graph``), so the ops of the recorded backward
    run too. Returns the output
    placement, the forward's op count per device, the collectives, the dispatched ops, and the
    values and gradients."""
    with use_mesh(n):
        xs = gt.tensor(x.astype(dtype))
        xs = (xs.shard(0) if n > 1 else xs).requires_grad_(True)
        ps = [gt.tensor(p.astype(dtype), requires_grad=True) for p in params]
        gt.debug.reset_worker_stats()
        with count_collectives() as counts, _plans() as seen:
            y = fn(xs, *ps)
            ops = _ops_per_device()
            if order == 2:   # an upstream gradient cut along the batch, as y, and differentiated too
                u = gt.tensor(randn(*y.shape, seed=99).astype(dtype))
                u = (u.shard(0) if n > 1 else u).requires_grad_(True)
                ps.append(u)
                (y,) = gt.autograd.grad(y, [xs], grad_outputs=[u], create_graph=True)
            (y * y).sum().backward()
        values = [None if t is None else t.numpy() for t in [y, xs.grad] + [p.grad for p in ps]]
        return y.placement, ops, counts, seen, values


def _check(fn, x, params, ruled, dtype="float64", order=1, exact_counts=True, whole=True, sharded=True):
    """Sharded over 2 and 4 devices == unsharded, output cut along the batch, and the ops named
    in ``ruled`` run per device, never gathered. ``whole``: no op at all gathered, no all-gather."""
    _, ops1, _, _, want = _run(fn, x, params, 1, dtype, order)
    for n in (2, 4):
        placement, ops, counts, seen, got = _run(fn, x, params, n, dtype, order)
        assert placement == Shard(0) or not sharded, (n, placement)
        assert set(ruled) <= {name for name, _ in seen}, (ruled, seen)
        assert all(local for name, local in seen if name in ruled), seen
        if whole:   # (autograd.grad reads a given upstream gradient whole once, to check it: a join of views here)
            assert all(local for _, local in seen) and counts["all_gather"] == (order == 2), (seen, dict(counts))
        if exact_counts:    # every op of the forward ran once per device: none gathered to device 0
            assert ops == ops1 * n, (n, ops, ops1)
        for a, e in zip(got, want):
            assert (a is None) == (e is None)
            if a is not None:
                assert a.dtype == e.dtype
                np.testing.assert_allclose(a, e, **TOL[dtype])


# ---- one op each -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv_transpose(dtype):
    _check(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
           randn(5, 4, 4, 3, seed=1), [randn(4, 3, 3, 3, seed=2), randn(3, seed=3)], ["ConvTranspose"], dtype)


def test_conv_transpose_grouped_1d_and_a_batch_shorter_than_the_mesh():
    _check(lambda x, w: F.conv_transpose1d(x, w, stride=3, groups=2, dilation=2),
           randn(3, 4, 5, seed=4), [randn(4, 2, 2, seed=5)], ["ConvTranspose"])


def test_unfold_and_fold():
    _check(lambda x: F.unfold(x, 2, padding=1, stride=2), randn(5, 3, 5, 4, seed=6), [], ["Unfold"])
    _check(lambda x: F.fold(x, (4, 5), 2, dilation=(1, 2)), randn(5, 3 * 4, 3 * 3, seed=7), [], ["Fold"])
    # the recorded gradients: each the other op
    _check(lambda x: F.unfold(x, 2, padding=1, stride=2), randn(5, 3, 5, 4, seed=6), [], ["Unfold", "Fold"], order=2)
    _check(lambda x: F.fold(x, (4, 5), 2), randn(5, 3 * 4, 3 * 4, seed=7), [], ["Fold", "Unfold"], order=2)


@pytest.mark.parametrize("p", [2.0, 3.0])
def test_lp_pool_and_the_rounding_ops(p):
    # an LP pool is composed (|x| ** p, an average pool, the sign of the window sums, a root):
    # the sign, a rounding op, is elementwise; odd p gives negative window sums a zero
    _check(lambda x: F.lp_pool2d(x, p, 2, stride=1), randn(5, 2, 3, 4, seed=34), [], ["AvgPool", "Rounding"],
           exact_counts=False)
    _check(lambda x: x.floor() + x.ceil() * x.trunc() + x.round() + x.sign() * x, randn(5, 3, seed=35), [],
           ["Rounding"])


def test_max_pool_with_indices_and_adaptive_max_pool():
    def pools(x):
        y, idx = F.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
        assert idx.placement == x.placement and idx.dtype == gt.int64      # the indices stay cut
        return F.adaptive_max_pool2d(y, (2, 3))
    # the values are read back at the indices by the tensor layer's gather (an index array per
    # axis), which has no local rule (gathered): only the windows' argmax is this module's
    _check(pools, randn(5, 2, 5, 6, seed=8), [], ["WindowArgmax"], exact_counts=False, whole=False, sharded=False)


def _replicated(a):
    """A tensor whole on every device (a module's buffer), made without a collective."""
    return gt.tensor(a, requires_grad=True).detach()


def test_batch_norm_in_eval_mode_is_per_sample():
    mean, var = randn(3, seed=10), positive(3, seed=11)
    for order in (1, 2):
        _check(lambda x, w, b: F.batch_norm(x, _replicated(mean), _replicated(var), w, b, training=False),
               randn(5, 3, 4, seed=9), [randn(3, seed=12), randn(3, seed=13)], ["BatchNorm"], order=order)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batch_norm_in_training_takes_the_statistics_of_the_whole_batch(dtype):
    # torch's SyncBatchNorm: the mean and variance span every device's block (all-reduced, not gathered)
    _check(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
           randn(5, 3, 2, 3, seed=14), [randn(3, seed=15), randn(3, seed=16)], ["BatchNorm"], dtype,
           exact_counts=False)
    _check(lambda x: F.batch_norm(x, None, None, training=True), randn(6, 2, 3, seed=17), [], ["BatchNorm"],
           dtype, exact_counts=False)
    # a batch shorter than the mesh: a device with no samples adds nothing to the sums
    _check(lambda x: F.batch_norm(x, None, None, training=True), randn(3, 2, 3, seed=33), [], ["BatchNorm"],
           dtype, exact_counts=False)


def test_batch_norm_running_statistics_match_when_sharded():
    x = randn(5, 3, 4, seed=18)
    got = []
    for n in (1, 4):
        with use_mesh(n):
            rm, rv = gt.zeros(3, dtype=gt.float64), gt.ones(3, dtype=gt.float64)
            xs = gt.tensor(x)
            F.batch_norm(xs.shard(0) if n > 1 else xs, rm, rv, training=True, momentum=0.3)
            got.append((rm.numpy(), rv.numpy()))
    for a, e in zip(got[1], got[0]):
        np.testing.assert_allclose(a, e, **TOL["float64"])


# ---- the ops create_graph records ---------------------------------------------------------------
def test_conv_second_order_gradients_run_per_sample():
    # ConvInputGrad and ConvWeightGrad (the latter partial: a sum over the batch)
    _check(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), randn(5, 2, 5, 5, seed=19),
           [randn(3, 2, 3, 3, seed=20), randn(3, seed=21)], ["Conv", "ConvInputGrad", "ConvWeightGrad"], order=2)


def test_conv_transpose_second_order_gradients_run_per_sample():
    _check(lambda x, w: F.conv_transpose2d(x, w, stride=2), randn(5, 2, 3, 3, seed=22), [randn(2, 3, 2, 2, seed=23)],
           ["ConvTranspose", "Conv", "ConvWeightGrad"], order=2)


def test_pad_and_avg_pool_second_order_gradients_run_per_sample():
    def fn(x):
        return F.avg_pool2d(F.pad(x, (1, 2, 0, 1), mode="reflect"), 2, padding=1)
    _check(fn, randn(5, 2, 4, 4, seed=24), [], ["Pad", "PadGrad", "AvgPool", "PoolRoute"], order=2)
    _check(lambda x: F.pad(x, (2, -1), value=0.5), randn(5, 3, 4, seed=25), [], ["Pad", "PadGrad"], order=2)


# ---- layouts no rule takes: gathered, and still right --------------------------------------------
def _gathered(fn, x, axis, order=1):
    with use_mesh(1):
        xs = gt.tensor(x).requires_grad_(True)
        y = fn(xs)
        (gx,) = gt.autograd.grad((y * y).sum(), [xs], create_graph=order == 2)
        want = [y.numpy(), gx.numpy()]
    with use_mesh(4):
        xs = gt.tensor(x).shard(axis).requires_grad_(True)
        with count_collectives() as counts:
            y = fn(xs)
            (gx,) = gt.autograd.grad((y * y).sum(), [xs], create_graph=order == 2)
        got = [y.numpy(), gx.numpy()]
    assert counts["all_gather"] >= 1
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, **TOL["float64"])


@pytest.mark.parametrize("case", ["channels", "pad_batch", "pad_channels", "max_pool_route", "bn_channels"])
def test_layouts_without_a_rule_are_gathered(case):
    w = randn(4, 3, 2, 2, seed=26)    # made a tensor inside each mesh (on a GPU machine the default is the GPU)
    if case == "channels":         # a shard of the channels: the transposed convolution mixes them
        _gathered(lambda x: F.conv_transpose2d(x, gt.tensor(w)), randn(2, 4, 3, 3, seed=27), 1)
    elif case == "pad_batch":      # padding the batch axis itself
        _gathered(lambda x: F.pad(x, (0, 0, 1, 1), mode="replicate") ** 2, randn(5, 3, seed=28), 0, order=2)
    elif case == "pad_channels":   # Pad runs per device on a channel shard; its recorded gradient here is gathered
        _gathered(lambda x: F.pad(x, (2, -1), value=0.5), randn(3, 6, 4, seed=32), 1, order=2)
    elif case == "max_pool_route":  # the max pool keeps where the whole batch's maxima lie
        _gathered(lambda x: F.max_pool2d(x, 2) ** 2, randn(5, 2, 4, 4, seed=29), 0, order=2)
    else:                          # a shard of the channels: batch norm's rule takes a batch shard only
        _gathered(lambda x: F.batch_norm(x, None, None, training=True), randn(4, 4, 3, seed=30), 1)


# ---- a small CNN, three SGD steps ------------------------------------------------------------------
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):                                           # (N, 2, 4, 4)
        h = F.relu(self.bn(self.up(x)))                             # (N, 3, 8, 8)
        h = F.pad(h, (1, 1, 1, 1), mode="reflect")                  # (N, 3, 10, 10)
        h = F.interpolate(h, scale_factor=0.5, mode="bilinear")     # (N, 3, 5, 5)
        h = F.max_pool2d(F.relu(self.conv(h)), 2, ceil_mode=True)   # (N, 4, 2, 2)
        h = F.avg_pool2d(h, 1)
        return self.head(h.reshape(h.shape[0], -1))                 # (N, 3)


def _train(n, x, y, copies=False):
    with use_mesh(n, copies=copies):
        gt.manual_seed(0)
        net = _Net().to(gt.float64)
        opt = gt.optim.SGD(net.parameters(), lr=0.1)
        placements = []
        with count_collectives() as counts, _plans() as seen:
            for _ in range(3):
                xs = gt.tensor(x)
                logits = net(xs.shard(0) if n > 1 else xs)
                placements.append(logits.placement)
                loss = F.cross_entropy(logits, gt.tensor(y).shard(0) if n > 1 else gt.tensor(y))
                opt.zero_grad()
                loss.backward()
                opt.step()
        return placements, counts, seen, {k: np.asarray(v) for k, v in net.state_dict().items()}


@pytest.mark.parametrize("copies", [False, True], ids=["shared", "copies"])
def test_a_small_cnn_trains_the_same_sharded(copies):
    # copies: devices that share no memory (the paths data takes between GPUs)
    x, y = randn(6, 2, 4, 4, seed=31), np.array([0, 2, 1, 2, 0, 1])
    *_, want = _train(1, x, y)
    for n in (4,) if copies else (2, 4):
        placements, counts, seen, got = _train(n, x, y, copies)
        assert placements == [Shard(0)] * 3
        gathered = [name for name, local in seen if not local]
        assert not gathered and {"ConvTranspose", "BatchNorm", "Pad", "GetItem", "MaxPool", "AvgPool"} <= {
            name for name, _ in seen}, gathered
        # cross_entropy checks its targets' range (a max and a min over the sharded targets): only
        # each device's one-value result is gathered, twice a step; no activation is
        assert counts.elements_moved["all_gather"] == 2 * 3 * n, dict(counts.elements_moved)
        for name, value in got.items():
            np.testing.assert_allclose(value, want[name], err_msg=name, **TOL["float64"])
