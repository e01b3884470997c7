"""torch's lazy convolutions and norms: ``LazyConv1d/2d/3d``, ``LazyConvTranspose1d/2d/3d``,
``LazyBatchNorm1d/2d/3d`` and ``LazyInstanceNorm1d/2d/3d``: the eager layer without ``in_channels``
/ ``num_features``, which the first call reads off the input. How lazy modules work, and where gt
differs from torch: gt/nn/lazy.py."""

from gt import dtypes
from gt.backend import B
from gt.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from gt.nn.conv import Conv1d, Conv2d, Conv3d
from gt.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from gt.nn.lazy import LazyLayer, check_no_device
from gt.nn.norms import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from gt.nn.uninitialized import UninitializedBuffer, UninitializedParameter
from gt.tensor import Tensor


class _LazyConvXdMixin(LazyLayer):
    """What the lazy convolutions share: ``in_channels`` from the first input's dim 1 (dim 0 when
    unbatched), the weight's shape from it (transposed ones: (in, out / groups, *kernel))."""

    _size_name = "in_channels"
    _transposed = False

    def _uninitialized(self, bias, dtype):
        self.in_channels = 0
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _input_size(self, x):
        name, nd = type(self).__name__, self._nd
        if x.ndim not in (nd + 1, nd + 2):
            raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input "
                               f"of size: {x.shape}")
        channels = x.shape[1] if x.ndim == nd + 2 else x.shape[0]
        if channels == 0 or channels % self.groups:
            raise ValueError(f"{name}: in_channels must be a positive multiple of groups ({self.groups}), got "
                             f"{channels} from the input of shape {x.shape}")
        return channels

    def _lazy_shapes(self, size):
        out, groups = self.out_channels, self.groups
        weight = (size, out // groups) if self._transposed else (out, size // groups)
        return {"weight": weight + tuple(self.kernel_size), "bias": (out,)}


def _placeholder_channels(groups):
    # the eager __init__ checks in_channels > 0 and in_channels % groups == 0: groups passes both
    # (a bad groups is then reported as such)
    return groups if isinstance(groups, int) and not isinstance(groups, bool) and groups > 0 else 1


class _LazyConvNd(_LazyConvXdMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        check_no_device(type(self).__name__, device)
        super().__init__(_placeholder_channels(groups), out_channels, kernel_size, stride, padding, dilation, groups,
                         False, padding_mode, dtype)
        self._uninitialized(bias, dtype)


class _LazyConvTransposeNd(_LazyConvXdMixin):
    _transposed = True

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1, bias=True,
                 dilation=1, padding_mode="zeros", device=None, dtype=None):
        check_no_device(type(self).__name__, device)
        super().__init__(_placeholder_channels(groups), out_channels, kernel_size, stride, padding, output_padding,
                         groups, False, dilation, padding_mode, dtype)
        self._uninitialized(bias, dtype)


class LazyConv1d(_LazyConvNd, Conv1d):
    """``Conv1d`` with ``in_channels`` read off the first input ((N, C, L) or (C, L)); torch's
    arguments without ``in_channels``. Becomes a ``Conv1d``. See gt/nn/lazy.py.

        >>> nn.LazyConv1d(8, 3)(gt.randn(2, 4, 10)).shape
        (2, 8, 8)
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConvNd, Conv2d):
    """``Conv2d`` with ``in_channels`` read off the first input ((N, C, H, W) or (C, H, W)).
    Becomes a ``Conv2d``. See ``LazyConv1d``."""

    cls_to_become = Conv2d


class LazyConv3d(_LazyConvNd, Conv3d):
    """``Conv3d`` with ``in_channels`` read off the first input ((N, C, D, H, W) or unbatched).
    Becomes a ``Conv3d``. See ``LazyConv1d``."""

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTransposeNd, ConvTranspose1d):
    """``ConvTranspose1d`` with ``in_channels`` read off the first input ((N, C, L) or (C, L));
    ``weight`` (in_channels, out_channels / groups, k). Becomes a ``ConvTranspose1d``.

        >>> nn.LazyConvTranspose1d(8, 3, stride=2)(gt.randn(2, 4, 10)).shape
        (2, 8, 21)
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeNd, ConvTranspose2d):
    """``ConvTranspose2d`` with ``in_channels`` read off the first input. See ``LazyConvTranspose1d``."""

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTransposeNd, ConvTranspose3d):
    """``ConvTranspose3d`` with ``in_channels`` read off the first input. See ``LazyConvTranspose1d``."""

    cls_to_become = ConvTranspose3d


class _LazyNormBase(LazyLayer):
    """What the lazy batch and instance norms share: torch's arguments without ``num_features``
    (and, as torch's, ``affine=True`` and ``track_running_stats=True`` by default, for instance
    norms too), ``weight``/``bias`` and ``running_mean``/``running_var`` uninitialized until the
    first input gives ``num_features``; ``num_batches_tracked`` is a 0 from the start."""

    _size_name = "num_features"

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True):
        check_no_device(type(self).__name__, device)
        super().__init__(1, eps, momentum, False, False, dtype, bias=False)
        self.num_features, self.affine, self.track_running_stats = 0, affine, track_running_stats
        if affine:
            self.weight = UninitializedParameter(dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(dtype=dtype)
            self.running_var = UninitializedBuffer(dtype=dtype)
            self.num_batches_tracked = Tensor._wrap(B.zeros((), dtypes.int64))

    def _channels(self, x, dim):
        if x.shape[dim] == 0:
            raise ValueError(f"{type(self).__name__}: num_features must be a positive int, got 0 from the input of "
                             f"shape {x.shape}")
        return x.shape[dim]

    def _lazy_shapes(self, size):
        return dict.fromkeys(("weight", "bias", "running_mean", "running_var"), (size,))


class _LazyBatchNorm(_LazyNormBase):
    def _input_size(self, x):
        self._check_input_dim(x)
        return self._channels(x, 1)


class _LazyInstanceNorm(_LazyNormBase):
    def _input_size(self, x):
        dims = self._dims
        if x.ndim not in (dims - 1, dims):
            raise ValueError(f"{type(self).__name__}: expected {dims - 1}D or {dims}D input (got {x.ndim}D input of "
                             f"shape {x.shape})")
        return self._channels(x, x.ndim - dims + 1)


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """``BatchNorm1d`` with ``num_features`` read off the first input's dim 1 ((N, C) or (N, C, L)).
    Becomes a ``BatchNorm1d``. See gt/nn/lazy.py.

        >>> bn = nn.LazyBatchNorm1d()
        >>> bn(gt.randn(8, 16)).shape, bn.num_features
        ((8, 16), 16)
    """

    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """``BatchNorm2d`` with ``num_features`` read off the first input's dim 1 (N, C, H, W).
    Becomes a ``BatchNorm2d``. See ``LazyBatchNorm1d``."""

    cls_to_become = BatchNorm2d


class LazyBatchNorm3d(_LazyBatchNorm, BatchNorm3d):
    """``BatchNorm3d`` with ``num_features`` read off the first input's dim 1 (N, C, D, H, W).
    Becomes a ``BatchNorm3d``. See ``LazyBatchNorm1d``."""

    cls_to_become = BatchNorm3d


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """``InstanceNorm1d`` with ``num_features`` read off the first input ((N, C, L), or (C, L):
    dim 0). torch's defaults differ from ``InstanceNorm1d``'s: ``affine=True``,
    ``track_running_stats=True``. Becomes an ``InstanceNorm1d``. See gt/nn/lazy.py.

        >>> norm = nn.LazyInstanceNorm1d()
        >>> norm(gt.randn(8, 3, 20)).shape, norm.weight.shape
        ((8, 3, 20), (3,))
    """

    cls_to_become = InstanceNorm1d


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """``InstanceNorm2d`` with ``num_features`` read off the first input ((N, C, H, W) or
    (C, H, W)). Becomes an ``InstanceNorm2d``. See ``LazyInstanceNorm1d``."""

    cls_to_become = InstanceNorm2d


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """``InstanceNorm3d`` with ``num_features`` read off the first input ((N, C, D, H, W) or
    unbatched). Becomes an ``InstanceNorm3d``. See ``LazyInstanceNorm1d``."""

    cls_to_become = InstanceNorm3d
