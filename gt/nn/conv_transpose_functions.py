"""``F.conv_transpose1d``, ``F.conv_transpose2d`` and ``F.conv_transpose3d``, with torch's names,
arguments and checks. Inputs are (N, C_in, *size) or unbatched (C_in, *size), as torch. The op
itself is gt/ops/conv_transpose.py."""

from gt import dtypes
from gt.errors import ShapeError
from gt.nn.conv_functions import _ints, _operands
from gt.ops import conv_transpose as ops
from gt.tensor import Tensor


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-D transposed convolution: input (N, C_in, L) or (C_in, L), weight (C_in, C_out / groups, k),
    bias (C_out,) -> (N, C_out, L_out). See ``conv_transpose2d``."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution (the gradient of ``conv2d`` with respect to its input, as torch):
    input (N, C_in, H, W) or unbatched (C_in, H, W), weight (C_in, C_out / groups, kH, kW), bias
    (C_out,) or None -> (N, C_out, H_out, W_out),
    ``H_out = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.
    ``stride``, ``padding``, ``output_padding``, ``dilation``: an int or a pair; ``output_padding``
    (rows and columns added after, each smaller than the stride or the dilation) picks one of the
    input sizes a strided ``conv2d`` maps to the same output size. Note the argument order:
    ``groups`` before ``dilation``, as torch.

        >>> F.conv_transpose2d(gt.randn(8, 16, 7, 7), gt.randn(16, 3, 4, 4), stride=2, padding=1).shape
        (8, 3, 14, 14)
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """3-D transposed convolution: input (N, C_in, D, H, W) or (C_in, D, H, W), weight
    (C_in, C_out / groups, kD, kH, kW). See ``conv_transpose2d``."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation)


def _conv_transpose(fn, nd, input, weight, bias, stride, padding, output_padding, groups, dilation):
    if type(input) is not Tensor and getattr(input, "is_nested", False):    # gt.nested's: the convolution of its values
        return type(input).__gt_function__(globals()[fn], (input, weight, bias, stride, padding, output_padding,
                                                            groups, dilation), {})
    x, weight, bias = _operands(fn, nd, input, weight, bias, groups, "(in_channels, out_channels / groups, *kernel)")
    if isinstance(padding, str):
        raise ValueError(f"{fn}: padding must be an int or a tuple of {nd} ints, got {padding!r} (string padding "
                         f"is not supported for transposed convolutions, as torch)")
    stride, dilation = _ints(stride, nd, fn, "stride", 1, True), _ints(dilation, nd, fn, "dilation", 1, True)
    padding = _ints(padding, nd, fn, "padding", 0, True)
    output_padding = _ints(output_padding, nd, fn, "output_padding", 0, True)
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{fn}: output padding must be smaller than either stride or dilation, got "
                         f"output_padding={output_padding}, stride={stride}, dilation={dilation}")
    batched, given = x.ndim == nd + 2, x.shape
    if not batched:
        x = x.unsqueeze(0)
    c, o = x.shape[1], weight.shape[1] * groups
    if weight.shape[0] != c or c % groups:
        raise ShapeError(f"{fn}: weight of shape {weight.shape} expects an input with {weight.shape[0]} channels "
                         f"(divisible by groups={groups}), but the input of shape {given} has {c} channels")
    if bias is not None and bias.shape != (o,):
        raise ShapeError(f"{fn}: bias must have shape ({o},), got {bias.shape}")
    kernel = weight.shape[2:]
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op
                in zip(x.shape[2:], stride, padding, dilation, kernel, output_padding))
    if any(v < 1 for v in out):
        raise ShapeError(f"{fn}: input of shape {given} is too small for kernel {kernel}, stride={stride}, "
                         f"padding={padding}, output_padding={output_padding}, dilation={dilation}: the output "
                         f"size would be {out}")
    dtype = x.dtype
    if not (dtype.is_floating_point or dtype.is_complex or dtype is dtypes.int64):
        # torch's CPU kernels have int64 the only integer dtype (bool neither)
        raise NotImplementedError(f"\"slow_conv_transpose{3 if nd == 3 else 2}d_out_cpu\" not implemented for "
                                  f"'{dtypes.torch_type_name(dtype.name)}'")
    y = ops.ConvTranspose.apply(x, weight, bias, stride=stride, padding=padding, output_padding=output_padding,
                                dilation=dilation, groups=groups)
    return y if batched else y.squeeze(0)
