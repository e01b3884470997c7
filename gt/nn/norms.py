"""torch's remaining normalisation layers: ``GroupNorm``, ``InstanceNorm1d/2d/3d``, ``RMSNorm`` and
``LocalResponseNorm``, with torch's arguments, defaults, parameters and buffers, so state dicts
move between gt and torch as they are. The computations are in gt/nn/norm_functions.py."""

import warnings

from gt import dtypes
from gt.nn import norm_functions as NF
from gt.nn.batchnorm import _BatchNorm, _buffer
from gt.nn.inputs import as_tensor
from gt.nn.module import Module
from gt.nn.parameter import Parameter


def _positive_int(name, what, value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: {what} must be a positive int, got {value!r}")


class GroupNorm(Module):
    """Group norm over input (N, C, *): the C = ``num_channels`` channels in ``num_groups``
    groups of consecutive channels, each sample's group normalised over its channels and
    positions, then scaled by ``weight`` (ones) and shifted by ``bias`` (zeros), both (C,)
    (``affine=False``: neither; ``bias=False``: no bias). The same in train and eval.

        >>> nn.GroupNorm(4, 32)(gt.randn(8, 32, 16, 16)).shape
        (8, 32, 16, 16)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None, *, bias=True):
        super().__init__()
        _positive_int("GroupNorm", "num_groups", num_groups)
        _positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
        for name, fill, kept in (("weight", 1, affine), ("bias", 0, affine and bias)):
            self.register_parameter(name, Parameter(_buffer((num_channels,), dtype, fill)) if kept else None)

    def forward(self, x):
        # as torch, the channel count is checked against the weights only (affine=False takes any)
        return NF.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """What the three instance norms share: batch norm's parameters and buffers, torch's defaults
    (no affine, no running statistics), the statistics of each sample and channel. Subclasses give
    ``_dims``, the input's batched number of dims."""

    _dims = None

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, dtype=None,
                 *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)

    def forward(self, x):
        name, dims = type(self).__name__, self._dims
        x = as_tensor(x, name)
        if x.ndim not in (dims - 1, dims):
            raise ValueError(f"{name}: expected {dims - 1}D or {dims}D input (got {x.ndim}D input of shape "
                             f"{x.shape})")
        channel_dim = x.ndim - (dims - 2) - 1
        if x.shape[channel_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"{name}: expected input's size at dim={channel_dim} to match num_features "
                                 f"({self.num_features}), but got: {x.shape[channel_dim]}.")
            # without weights num_features is unused: torch only warns, and so does gt
            warnings.warn(f"{name}: input's size at dim={channel_dim} ({x.shape[channel_dim]}) does not match "
                          f"num_features ({self.num_features}), which is not used because affine=False",
                          stacklevel=2)
        unbatched = x.ndim == dims - 1
        out = NF.instance_norm(x.unsqueeze(0) if unbatched else x, self.running_mean, self.running_var,
                               self.weight, self.bias, self.training or not self.track_running_stats,
                               0.0 if self.momentum is None else self.momentum, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) or unbatched (C, L) input: each sample's channel normalised
    over its L positions, ``(x - mean) / sqrt(var + eps) * weight + bias`` (biased variance).
    ``affine=True``: ``weight`` (ones) and ``bias`` (zeros), (C,). ``track_running_stats=True``:
    ``running_mean``/``running_var`` move toward the batch's per-channel averages while training
    (``momentum``; ``None`` counts as 0, as torch's instance norm) and normalise in ``eval()``;
    ``num_batches_tracked`` is kept for torch's state dicts but, as in torch, never counts.

        >>> nn.InstanceNorm1d(3)(gt.randn(8, 3, 20)).shape
        (8, 3, 20)
    """

    _dims = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W) input (statistics over H and W).
    See ``InstanceNorm1d``.

        >>> nn.InstanceNorm2d(3, affine=True)(gt.randn(8, 3, 16, 16)).shape
        (8, 3, 16, 16)
    """

    _dims = 4


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over (N, C, D, H, W) or unbatched (C, D, H, W) input (statistics over D, H
    and W). See ``InstanceNorm1d``.

        >>> nn.InstanceNorm3d(2)(gt.randn(4, 2, 4, 8, 8)).shape
        (4, 2, 4, 8, 8)
    """

    _dims = 5


class RMSNorm(Module):
    """``x / sqrt(mean(x ** 2) + eps) * weight`` over the trailing ``normalized_shape`` dims;
    ``weight`` starts at ones, of shape ``normalized_shape`` (``elementwise_affine=False``: no
    weight). ``eps=None``: the input dtype's machine epsilon, as torch.

        >>> nn.RMSNorm(64)(gt.randn(4, 10, 64)).shape
        (4, 10, 64)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in shape):
            raise ValueError(f"RMSNorm: normalized_shape must be a positive int or a non-empty tuple of them, "
                             f"got {normalized_shape!r}")
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0):
            raise ValueError(f"RMSNorm: eps must be a non-negative number or None, got {eps!r}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(_buffer(shape, dtype, 1))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return NF.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class LocalResponseNorm(Module):
    """Local response norm over input (N, C, *): each value divided by ``(k + alpha *
    mean(x ** 2)) ** beta`` over a window of ``size`` neighbouring channels (see
    ``F.local_response_norm``). No parameters.

        >>> nn.LocalResponseNorm(5)(gt.randn(2, 16, 8, 8)).shape
        (2, 16, 8, 8)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        _positive_int("LocalResponseNorm", "size", size)
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return NF.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
