"""torch's ``nn.ChannelShuffle``, ``nn.Softmax2d``, ``nn.FeatureAlphaDropout``,
``nn.MultiLabelMarginLoss``, ``nn.TripletMarginWithDistanceLoss``, ``nn.Buffer`` and
``nn.SyncBatchNorm``; each wraps its ``F`` form (gt/nn/small_functions.py) or an existing layer.

``nn.SyncBatchNorm`` is gt's batch norm: on a mesh, a batch sharded over the devices already gets
whole-batch statistics while training (gt/tensor/sample_rules.py), which is what torch's layer
synchronizes across processes. It takes torch's arguments; a ``process_group`` other than None
is refused (gt has no process groups: the mesh is the group). torch's layer on CPU without an
initialized process group runs as a plain batch norm too.
"""

from gt.nn.batchnorm import _BatchNorm
from gt.nn.dropout_extra import _DropoutNd
from gt.nn.inputs import as_tensor
from gt.nn.losses_extra import PairwiseDistance, _Loss
from gt.nn.module import Module
from gt.nn.norms import _InstanceNorm
from gt.nn.small_functions import (channel_shuffle, feature_alpha_dropout, multilabel_margin_loss,
                                   triplet_margin_with_distance_loss)
from gt.tensor import Tensor


class ChannelShuffle(Module):
    """``F.channel_shuffle(input, groups)`` as a layer: (N, C, *) -> (N, C, *), C divisible by ``groups``.

        >>> nn.ChannelShuffle(2)(gt.arange(4.0).reshape(1, 4, 1)).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class Softmax2d(Module):
    """Softmax over the channels of each spatial position: (N, C, H, W) or (C, H, W), along dim -3."""

    def forward(self, input):
        x = as_tensor(input, "Softmax2d")
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {x.ndim}D instead")
        return x.softmax(-3)


class FeatureAlphaDropout(_DropoutNd):
    """``F.feature_alpha_dropout`` (alpha dropout of whole channels of (N, C, *)) while training;
    the identity after ``eval()``.

        >>> nn.FeatureAlphaDropout(0.2)(gt.randn(4, 8, 3)).shape
        (4, 8, 3)
    """

    function = staticmethod(feature_alpha_dropout)


class MultiLabelMarginLoss(_Loss):
    """``F.multilabel_margin_loss(input, target)`` as a module: input (C,) or (N, C), int64 target
    of the same shape (each sample's class indices, ended by -1)."""

    def forward(self, input, target):
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``F.triplet_margin_with_distance_loss`` as a module; the default distance is a
    ``nn.PairwiseDistance()`` child module, as torch's."""

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(reduction=reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             "instead")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin, self.swap = margin, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_with_distance_loss(anchor, positive, negative, distance_function=self.distance_function,
                                                 margin=self.margin, swap=self.swap, reduction=self.reduction)


class _BufferMeta(type):
    # isinstance(t, nn.Buffer) holds for the tensors nn.Buffer returns (they are plain gt.Tensors)
    def __instancecheck__(cls, instance):
        if cls is Buffer:
            return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)
        return super().__instancecheck__(instance)


class Buffer(metaclass=_BufferMeta):
    """A tensor that registers itself as a buffer of the module it is assigned to (torch's
    ``nn.Buffer``): ``self.table = nn.Buffer(t)`` is ``self.register_buffer("table", t)``, and
    ``persistent=False`` keeps it out of ``state_dict()``. ``nn.Buffer(t)`` returns ``t`` detached
    (a plain ``gt.Tensor``, keeping ``requires_grad``), marked; ``nn.Buffer()`` an empty float tensor.

        >>> m = nn.Module(); m.scale = nn.Buffer(gt.ones(2)); list(m.state_dict())
        ['scale']
    """

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            from gt.tensor import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"nn.Buffer: data must be a gt.Tensor or None, got {type(data).__name__}")
        t = data.detach()
        if data.requires_grad:
            t._set_requires_grad(True)
        t.persistent = persistent
        t._is_buffer = True
        return t


class SyncBatchNorm(_BatchNorm):
    """Batch norm over the channels (dim 1) of (N, C, *) inputs with whole-batch statistics across
    the devices of a mesh (module docstring); torch's constructor, ``process_group`` None only.
    ``convert_sync_batchnorm(module)`` turns a model's batch norm layers into this one."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True):
        if process_group is not None:
            raise ValueError("SyncBatchNorm: gt has no process groups (a sharded batch on the mesh is already "
                             f"normalized with whole-batch statistics); pass process_group=None, got {process_group!r}")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, x):
        if x.ndim < 2:
            raise ValueError(f"expected at least 2D input (got {x.ndim}D input)")

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every batch norm layer in it (``module`` itself too) replaced by a
        ``SyncBatchNorm`` sharing its parameters and buffers (torch's); other modules are kept."""
        out = module
        # gt's instance norms share _BatchNorm's code, but torch's are no batch norms: they stay
        if isinstance(module, _BatchNorm) and not isinstance(module, (SyncBatchNorm, _InstanceNorm)):
            out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                      process_group, bias=module.bias is not None)
            if module.affine:
                out.weight = module.weight
                if module.bias is not None:
                    out.bias = module.bias
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(out, name, getattr(module, name))
            out.train(module.training)
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return out


__all__ = ["Buffer", "ChannelShuffle", "FeatureAlphaDropout", "MultiLabelMarginLoss", "Softmax2d", "SyncBatchNorm",
           "TripletMarginWithDistanceLoss"]
