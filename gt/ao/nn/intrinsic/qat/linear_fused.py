"""torch.ao.nn.intrinsic.qat's ``LinearBn1d``: a Linear trained with its BatchNorm1d folded into the
weight before fake quantization, as the ConvBn layers (gt/ao/nn/intrinsic/qat/modules.py):
``bn(linear(x, fq(w * s)) / s + bias)`` with ``s = bn.weight / sqrt(bn.running_var + bn.eps)``."""

from gt.ao.nn import intrinsic
from gt.ao.nn.intrinsic.qat.modules import BnFolded, share_bn
from gt.ao.nn.qat import modules as qat
from gt.nn import BatchNorm1d, Linear as FloatLinear
from gt.nn.core_functions import linear
from gt.nn.utils_extra import fuse_linear_bn_weights
from gt.tensor import zeros


class LinearBn1d(BnFolded, FloatLinear):
    """A Linear (``weight``, optional ``bias``) and its BatchNorm1d (``bn``): (N, in_features) ->
    (N, out_features). ``freeze_bn_stats()`` keeps the BatchNorm in eval mode whatever ``train()`` says."""

    _FLOAT_MODULE = intrinsic.LinearBn1d

    def __init__(self, in_features, out_features, bias=True, eps=1e-05, momentum=0.1, freeze_bn=False, qconfig=None):
        super().__init__(in_features, out_features, bias)
        self._with_bn(BatchNorm1d, out_features, eps, momentum, freeze_bn, qconfig)

    def forward(self, input):
        factor = self.bn.weight / (self.bn.running_var + self.bn.eps).sqrt()
        scaled_weight = self.weight_fake_quant(self.weight * factor.reshape(-1, 1))
        out = linear(self._checked(input), scaled_weight, zeros(self.out_features, dtype=input.dtype))
        out = out / factor.reshape(1, -1)
        if self.bias is not None:
            out = out + self.bias.reshape(1, -1)
        return self.bn(out)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The QAT form of the float fused ``LinearBn1d``, sharing its Linear's parameters and its
        BatchNorm's parameters and running statistics."""
        qat.check_float(cls, mod)
        lin, bn = mod[0], mod[1]
        new = cls(lin.in_features, lin.out_features, lin.bias is not None, bn.eps, bn.momentum, False, mod.qconfig)
        new.weight, new.bias = lin.weight, lin.bias
        share_bn(new.bn, bn)
        return new

    def to_float(self):
        """A float ``nn.Linear`` with the BatchNorm folded in (its running statistics; torch's)."""
        new = FloatLinear(self.in_features, self.out_features)
        new.weight, new.bias = self.weight_bias_to_quantize()
        return new

    def weight_bias_to_quantize(self):
        """The BatchNorm folded into the Linear with its running statistics (what ``convert`` quantizes)."""
        bn = self.bn
        return fuse_linear_bn_weights(self.weight, self.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                      bn.bias)
