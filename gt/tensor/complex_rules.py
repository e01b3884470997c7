"""Placement rules of the complex-number and Fourier ops over the mesh (rules.py): the parts,
``conj``, ``angle`` and ``complex`` are elementwise; ``view_as_real``/``view_as_complex`` keep a
shard of any axis but the complex pair's; a transform keeps the shard of an axis it does not
transform (and, being linear, a partial sum). Elsewhere the inputs are gathered first."""

from gt.ops import complex_ops as cx
from gt.ops import fft_ops
from gt.sharding.placement import Partial, Shard
from gt.tensor import rules
from gt.tensor.rules import PART, Plan, _shard_axis, _sizes, elementwise


def _kept(x, n_args, blocked):
    """The plan that runs on each device's share: a partial stays partial, a shard of an axis
    outside ``blocked`` stays; None (gather first) otherwise."""
    rest = [None] * (n_args - 1)
    if x.placement.is_partial():
        return Plan([PART] + rest, Partial())
    a = _shard_axis(x)
    if a is None or a in blocked:
        return None
    return Plan([(Shard(a), _sizes(x))] + rest, Shard(a))


def view_as_real(cls, args, kwargs):
    return _kept(args[0], len(args), ())


def view_as_complex(cls, args, kwargs):
    return _kept(args[0], len(args), (args[0].ndim - 1,))


def transform(cls, args, kwargs):
    axes = args[2] if cls is fft_ops.FFT else (args[2],)
    x = args[0]
    return _kept(x, len(args), tuple(a % x.ndim for a in axes))


rules.RULES.update({cls: elementwise for cls in (cx.Real, cx.Imag, cx.Conj, cx.Angle, cx.Complex)})
rules.RULES.update({cx.ViewAsReal: view_as_real, cx.ViewAsComplex: view_as_complex, fft_ops.FFT: transform,
                    fft_ops.RFFT: transform, fft_ops.IRFFT: transform})
