"""torch's process-wide settings and type facts: ``gt.set_default_dtype``/``gt.get_default_dtype``,
``gt.finfo``/``gt.iinfo``, ``gt.seed``/``gt.initial_seed``.

The default dtype is what a Python float, ``gt.randn``/``zeros``/``ones``/``empty``/``full``,
``gt.arange`` with a float argument and the parameters of ``nn`` layers made afterwards get.

Where gt differs from torch: the default dtype can be float32 or float64 only (torch also takes
float16 and bfloat16, whose arithmetic gt does in float32); ``initial_seed()`` before any seeding
picks a seed and reseeds the generator with it (gt's generator starts from the operating
system's entropy, which has no seed to report), so the draws from then on follow that seed.
"""

import os

from gt import dtypes
from gt.devices import as_device
from gt.tensor import creation
from gt.tensor.generator import Generator


def set_default_dtype(d):
    """Make ``d`` (gt.float32 or gt.float64) the dtype of new float tensors and parameters."""
    dtype = dtypes.to_dtype(d)
    if not dtype.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, got {d!r}")
    if dtype not in (dtypes.float32, dtypes.float64):
        raise TypeError(f"set_default_dtype: gt supports gt.float32 and gt.float64 as the default type, got {d!r}")
    dtypes.default_float = dtype


def get_default_dtype():
    """The dtype new float tensors get (gt.float32 unless ``set_default_dtype`` changed it)."""
    return dtypes.default_float


class finfo:
    """Facts of a float dtype (default: the default dtype), as ``torch.finfo``: ``bits``, ``eps``
    (the gap from 1 to the next value), ``max``, ``min``, ``tiny``/``smallest_normal`` (the smallest
    positive normal value), ``resolution`` (``10 ** -digits``), ``dtype`` (its name).

        >>> gt.finfo(gt.float32).eps
        1.1920928955078125e-07
    """

    _TABLE = {"float32": (32, 2.0 ** -23, dtypes.FLOAT_MAX["float32"], 2.0 ** -126, 1e-06),
              "float64": (64, 2.0 ** -52, dtypes.FLOAT_MAX["float64"], 2.0 ** -1022, 1e-15),
              "float16": (16, 2.0 ** -10, dtypes.FLOAT_MAX["float16"], 2.0 ** -14, 0.001),
              "bfloat16": (16, 2.0 ** -7, dtypes.FLOAT_MAX["bfloat16"], 2.0 ** -126, 0.01)}

    def __init__(self, type=None):
        dtype = dtypes.default_float if type is None else dtypes.to_dtype(type)
        if not dtype.is_floating_point:
            raise TypeError(f"finfo: expected a floating point dtype, got {type!r}; use gt.iinfo for integers")
        self.bits, self.eps, self.max, self.tiny, self.resolution = self._TABLE[dtype.name]
        self.min, self.smallest_normal, self.dtype = -self.max, self.tiny, dtype.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Facts of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max``, ``dtype`` (its name).

        >>> gt.iinfo(gt.int32).max
        2147483647
    """

    def __init__(self, type):
        dtype = dtypes.to_dtype(type)
        self._quantized = dtype.name if dtype in dtypes.QUANTIZED_INT else None
        dtype = dtypes.QUANTIZED_INT.get(dtype, dtype)     # torch's: the range of the integers held
        if dtype.is_floating_point or dtype == dtypes.bool_:
            raise TypeError(f"iinfo: expected an integer dtype (gt.uint8, gt.int8, gt.int16, gt.int32, gt.int64), "
                            f"got {type!r}" + ("; use gt.finfo for floats" if dtype.is_floating_point else ""))
        self.bits = 8 * dtype.itemsize
        (self.min, self.max), self._dtype = dtypes.INT_RANGES[dtype.name], dtype.name

    @property
    def dtype(self):
        """The dtype's name (``'int32'``); torch's NotImplementedError for a quantized dtype."""
        if self._quantized:
            raise NotImplementedError(f'"dtype" not implemented for \'{dtypes.torch_type_name(self._quantized)}\'')
        return self._dtype

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def seed():
    """Seed gt's random generator from the operating system's entropy; returns the seed
    (a non-negative 63-bit int) so that the draws can be repeated with ``gt.manual_seed``."""
    value = int.from_bytes(os.urandom(8), "little") >> 1
    creation.manual_seed(value)
    return value


def initial_seed():
    """The seed of gt's random generator: that of the last ``gt.manual_seed``/``gt.seed`` (see the
    module docstring for a generator never seeded)."""
    if creation.last_seed is None:
        return seed()
    return creation.last_seed


class _DefaultGenerator(Generator):
    """``gt.default_generator``: the generator of ``gt.manual_seed`` as an object (torch's
    ``torch.default_generator``); ``generator=gt.default_generator`` draws as no generator does."""

    is_default = True

    def __init__(self):
        self.device = as_device("cpu")

    def manual_seed(self, seed):
        creation.manual_seed(seed % 2 ** 64 if isinstance(seed, int) and not isinstance(seed, bool) else seed)
        return self

    def seed(self):
        return seed()

    def initial_seed(self):
        return initial_seed()

    def get_state(self):
        return creation.get_rng_state()

    def set_state(self, state):
        creation.set_rng_state(state)
        return self

    def __repr__(self):
        return "<gt.default_generator>"


default_generator = _DefaultGenerator()
