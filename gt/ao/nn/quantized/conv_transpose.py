"""torch.ao.nn.quantized's ``ConvTranspose1d/2d/3d``: what ``gt.ao.quantization.convert`` puts in place
of a calibrated ``nn.ConvTranspose1d/2d/3d``. quint8 in and out, a qint8 weight of shape (in_channels,
out_channels / groups, *kernel) quantized per tensor (torch refuses per-channel ones: its qconfig check
in ``prepare`` refuses a per-channel weight observer, its prepack a per-channel weight), a float bias.
Outputs equal torch's fbgemm ``quantized::conv_transpose{1,2,3}d`` bit for bit
(gt/ao/nn/quantized/static_kernels.py); state dict keys, reprs and errors are torch's.
"""

from gt import dtypes
from gt.ao.nn.quantized import static_kernels
from gt.ao.nn.quantized.static import _ConvNd, _ntuple, output_qparams, quantize_weight
from gt.nn import ConvTranspose1d as FloatConvTranspose1d, ConvTranspose2d as FloatConvTranspose2d
from gt.nn import ConvTranspose3d as FloatConvTranspose3d
from gt.tensor import creation
from gt.tensor.quantize_functions import quantize_per_tensor
from gt.tensor.quantized import as_quantized, per_tensor_affine


class _ConvTransposeNd(_ConvNd):
    """A ``_DIMS``-d transposed convolution on quint8 activations: (N, in_channels, *spatial) -> (N,
    out_channels, *spatial') quint8 of ``scale``/``zero_point``, ``spatial' = (spatial - 1) * stride -
    2 * padding + dilation * (kernel - 1) + output_padding + 1``. Note torch's argument order:
    ``output_padding``, ``groups``, ``bias`` before ``dilation``."""

    _FLOAT_MODULE = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.output_padding, self.transposed = _ntuple(output_padding, self._DIMS), True
        shape = (in_channels, out_channels // groups) + self.kernel_size
        self._qweight = quantize_per_tensor(creation.zeros(shape), 1.0, 0, dtypes.qint8)

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant=False):
        """The quantized form of the calibrated float ``mod`` (an ``nn.ConvTranspose{_DIMS}d`` with a
        ``qconfig`` and, after ``prepare``, an ``activation_post_process``)."""
        if type(mod) is not cls._FLOAT_MODULE:
            raise AssertionError(f" nnq.{cls.__name__}.from_float only works for {cls._FLOAT_MODULE.__name__}")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined.")
        observer = mod.qconfig.weight()
        observer(mod.weight)
        if observer.dtype != dtypes.qint8:
            raise AssertionError(f"Weight observer must have a dtype of qint8, got {observer.dtype!r}")
        new = cls(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride, mod.padding, mod.output_padding,
                  mod.groups, mod.bias is not None, mod.dilation, mod.padding_mode)
        new.set_weight_bias(quantize_weight(mod.weight, observer), mod.bias)
        post = getattr(mod, "activation_post_process", None)
        if post is not None and post.dtype != dtypes.float32:      # torch's: none, as dynamic quantization's
            new.scale, new.zero_point = output_qparams(mod)
        return new

    def set_weight_bias(self, w, b):
        """Takes ``w`` (in_channels, out_channels / groups, *kernel) qint8 per tensor and ``b``
        (out_channels,) float or None."""
        w = as_quantized(w)
        if getattr(w, "dtype", None) != dtypes.qint8:
            raise RuntimeError(f"quantized {type(self).__name__}: expected a qint8 weight, got "
                               f"{getattr(w, 'dtype', type(w).__name__)!r}")
        if w.qscheme() != per_tensor_affine:
            raise RuntimeError("Per Channel Quantization is currently disabled for transposed conv")
        super().set_weight_bias(w, b)

    def forward(self, x):
        return static_kernels.conv_transpose(x, self._qweight, self._bias, self.stride, self.padding,
                                             self.output_padding, self.dilation, self.groups, self.scale,
                                             self.zero_point)

    _REPR_DEFAULTS = (("padding", 0), ("dilation", 1), ("output_padding", 0))


class ConvTranspose1d(_ConvTransposeNd):
    """A quantized 1-d transposed convolution: (N, in_channels, L) quint8 -> (N, out_channels, L') quint8."""

    _DIMS, _FLOAT_MODULE = 1, FloatConvTranspose1d


class ConvTranspose2d(_ConvTransposeNd):
    """A quantized 2-d transposed convolution: (N, in_channels, H, W) quint8 -> (N, out_channels, H', W') quint8."""

    _DIMS, _FLOAT_MODULE = 2, FloatConvTranspose2d


class ConvTranspose3d(_ConvTransposeNd):
    """A quantized 3-d transposed convolution: (N, in_channels, D, H, W) quint8 -> (N, out_channels, D', H',
    W') quint8."""

    _DIMS, _FLOAT_MODULE = 3, FloatConvTranspose3d
