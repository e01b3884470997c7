"""Group, instance, RMS and local response norm (gt/nn/norm_functions.py, gt/nn/norms.py) and
BatchNorm3d beside torch: outputs and gradients (input, weight, bias) in float32 and float64, train
and eval, running statistics after a few steps, state dicts both ways, repr, and the errors."""

import warnings

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip

DTYPES = ["float32", "float64"]


def _tf():
    return torch_or_skip().nn.functional


# ---- functions ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", [((2, 4, 3), 2), ((2, 6, 2, 2), 3), ((2, 3), 1)], ids=str)
def test_group_norm_matches_torch(shape, groups, dtype):
    tf, c = _tf(), shape[1]
    compare_with_torch(lambda x, w, b: F.group_norm(x, groups, w, b, eps=1e-3),
                       lambda x, w, b: tf.group_norm(x, groups, w, b, eps=1e-3),
                       randn(*shape, seed=1, scale=2.0) + 1, randn(c, seed=2), randn(c, seed=3), dtype=dtype)
    compare_with_torch(lambda x: F.group_norm(x, groups), lambda x: tf.group_norm(x, groups),
                       randn(*shape, seed=4), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 2, 2, 3), (2, 2, 2, 1, 3)], ids=str)
def test_instance_norm_matches_torch_and_moves_the_running_stats(shape, dtype):
    torch, tf, c = torch_or_skip(), _tf(), shape[1]
    stats = [randn(c, seed=4), np.random.default_rng(5).uniform(0.5, 2.0, c)]
    running = {"gt": [gt.tensor(s, dtype=getattr(gt, dtype)) for s in stats],
               "torch": [torch.tensor(s, dtype=getattr(torch, dtype)) for s in stats]}
    compare_with_torch(lambda x, w, b: F.instance_norm(x, *running["gt"], w, b, momentum=0.3),
                       lambda x, w, b: tf.instance_norm(x, *running["torch"], w, b, momentum=0.3),
                       randn(*shape, seed=1, scale=2.0) + 1, randn(c, seed=2), randn(c, seed=3), dtype=dtype)
    for mine, theirs in zip(running["gt"], running["torch"]):
        assert mine.dtype == getattr(gt, dtype)
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)
    compare_with_torch(lambda x, w: F.instance_norm(x, *running["gt"], w, use_input_stats=False),
                       lambda x, w: tf.instance_norm(x, *running["torch"], w, use_input_stats=False),
                       randn(*shape, seed=6), randn(c, seed=7), dtype=dtype)
    compare_with_torch(F.instance_norm, tf.instance_norm, randn(*shape, seed=8), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,normalized", [((5,), 5), ((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((0, 3), [3])],
                         ids=str)
def test_rms_norm_matches_torch(shape, normalized, dtype):
    tf = _tf()
    wshape = (normalized,) if isinstance(normalized, int) else tuple(normalized)
    # torch's function wants a list (its module takes an int too); gt's takes both
    compare_with_torch(lambda x, w: F.rms_norm(x, normalized, w), lambda x, w: tf.rms_norm(x, wshape, w),
                       randn(*shape, seed=1), randn(*wshape, seed=2), dtype=dtype)
    compare_with_torch(lambda x: F.rms_norm(x, normalized, eps=0.5), lambda x: tf.rms_norm(x, wshape, eps=0.5),
                       randn(*shape, seed=3) * 0.1, dtype=dtype)


def test_rms_norm_default_eps_is_the_dtypes_machine_epsilon():
    torch, tf = torch_or_skip(), _tf()
    for dtype in DTYPES:                         # all zeros: the output is 0 and only eps shows, in the grad
        compare_with_torch(lambda x: F.rms_norm(x, 3), lambda x: tf.rms_norm(x, [3]), np.zeros((2, 3)), dtype=dtype)
    assert torch.finfo(torch.float16).eps == 0.0009765625 and torch.finfo(torch.bfloat16).eps == 0.0078125


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [((2, 5, 3), 3), ((2, 4, 3, 2), 2), ((1, 3, 2, 2, 2), 5),
                                        ((2, 3, 1, 2, 1, 2), 4)], ids=str)
def test_local_response_norm_matches_torch(shape, size, dtype):
    tf = _tf()
    compare_with_torch(lambda x: F.local_response_norm(x, size), lambda x: tf.local_response_norm(x, size),
                       randn(*shape, seed=1), dtype=dtype)
    compare_with_torch(lambda x: F.local_response_norm(x, size, alpha=0.5, beta=0.6, k=2.0),
                       lambda x: tf.local_response_norm(x, size, alpha=0.5, beta=0.6, k=2.0),
                       randn(*shape, seed=2, scale=3.0), dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batch_norm_takes_5d_input_as_torch(training, dtype):
    torch, tf = torch_or_skip(), _tf()
    stats = [randn(3, seed=4), np.random.default_rng(5).uniform(0.5, 2.0, 3)]
    running = {"gt": [gt.tensor(s, dtype=getattr(gt, dtype)) for s in stats],
               "torch": [torch.tensor(s, dtype=getattr(torch, dtype)) for s in stats]}
    compare_with_torch(lambda x, w, b: F.batch_norm(x, *running["gt"], w, b, training=training),
                       lambda x, w, b: tf.batch_norm(x, *running["torch"], w, b, training=training),
                       randn(2, 3, 2, 1, 3, seed=1) + 1, randn(3, seed=2), randn(3, seed=3), dtype=dtype)
    for mine, theirs in zip(running["gt"], running["torch"]):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12)


def test_gradients_match_finite_differences():
    check_grad(lambda x, w, b: F.group_norm(x, 2, w, b), randn(2, 4, 3, seed=1), randn(4, seed=2), randn(4, seed=3))
    check_grad(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), randn(2, 2, 3, seed=4), randn(2, seed=5),
               randn(2, seed=6))
    check_grad(lambda x, w: F.rms_norm(x, (2, 3), w), randn(2, 2, 3, seed=7), randn(2, 3, seed=8))
    check_grad(lambda x: F.local_response_norm(x, 3, alpha=0.5, k=1.5), randn(2, 4, 3, seed=9))


@pytest.mark.parametrize("name,shape,args", [("group_norm", (0, 4, 3), (2,)), ("group_norm", (2, 4, 0), (2,)),
                                             ("instance_norm", (0, 3, 4), ()),
                                             ("local_response_norm", (2, 0, 3), (2,))], ids=str)
def test_empty_inputs_give_torchs_empty_results(name, shape, args):
    torch = torch_or_skip()
    ours, theirs = getattr(F, name)(gt.zeros(*shape), *args), getattr(_tf(), name)(torch.zeros(*shape), *args)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == gt.float32


# ---- modules --------------------------------------------------------------------------------
def _pair(cls, *args, **kwargs):
    torch = torch_or_skip()
    return getattr(nn, cls)(*args, **kwargs, dtype=gt.float64), getattr(torch.nn, cls)(*args, **kwargs).double()


def _randomise(ref, seed):
    torch = torch_or_skip()
    with torch.no_grad():
        for k, p in enumerate(ref.parameters()):
            p.copy_(torch.tensor(randn(*p.shape, seed=seed + k)))


def _step_both(module, ref, x):
    """One forward/backward of each on x; the outputs, input and parameter gradients must agree."""
    compare_with_torch(lambda a: module(a), lambda a: ref(a), x)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(getattr(module, name).grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12)
        p.grad, getattr(module, name).grad = None, None


@pytest.mark.parametrize("cls,args,shape", [("GroupNorm", (2, 4), (3, 4, 5)), ("GroupNorm", (3, 3), (2, 3, 2, 2)),
                                            ("RMSNorm", ((2, 3),), (4, 2, 3)), ("RMSNorm", (3,), (3,)),
                                            ("LocalResponseNorm", (3,), (2, 4, 2, 2))], ids=str)
def test_stateless_modules_load_torchs_state_dict_and_agree(cls, args, shape):
    module, ref = (_pair(cls, *args) if cls != "LocalResponseNorm" else
                   (getattr(nn, cls)(*args), getattr(torch_or_skip().nn, cls)(*args)))
    _randomise(ref, seed=1)
    module.load_state_dict(ref.state_dict(), strict=True)
    _step_both(module, ref, randn(*shape, seed=2))
    module.eval(), ref.eval()
    _step_both(module, ref, randn(*shape, seed=3))
    assert repr(module).split("  #")[0] == repr(ref)


def test_group_norm_without_affine_takes_any_channel_count_as_torch():
    module, ref = _pair("GroupNorm", 2, 4, affine=False)
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(2, 6, 3, seed=1))


@pytest.mark.parametrize("cls,shape,momentum", [("InstanceNorm1d", (2, 3, 4), 0.1), ("InstanceNorm1d", (3, 5), None),
                                                ("InstanceNorm2d", (2, 3, 2, 3), None),
                                                ("InstanceNorm3d", (2, 3, 2, 1, 2), 0.1),
                                                ("InstanceNorm3d", (3, 2, 2, 2), 0.3),
                                                ("BatchNorm3d", (2, 3, 2, 1, 2), 0.1),
                                                ("BatchNorm3d", (3, 3, 1, 2, 1), None)], ids=str)
def test_running_statistics_follow_torch_in_train_and_eval(cls, shape, momentum):
    module, ref = _pair(cls, 3, momentum=momentum, affine=True, track_running_stats=True)
    _randomise(ref, seed=1)
    module.load_state_dict(ref.state_dict(), strict=True)
    for step in range(2):
        _step_both(module, ref, randn(*shape, seed=10 + step, scale=step + 1.0) + step)
    want = ref.state_dict()
    assert list(module.state_dict()) == list(want)
    for name, value in module.state_dict().items():
        np.testing.assert_allclose(value, want[name].numpy(), rtol=1e-12, err_msg=name)
    module.eval(), ref.eval()
    _step_both(module, ref, randn(*shape, seed=20))


@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (2, 3, 4)), ("InstanceNorm2d", (2, 5, 2, 3))], ids=str)
def test_instance_norm_defaults_use_the_samples_statistics_in_eval_too(cls, shape):
    module, ref = _pair(cls, 3)
    assert module.weight is None and module.running_mean is None and list(module.state_dict()) == []
    module.eval(), ref.eval()
    if shape[1] == 3:
        compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=1))
        return
    with pytest.warns(UserWarning, match=r"size at dim=1 \(5\) does not match num_features \(3\)"):
        with warnings.catch_warnings():       # torch warns too: only gt's warning is checked
            warnings.filterwarnings("ignore", module="torch")
            compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=1))


@pytest.mark.parametrize("name,args,weight", [("group_norm", (2,), 4), ("instance_norm", (), None),
                                             ("rms_norm", ([3],), 3), ("local_response_norm", (3,), None)])
def test_batches_split_over_the_devices_give_torchs_answers(name, args, weight):
    """A batch made by ``gt.from_numpy`` is split over the devices in the GT_DEVICES passes: output,
    input and weight gradients as torch's."""
    torch = torch_or_skip()
    arr, up = randn(4, 4, 3, seed=1), randn(4, 4, 3, seed=2)
    x, t = gt.from_numpy(arr).requires_grad_(), torch.tensor(arr, requires_grad=True)
    w = None if weight is None else gt.tensor(randn(weight, seed=3), dtype=gt.float64, requires_grad=True)
    tw = None if weight is None else torch.tensor(randn(weight, seed=3), requires_grad=True)
    out = getattr(F, name)(x, *args, **({} if w is None else {"weight": w}))
    ref = getattr(_tf(), name)(t, *args, **({} if tw is None else {"weight": tw}))
    (out * gt.tensor(up)).sum().backward(), (ref * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
    if w is not None:
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_running_statistics_of_a_split_batch_are_torchs():
    module, ref = _pair("InstanceNorm1d", 4, affine=True, track_running_stats=True)
    _randomise(ref, seed=3)
    module.load_state_dict(ref.state_dict(), strict=True)
    for step in range(2):
        arr = randn(4, 4, 3, seed=4 + step) + step
        out, want = module(gt.from_numpy(arr)), ref(torch_or_skip().tensor(arr))
        np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(module.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(module.running_var.numpy(), ref.running_var.numpy(), rtol=1e-12)


def test_state_dicts_move_from_gt_to_torch():
    torch = torch_or_skip()
    module = nn.InstanceNorm2d(2, affine=True, track_running_stats=True, dtype=gt.float64)
    module(gt.tensor(randn(2, 2, 3, 3, seed=1)))
    ref = torch.nn.InstanceNorm2d(2, affine=True, track_running_stats=True).double()
    ref.load_state_dict({k: torch.tensor(v) for k, v in module.state_dict().items()}, strict=True)
    np.testing.assert_allclose(ref.running_var.numpy(), module.running_var.numpy())
    group, ref = nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)
    ref.load_state_dict({k: torch.tensor(v) for k, v in group.state_dict().items()}, strict=True)
    rms = nn.RMSNorm([2, 3], eps=1e-3)
    torch.nn.RMSNorm([2, 3], eps=1e-3).load_state_dict({k: torch.tensor(v) for k, v in rms.state_dict().items()})


@pytest.mark.parametrize("make", [
    lambda m: m.GroupNorm(2, 4), lambda m: m.GroupNorm(1, 3, eps=1e-3, affine=False),
    lambda m: m.GroupNorm(2, 2, bias=False), lambda m: m.InstanceNorm1d(3),
    lambda m: m.InstanceNorm2d(4, momentum=None, affine=True), lambda m: m.InstanceNorm3d(2, track_running_stats=True),
    lambda m: m.RMSNorm(4), lambda m: m.RMSNorm([2, 3], eps=1e-3, elementwise_affine=False),
    lambda m: m.LocalResponseNorm(3), lambda m: m.LocalResponseNorm(2, alpha=0.1, beta=0.5, k=2.0),
    lambda m: m.BatchNorm3d(3, momentum=None)])
def test_defaults_parameters_and_repr_follow_torch(make):
    torch = torch_or_skip()
    module, ref = make(nn), make(torch.nn)
    assert repr(module).split("  #")[0] == repr(ref)
    assert [(k, tuple(v.shape), str(v.dtype)[len("torch."):]) for k, v in ref.state_dict().items()] == \
           [(k, v.shape, str(v.dtype)) for k, v in module.state_dict().items()]
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(module.state_dict()[k], v.numpy(), err_msg=k)


# ---- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.group_norm(gt.zeros(3), 1), ValueError, r"at least 2 dims, got shape \(3,\)"),
    (lambda: F.group_norm(gt.zeros(2, 5, 3), 2), ValueError,
     r"channels \(dim 1 of input of shape \(2, 5, 3\)\) to be divisible by num_groups.*got num_groups=2"),
    (lambda: F.group_norm(gt.zeros(2, 4, 3), 2, gt.ones(3)), ValueError,
     r"weight should have shape \(4,\).*got \(3,\)"),
    (lambda: F.group_norm(gt.tensor([[1, 2]]), 1), TypeError, r"expected a floating point input, got gt.int64"),
    (lambda: nn.GroupNorm(3, 4), ValueError, r"num_channels \(4\) must be divisible by num_groups \(3\)"),
    (lambda: nn.GroupNorm(0, 4), ValueError, r"num_groups must be a positive int, got 0"),
    (lambda: nn.GroupNorm(2, 4)(gt.zeros(2, 6, 3)), ValueError,
     r"weight should have shape \(6,\) \(the channels, dim 1 of input of shape \(2, 6, 3\)\), got \(4,\)"),
    (lambda: F.instance_norm(gt.zeros(2, 3)), ValueError,
     r"Expected more than 1 spatial element when training, got input size \(2, 3\)"),
    (lambda: F.instance_norm(gt.zeros(2, 3, 4), use_input_stats=False), ValueError,
     r"running_mean and running_var must be given when use_input_stats is False"),
    (lambda: F.instance_norm(gt.zeros(2, 3, 4), gt.zeros(2)), ValueError, r"running_mean should have shape \(3,\)"),
    (lambda: nn.InstanceNorm1d(3)(gt.zeros(2, 3, 4, 5)), ValueError, r"expected 2D or 3D input \(got 4D input"),
    (lambda: nn.InstanceNorm2d(3)(gt.zeros(2, 3)), ValueError, r"expected 3D or 4D input \(got 2D input"),
    (lambda: nn.InstanceNorm3d(3, affine=True)(gt.zeros(2, 4, 2, 2, 2)), ValueError,
     r"expected input's size at dim=1 to match num_features \(3\), but got: 4"),
    (lambda: nn.InstanceNorm1d(0), ValueError, r"num_features must be a positive int, got 0"),
    (lambda: F.rms_norm(gt.zeros(2, 3), [4]), ValueError, r"trailing shape \(4,\).*got input of shape \(2, 3\)"),
    (lambda: F.rms_norm(gt.zeros(2, 3), [3], gt.ones(2)), ValueError, r"weight must have shape \(3,\).*got \(2,\)"),
    (lambda: F.rms_norm(gt.tensor([[1, 2]]), [2]), TypeError, r"expected a floating point input, got gt.int64"),
    (lambda: nn.RMSNorm([]), ValueError, r"normalized_shape must be a positive int or a non-empty tuple"),
    (lambda: nn.RMSNorm(3, eps=-1.0), ValueError, r"eps must be a non-negative number or None, got -1.0"),
    (lambda: F.local_response_norm(gt.zeros(2, 3), 2), ValueError,
     r"expected 3D or higher dimensionality input \(got 2 dimensions"),
    (lambda: F.local_response_norm(gt.zeros(2, 3, 4), 0), ValueError, r"size must be a positive int.*got 0"),
    (lambda: nn.LocalResponseNorm(2.5), ValueError, r"size must be a positive int, got 2.5"),
    (lambda: nn.BatchNorm3d(3)(gt.zeros(2, 3, 4, 5)), ValueError, r"expected 5D input \(got 4D input"),
])
def test_errors_name_the_problem(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
