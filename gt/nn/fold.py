"""Rearranging images, with torch's names and checks: ``F.unfold`` / ``F.fold`` (im2col and its
adjoint, gt/ops/fold.py) and ``F.pixel_shuffle`` / ``F.pixel_unshuffle`` (reshapes and a
permute, so gradients come from those ops)."""

from gt.nn.conv_functions import _ints
from gt.nn.inputs import as_tensor as _tensor
from gt.ops import fold as fold_ops


def _geometry(fn, kernel_size, dilation, padding, stride):
    kernel = _ints(kernel_size, 2, fn, "kernel_size", 1)
    dilation = _ints(dilation, 2, fn, "dilation", 1)
    padding = _ints(padding, 2, fn, "padding", 0)
    stride = _ints(stride, 2, fn, "stride", 1)
    return kernel, dilation, padding, stride


def _blocks(fn, size, kernel, dilation, padding, stride):
    """The number of sliding windows along each spatial axis (torch's formula); ValueError where
    the padded input is smaller than one dilated window."""
    geometry = zip(size, kernel, dilation, padding, stride)
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, d, p, s in geometry)
    if any(o < 1 for o in out):
        raise ValueError(f"{fn}: spatial size {size} with padding={padding} is too small for kernel_size={kernel} "
                         f"with dilation={dilation}: the number of sliding blocks would be {out}")
    return out


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding local blocks as columns (im2col): input (N, C, H, W) or unbatched (C, H, W) ->
    (N, C * kH * kW, L) (or (C * kH * kW, L)), L the number of blocks, ``L = oH * oW`` with
    ``oH = (H + 2 * padding - dilation * (kH - 1) - 1) // stride + 1``. Rows run over
    (channel, kernel row, kernel column), columns over the blocks row-major, as torch's.
    ``kernel_size``, ``dilation``, ``padding``, ``stride``: an int or a pair.

        >>> F.unfold(gt.randn(2, 3, 5, 5), kernel_size=3).shape
        (2, 27, 9)
    """
    x = _tensor(input, "unfold")
    if x.ndim not in (3, 4):
        raise ValueError(f"unfold: expected a 3-D (unbatched) or 4-D (batched) input (N, C, H, W), "
                         f"got input of shape {x.shape}")
    kernel, dilation, padding, stride = _geometry("unfold", kernel_size, dilation, padding, stride)
    batched = x if x.ndim == 4 else x.unsqueeze(0)
    out = _blocks("unfold", batched.shape[2:], kernel, dilation, padding, stride)
    cols = fold_ops.Unfold.apply(batched, kernel=kernel, stride=stride, padding=tuple((p, p) for p in padding),
                                 dilation=dilation, out=out)
    return cols if x.ndim == 4 else cols.squeeze(0)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Columns back into an image (col2im, the adjoint of ``unfold``): input (N, C * kH * kW, L)
    or unbatched (C * kH * kW, L) -> (N, C, *output_size) (or (C, *output_size)); values of
    overlapping blocks add up, as torch's. ``L`` must be the number of blocks ``unfold`` would
    make of an ``output_size`` image.

        >>> F.fold(gt.randn(2, 27, 9), output_size=(5, 5), kernel_size=3).shape
        (2, 3, 5, 5)
    """
    x = _tensor(input, "fold")
    if x.ndim not in (2, 3):
        raise ValueError(f"fold: expected a 2-D (unbatched) or 3-D (batched) input (N, C * prod(kernel_size), L), "
                         f"got input of shape {x.shape}")
    size = _ints(output_size, 2, "fold", "output_size", 1)
    kernel, dilation, padding, stride = _geometry("fold", kernel_size, dilation, padding, stride)
    batched = x if x.ndim == 3 else x.unsqueeze(0)
    k = kernel[0] * kernel[1]
    if batched.shape[1] % k:
        raise ValueError(f"fold: expected the size of input's dimension {x.ndim - 2} to be divisible by the product "
                         f"of kernel_size {kernel}, {k}, but got {batched.shape[1]}")
    out = _blocks("fold", size, kernel, dilation, padding, stride)
    if batched.shape[2] != out[0] * out[1]:
        raise ValueError(f"fold: given output_size={size}, kernel_size={kernel}, dilation={dilation}, "
                         f"padding={padding}, stride={stride}, expected the size of input's dimension {x.ndim - 1} "
                         f"to match the number of sliding blocks {out[0]} * {out[1]} = {out[0] * out[1]}, "
                         f"but got {batched.shape[2]}")
    image = fold_ops.Fold.apply(batched, size=size, kernel=kernel, out=out, stride=stride,
                                padding=tuple((p, p) for p in padding), dilation=dilation)
    return image if x.ndim == 3 else image.squeeze(0)


def _factor(fn, name, value):
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
    return value.__index__()


def pixel_shuffle(input, upscale_factor):
    """(*, C * r * r, H, W) -> (*, C, H * r, W * r), r = ``upscale_factor``: each group of r * r
    channels becomes an r x r block of pixels, as torch's.

        >>> F.pixel_shuffle(gt.randn(1, 12, 4, 4), 2).shape
        (1, 3, 8, 8)
    """
    x, r = _tensor(input, "pixel_shuffle"), _factor("pixel_shuffle", "upscale_factor", upscale_factor)
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ValueError(f"pixel_shuffle: expected an input (*, C * {r * r}, H, W) of at least 3 dims whose "
                         f"channels divide by upscale_factor ** 2 = {r * r}, got input of shape {x.shape}")
    *lead, c, h, w = x.shape
    n = len(lead)
    y = x.reshape(*lead, c // (r * r), r, r, h, w)                         # (*, C, r, r, H, W)
    y = y.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)                # (*, C, H, r, W, r)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r * r, H, W), r = ``downscale_factor``: the inverse of
    ``pixel_shuffle``, as torch's.

        >>> F.pixel_unshuffle(gt.randn(1, 3, 8, 8), 2).shape
        (1, 12, 4, 4)
    """
    x, r = _tensor(input, "pixel_unshuffle"), _factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise ValueError(f"pixel_unshuffle: expected an input (*, C, H, W) of at least 3 dims whose height and "
                         f"width divide by downscale_factor = {r}, got input of shape {x.shape}")
    *lead, c, h, w = x.shape
    n = len(lead)
    y = x.reshape(*lead, c, h // r, r, w // r, r)                          # (*, C, H, r, W, r)
    y = y.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)                # (*, C, r, r, H, W)
    return y.reshape(*lead, c * r * r, h // r, w // r)
