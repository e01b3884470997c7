"""Transposed convolution (gt/ops/conv_transpose.py, gt/nn/conv_transpose_functions.py,
gt/nn/conv_transpose.py), run beside torch on the same values: outputs, dtypes, shapes and every
input's gradient, in float32 and float64; the modules' parameters, initialisation and
``output_size``; the errors."""

import math

import numpy as np
import pytest

import gt
from gt import nn
from gt.nn import functional as F
from helpers import check_grad, compare_with_torch, randn, torch_or_skip, torch_twin


def _tf():
    return torch_or_skip().nn.functional


# name -> (keyword arguments, input shape, weight shape (C_in, C_out / groups, *kernel))
CASES = {
    "plain": (dict(), (2, 3, 4, 5), (3, 2, 3, 3)),
    "stride 2, padding 1, bias": (dict(stride=2, padding=1, bias=True), (2, 2, 4, 3), (2, 3, 3, 3)),
    "output_padding below stride": (dict(stride=(3, 2), padding=(1, 0), output_padding=(2, 1), bias=True),
                                    (1, 2, 3, 4), (2, 2, 3, 2)),
    "output_padding below dilation": (dict(dilation=3, output_padding=(2, 1)), (2, 2, 3, 3), (2, 2, 2, 3)),
    "groups 2": (dict(groups=2, stride=2, bias=True), (2, 4, 3, 3), (4, 3, 2, 2)),
    "depthwise, dilation pair": (dict(groups=3, dilation=(2, 1), padding=1), (1, 3, 4, 4), (3, 1, 3, 3)),
    "unbatched": (dict(stride=2, output_padding=1, bias=True), (3, 3, 4), (3, 2, 2, 2)),
    "1d": (dict(stride=2, padding=2, output_padding=1, bias=True), (2, 3, 6), (3, 4, 4)),
    "1d groups, dilation": (dict(groups=2, dilation=2, bias=True), (2, 4, 5), (4, 1, 3)),
    "1d unbatched": (dict(stride=3), (2, 4), (2, 3, 2)),
    "3d": (dict(stride=(1, 2, 1), padding=(0, 1, 1), output_padding=(0, 1, 0), bias=True),
           (1, 2, 2, 3, 3), (2, 2, 2, 3, 2)),
}
FN = {3: "conv_transpose1d", 4: "conv_transpose2d", 5: "conv_transpose3d"}


def _arrays(kwargs, xs, ws):
    arrays = [randn(*xs, seed=1), randn(*ws, seed=2)]
    if kwargs.pop("bias", False):
        arrays.append(randn(ws[1] * kwargs.get("groups", 1), seed=3))
    return arrays


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_transpose_matches_torch(name, dtype):
    kwargs, xs, ws = CASES[name]
    kwargs, fn = dict(kwargs), FN[len(ws)]
    arrays = _arrays(kwargs, xs, ws)
    tf = _tf()
    g_out, _ = compare_with_torch(lambda *a: getattr(F, fn)(*a, **kwargs), lambda *a: getattr(tf, fn)(*a, **kwargs),
                                  *arrays, dtype=dtype)
    assert g_out[0].dtype == getattr(gt, dtype)


def test_conv_transpose_positional_arguments_follow_torchs_order():
    # torch's order: stride, padding, output_padding, groups, dilation
    tf = _tf()
    compare_with_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2, 2),
                       lambda x, w, b: tf.conv_transpose2d(x, w, b, 2, 1, 1, 2, 2),
                       randn(1, 4, 3, 3, seed=4), randn(4, 1, 3, 2, seed=5), randn(2, seed=6))


def test_conv_transpose_gradients_match_finite_differences():
    check_grad(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                                                  groups=2, dilation=(1, 2)),
               randn(1, 2, 3, 2, seed=4), randn(2, 2, 2, 2, seed=5), randn(4, seed=6))


def test_conv_transpose_of_an_empty_batch_and_without_weight_gradient():
    torch = torch_or_skip()
    out = F.conv_transpose2d(gt.zeros(0, 3, 4, 4), gt.zeros(3, 2, 3, 3), stride=2)
    assert out.shape == (0, 2, 9, 9) and out.dtype == gt.float32
    x = gt.tensor(randn(1, 2, 3, seed=1), requires_grad=True)
    w = randn(2, 3, 2, seed=2)
    F.conv_transpose1d(x, gt.tensor(w), stride=2).sum().backward()
    tx = torch.tensor(randn(1, 2, 3, seed=1), requires_grad=True)
    _tf().conv_transpose1d(tx, torch.tensor(w), stride=2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.conv_transpose2d(gt.zeros(1, 2, 3, 3), gt.zeros(2, 1, 2, 2), stride=2, output_padding=2),
     ValueError, r"conv_transpose2d: output padding must be smaller than either stride or dilation, got "
                 r"output_padding=\(2, 2\), stride=\(2, 2\), dilation=\(1, 1\)"),
    (lambda: F.conv_transpose2d(gt.zeros(1, 3, 3, 3), gt.zeros(2, 1, 2, 2)),
     ValueError, r"weight of shape \(2, 1, 2, 2\) expects an input with 2 channels .* has 3 channels"),
    (lambda: F.conv_transpose2d(gt.zeros(1, 3, 3, 3), gt.zeros(3, 1, 2, 2), groups=2),
     ValueError, r"divisible by groups=2"),
    (lambda: F.conv_transpose2d(gt.zeros(1, 2, 3, 3), gt.zeros(2, 1, 2, 2), gt.zeros(2)),
     ValueError, r"bias must have shape \(1,\), got \(2,\)"),
    (lambda: F.conv_transpose2d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2, 2)[0]),
     ValueError, r"weight must be 4-D \(in_channels, out_channels / groups, \*kernel\), got shape \(1, 2, 2\)"),
    (lambda: F.conv_transpose1d(gt.zeros(2, 3, 4, 5), gt.zeros(3, 1, 2)),
     ValueError, r"conv_transpose1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input, got input of shape"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2), padding=3),
     ValueError, r"the output size would be \(-2,\)"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2), padding="same"),
     ValueError, r"string padding is not supported"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2), stride=0),
     ValueError, r"stride must be an int or a tuple of 1 ints, each at least 1, got 0"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2), groups=0),
     ValueError, r"groups must be a positive int, got 0"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3), gt.zeros(2, 1, 2, dtype=gt.float64)),
     RuntimeError, r"^expected scalar type Float but found Double$"),
    (lambda: F.conv_transpose1d(gt.zeros(1, 2, 3, dtype=gt.bool), gt.zeros(2, 1, 2, dtype=gt.bool)),
     NotImplementedError, r"\"slow_conv_transpose2d_out_cpu\" not implemented for 'Bool'"),
    (lambda: nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect"),
     ValueError, r'ConvTranspose2d: only "zeros" padding mode is supported'),
    (lambda: nn.ConvTranspose1d(4, 6, 3, groups=4),
     ValueError, r"in_channels \(4\) and out_channels \(6\) must be divisible by groups \(4\)"),
    (lambda: nn.ConvTranspose1d(2, 2, 3, stride=2, output_padding=2),
     ValueError, r"ConvTranspose1d: output padding must be smaller than either stride or dilation"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2)(gt.zeros(1, 2, 3, 3), output_size=(9, 7)),
     ValueError, r"requested an output size of \(9, 7\), but valid sizes for dim 0 range from 7 to 8"),
])
def test_conv_transpose_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("cls,kwargs,shape", [
    ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1,
                             groups=2), (2, 4, 3, 4)),
    ("ConvTranspose2d", dict(in_channels=2, out_channels=3, kernel_size=(2, 3), dilation=2, bias=False), (2, 3, 3)),
    ("ConvTranspose1d", dict(in_channels=3, out_channels=2, kernel_size=4, stride=2, padding=1), (2, 3, 5)),
])
def test_conv_transpose_modules_match_torch_with_torchs_weights(cls, kwargs, shape):
    ref, module = torch_twin(cls, kwargs)
    module.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    compare_with_torch(lambda a: module(a), lambda a: ref(a), randn(*shape, seed=3))
    for (name, p), (_, q) in zip(module.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("output_size", [(8, 7), (2, 2, 8, 7), (7, 8)])
def test_conv_transpose_module_output_size_matches_torch(output_size):
    torch = torch_or_skip()
    ref = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    module = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, dtype=gt.float64)
    module.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    compare_with_torch(lambda a: module(a, output_size=output_size), lambda a: ref(a, output_size=output_size),
                       randn(2, 2, 4, 4, seed=1))


def test_conv_transpose_module_initialisation_follows_torch():
    gt.manual_seed(0)
    conv = nn.ConvTranspose2d(4, 8, kernel_size=(3, 2), groups=2)
    assert conv.weight.shape == (4, 4, 3, 2) and conv.bias.shape == (8,) and conv.weight.dtype == gt.float32
    bound = 1 / math.sqrt(4 * 3 * 2)      # torch's fan_in of this weight: out_channels / groups * kernel elements
    for p in (conv.weight, conv.bias):
        values = p.numpy()
        assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 3
    assert conv.stride == (1, 1) and conv.padding == (0, 0) and conv.output_padding == (0, 0)
    assert conv.dilation == (1, 1) and nn.ConvTranspose1d(2, 3, 3, bias=False).bias is None
    assert nn.ConvTranspose3d(2, 3, 2)(gt.zeros(2, 3, 3, 3)).shape == (3, 4, 4, 4)
