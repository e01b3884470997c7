"""Quantized tensors (torch's ``torch.quint8``, ``torch.qint8``, ``torch.qint32``, ``torch.quint4x2``): the class
that ``gt.quantize_per_tensor`` and ``gt.quantize_per_channel`` return
(gt/tensor/quantize_functions.py), and torch's quantization schemes.

A quantized tensor is a ``Tensor`` holding its integers (``int_repr()``, a dense uint8/int8/int32
gt tensor, sharded or not; quint4x2's kept one a byte, packed by ``int_repr()``) and its
quantization parameters: one ``q_scale()``/``q_zero_point()``
(``gt.per_tensor_affine``) or one per channel along ``q_per_channel_axis()``
(``gt.per_channel_affine``). It supports the methods in ``SUPPORTED``; every other method of
``Tensor`` raises NotImplementedError naming the op and torch's QuantizedCPU backend, as torch's
dispatcher does, and a dense op handed a quantized tensor raises when it reads the storage. It
never requires grad (torch's error); ``gt.fake_quantize_*`` are what quantization-aware training
differentiates.
"""

from gt import dtypes
from gt.backend import B
from gt.tensor import creation, quantize_math
from gt.tensor.core import Tensor
from gt.tensor.sparse_coo import _user_op, refuse_the_rest
from gt.tensor.tensor_repr import _add_suffixes


class QScheme:
    """torch's ``torch.qscheme``: how a quantized tensor's scales and zero points are laid out."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"gt.{self.name}"

    def __eq__(self, other):
        return isinstance(other, QScheme) and other.name == self.name or str(other) == f"torch.{self.name}"

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        return _qscheme, (self.name,)


per_tensor_affine = QScheme("per_tensor_affine")
per_channel_affine = QScheme("per_channel_affine")
# torch's other schemes: named (observers and backends choose them), never made by gt's functions
per_tensor_symmetric = QScheme("per_tensor_symmetric")
per_channel_symmetric = QScheme("per_channel_symmetric")
per_channel_affine_float_qparams = QScheme("per_channel_affine_float_qparams")
QSCHEMES = {q.name: q for q in (per_tensor_affine, per_channel_affine, per_tensor_symmetric, per_channel_symmetric,
                                per_channel_affine_float_qparams)}


def _qscheme(name):
    return QSCHEMES[name]


SUPPORTED = ("dequantize", "int_repr", "q_scale", "q_zero_point", "q_per_channel_scales", "q_per_channel_zero_points",
             "q_per_channel_axis", "qscheme", "is_quantized", "size", "shape", "dtype", "numel", "dim",
             "clone", "detach", "contiguous", "stride", "is_contiguous", "storage_offset", "to/cpu (to where it is)",
             "gt.equal", "reshape", "view", "flatten", "squeeze", "unsqueeze", "basic indexing",
             "per tensor: transpose", "permute", "t", "relu", "relu_",
             "sigmoid/tanh/hardsigmoid (quint8/qint8, with gt.ao loaded)", "gt.save/gt.load")
# kernels of the layer above (gt/ao/nn/quantized) that methods here run, registered there as it loads
QUANTIZED_KERNELS = {}


def _op_name(name):
    """torch's op behind a method name: ``__radd__`` -> ``add``, ``__iadd__`` -> ``add_``."""
    if name.startswith("__") and name.endswith("__"):
        core = name[2:-2]
        if core.startswith("i") and core[1:] in _BINARY:
            return core[1:] + "_"
        if core.startswith("r") and core[1:] in _BINARY:
            return core[1:]
        return core
    return name


_BINARY = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift", "rshift"}


def _message(op):
    return (f"Could not run 'aten::{_op_name(op)}' with arguments from the 'QuantizedCPU' backend: gt's quantized "
            f"tensors support only {', '.join(SUPPORTED)}; call .dequantize() first")


def _storage(self):
    raise NotImplementedError(_message(_user_op()) + " (a dense op was handed a quantized tensor)")


class QuantizedTensor(Tensor):
    """A quantized tensor (torch's ``is_quantized``); made by ``gt.quantize_per_tensor`` or
    ``gt.quantize_per_channel``."""

    __slots__ = ("_q_int", "_q_dtype", "_q_scheme", "_q_scale", "_q_zero_point", "_q_axis")
    _placed = None
    _array = _data = _value = property(_storage)
    is_quantized = property(lambda self: True, doc="True: a quantized tensor.")
    requires_grad = property(lambda self: False, lambda self, value: self._set_requires_grad(value))
    is_leaf = property(lambda self: True)
    grad_fn = property(lambda self: None)
    __hash__ = Tensor.__hash__

    @classmethod
    def _make(cls, ints, dtype, scheme, scale, zero_point, axis=None):
        """``ints`` (the integer tensor) with its parameters: Python numbers per tensor, 1-d
        float64/int64 tensors (and the channel ``axis``) per channel."""
        t = object.__new__(cls)
        t._q_int, t._q_dtype, t._q_scheme = ints, dtype, scheme
        t._q_scale, t._q_zero_point, t._q_axis = scale, zero_point, axis
        t._ctx = t._grad_value = t._grad_factors = None
        t._retains_grad, t._requires_grad = False, False
        return t

    def _like(self, ints, axis=None):
        return QuantizedTensor._make(ints, self._q_dtype, self._q_scheme, self._q_scale, self._q_zero_point,
                                     self._q_axis if axis is None else axis)

    # ---- what it is --------------------------------------------------------------------
    shape = property(lambda self: self._q_int.shape)
    dtype = property(lambda self: self._q_dtype)
    ndim = property(lambda self: self._q_int.ndim)
    device = property(lambda self: self._q_int.device)

    def size(self, dim=None):
        return self._q_int.size(dim)

    def numel(self):
        return self._q_int.numel()

    def dim(self):
        return self._q_int.ndim

    def __len__(self):
        return len(self._q_int)

    def type(self, dtype=None):
        """torch's name of the class (``'gt.quantized.QUInt8Tensor'``); a cast is refused."""
        if dtype is not None:
            raise NotImplementedError(_message("_to_copy"))
        return f"gt.quantized.{dtypes.torch_type_name(self._q_dtype.name)}Tensor"

    def _set_requires_grad(self, requires_grad=True):
        if requires_grad:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        return self

    # ---- its integers and parameters ---------------------------------------------------------
    def int_repr(self):
        """The stored integers: a uint8 (quint8), int8 (qint8) or int32 (qint32) tensor, a copy; of
        quint4x2, torch's packed bytes (uint8 (ceil(numel / 2),), two values a byte, the first low)."""
        if self._q_dtype == dtypes.quint4x2:
            return quantize_math.pack_nibbles(self._q_int)
        return self._q_int.clone()

    def dequantize(self):
        """The float32 values ``(int_repr - zero_point) * scale``, torch's to the bit."""
        if self._q_scheme is per_tensor_affine:
            return quantize_math.dequantize_tensor(self._q_int, self._q_scale, self._q_zero_point)
        return quantize_math.dequantize_channels(self._q_int, self._q_scale, self._q_zero_point, self._q_axis)

    def qscheme(self):
        """``gt.per_tensor_affine``, ``gt.per_channel_affine`` or (float zero points)
        ``gt.per_channel_affine_float_qparams``."""
        return self._q_scheme

    def _need(self, scheme):
        if self._q_scheme is not scheme and (scheme, self._q_scheme) != (per_channel_affine,
                                                                          per_channel_affine_float_qparams):
            want = "kPerTensorAffine" if scheme is per_tensor_affine else \
                "kPerChannelAffine || quantizer->qscheme() == kPerChannelAffineFloatQParams"
            raise RuntimeError(f"Expected quantizer->qscheme() == {want} to be true, but got false.")

    def q_scale(self):
        """The scale (a Python float) of a per-tensor quantized tensor."""
        self._need(per_tensor_affine)
        return self._q_scale

    def q_zero_point(self):
        """The zero point (a Python int) of a per-tensor quantized tensor."""
        self._need(per_tensor_affine)
        return self._q_zero_point

    def q_per_channel_scales(self):
        """The scales (float64, (channels,); float32 with float zero points) of a per-channel tensor."""
        self._need(per_channel_affine)
        return self._q_scale.clone()

    def q_per_channel_zero_points(self):
        """The zero points (int64, (channels,); float32 ones as given) of a per-channel quantized tensor."""
        self._need(per_channel_affine)
        return self._q_zero_point.clone()

    def q_per_channel_axis(self):
        """The axis the channels lie along."""
        self._need(per_channel_affine)
        return self._q_axis

    # ---- copies and views ----------------------------------------------------------------------
    def clone(self, *, memory_format=None):
        return self._like(self._q_int.clone())

    def detach(self):
        return self

    def to(self, *args, **kwargs):
        """Itself where nothing changes (``q.to("cpu")`` on the CPU, its own dtype); a move or a
        cast is refused (torch: dequantize first)."""
        wanted = [a for a in args + tuple(kwargs.values()) if a is not None and not isinstance(a, bool)]
        if all(a == self._q_dtype if isinstance(a, dtypes.DType) else str(a) == str(self.device) for a in wanted):
            return self
        raise RuntimeError("Creation of quantized tensor requires quantized dtype like torch.quint8: gt moves or "
                           f"casts no quantized tensor (asked for {wanted!r}); .dequantize() first")

    def cpu(self, memory_format=None):
        return self.to("cpu")

    def contiguous(self, memory_format=None):
        """Itself where its integers are contiguous, else a copy of them that is (torch's)."""
        return self if self._q_int.is_contiguous() else self._like(self._q_int.contiguous())

    def stride(self, dim=None):
        """Its integers' strides, in elements (torch's strides of a quantized tensor)."""
        return self._q_int.stride(dim) if dim is not None else self._q_int.stride()

    def is_contiguous(self, memory_format=None):
        return self._q_int.is_contiguous()

    def storage_offset(self):
        return self._q_int.storage_offset()

    def equal(self, other):
        """torch's ``equal`` of quantized tensors: the same dtype, scheme, parameters and integers."""
        if not isinstance(other, QuantizedTensor):
            raise NotImplementedError(_message("equal"))
        if (self._q_dtype, self._q_scheme, self.shape) != (other._q_dtype, other._q_scheme, other.shape):
            return False
        if self._q_scheme is per_tensor_affine:
            same = (self._q_scale, self._q_zero_point) == (other._q_scale, other._q_zero_point)
        else:
            same = self._q_axis == other._q_axis and self._q_scale.equal(other._q_scale) and \
                self._q_zero_point.equal(other._q_zero_point)
        return bool(same and self._q_int.equal(other._q_int))

    def relu(self):
        """torch's quantized relu: the integers below the zero point raised to it (per tensor)."""
        self._need(per_tensor_affine)
        return self._like(self._q_int.clamp(min=self._q_zero_point))

    def _kernel(self, name):
        kernel = QUANTIZED_KERNELS.get(name)
        if kernel is None:
            raise NotImplementedError(_message(name) + f" (gt's quantized {name} loads with gt.ao: use gt.ao first)")
        return kernel(self)

    def sigmoid(self):
        """torch's quantized sigmoid: this tensor's dtype with torch's fixed output scale 1/256 and zero
        point (0 for quint8, -128 for qint8; ``quantized::sigmoid``, gt.ao's kernel)."""
        return self._kernel("sigmoid")

    def tanh(self):
        """torch's quantized tanh: this tensor's dtype with torch's fixed output scale 2/256 and zero point
        (128 for quint8, 0 for qint8)."""
        return self._kernel("tanh")

    def _hardsigmoid(self, inplace=False):
        """torch's quantized hardsigmoid (``F.hardsigmoid``): this tensor's dtype with torch's fixed output
        scale 1/256 and zero point (0 for quint8, -128 for qint8); ``inplace``: this tensor's integers and
        parameters replaced (views keep their parameters, as torch's)."""
        out = self._kernel("hardsigmoid")
        if not inplace:
            return out
        self._q_int.copy_(out._q_int)
        self._q_scale, self._q_zero_point = out._q_scale, out._q_zero_point
        return self

    def relu_(self):
        """``relu`` in place: the integers themselves raised (views of them see it, as torch's)."""
        self._need(per_tensor_affine)
        self._q_int.clamp_(min=self._q_zero_point)
        return self

    def __deepcopy__(self, memo):
        out = self.clone()
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        """Pickled as its integers and parameters (multiprocessing, copy, plain pickle)."""
        return _rebuild, (self._q_int, self._q_dtype.name, self._q_scheme.name, self._q_scale, self._q_zero_point,
                          self._q_axis)

    def __repr__(self):
        return quantized_repr(self)

    __str__ = __repr__


def _rebuild(ints, dtype, scheme, scale, zero_point, axis):
    return QuantizedTensor._make(ints, dtypes.to_dtype(dtype), QSCHEMES[scheme], scale, zero_point, axis)


def as_quantized(value):
    """``value`` as a gt quantized tensor where it is another library's (torch's, read through its
    methods: ``int_repr``, ``qscheme`` and the parameters, as a state dict passed directly holds
    them); anything else unchanged."""
    if isinstance(value, QuantizedTensor) or not getattr(value, "is_quantized", False):
        return value
    scheme = QSCHEMES.get(str(value.qscheme()).rpartition(".")[2])
    if scheme not in (per_tensor_affine, per_channel_affine, per_channel_affine_float_qparams):
        raise RuntimeError(f"gt reads quantized tensors per tensor or per channel (affine), got {value.qscheme()}")
    dtype = dtypes.to_dtype(str(value.dtype).rpartition(".")[2])
    ints = creation.tensor(value.int_repr().numpy(), dtype=dtypes.QUANTIZED_INT[dtype])
    if dtype == dtypes.quint4x2:
        ints = quantize_math.unpack_nibbles(ints, tuple(value.shape))
    if scheme is per_tensor_affine:
        return QuantizedTensor._make(ints, dtype, scheme, float(value.q_scale()), int(value.q_zero_point()))
    scales = creation.tensor(value.q_per_channel_scales().numpy())
    zero_points = creation.tensor(value.q_per_channel_zero_points().numpy())
    if scheme is per_channel_affine_float_qparams:
        scales, zero_points = scales.float(), zero_points.float()
    else:
        scales, zero_points = scales.double(), zero_points.long()
    return QuantizedTensor._make(ints, dtype, scheme, scales, zero_points, int(value.q_per_channel_axis()))


def _view_method(name):
    def view(self, *args, **kwargs):
        if self._q_scheme is per_tensor_affine:
            return self._like(getattr(self._q_int, name)(*args, **kwargs))
        if name in _STRIDED:
            raise RuntimeError("Setting strides is possible only on uniformly quantized tensor")   # torch's
        return _CHANNEL_VIEWS[name](self, *args, **kwargs)

    view.__name__ = name
    view.__doc__ = (f"``Tensor.{name}`` of the integers, the same parameters (per channel: the axis moved "
                    "where dimensions before it come or go, as torch's; transpose/permute/t raise, as torch's).")
    return view


def _reshaped(self, name, *args, **kwargs):
    ints = getattr(self._q_int, name)(*args, **kwargs)
    channels, axis = self._q_scale.shape[0], self._q_axis
    # torch keeps the axis and checks the length there (a moved channel dimension is not followed)
    if axis >= ints.ndim:
        raise RuntimeError(f"Channel axis out of range in per channel affine dequantization. Got:{axis} "
                           f"Expected: [0, {ints.ndim})")
    if ints.shape[axis] != channels:
        raise RuntimeError(f"length of scales must equal to channel, expected {ints.shape[axis]} got, {channels}")
    return self._like(ints)


def _unsqueeze(self, dim):
    ints = self._q_int.unsqueeze(dim)
    dim = dim + ints.ndim if dim < 0 else dim
    return self._like(ints, self._q_axis + (dim <= self._q_axis))


def _squeeze(self, dim=None):
    dims = range(self.ndim) if dim is None else [dim] if isinstance(dim, int) else list(dim)
    gone = {d % max(self.ndim, 1) for d in dims if self.shape[d] == 1}
    if self._q_axis in gone:
        raise RuntimeError("Squeeze is only possible on non-axis dimension for Per-Channel Quantized Tensors.")
    return self._like(self._q_int.squeeze(dim) if dim is not None else self._q_int.squeeze(),
                      self._q_axis - sum(d < self._q_axis for d in gone))


def _channel_index(self, key):
    """Basic indexing (integers, slices, None, ...) of a per-channel tensor: the axis follows its
    dimension, a slice of it slices the scales and zero points; one channel picked, or advanced
    indexing, raises (torch's does too)."""
    items = key if isinstance(key, tuple) else (key,)
    if any(not (isinstance(k, (int, slice)) or k is None or k is Ellipsis) or isinstance(k, bool) for k in items):
        raise RuntimeError("index: gt indexes a per-channel quantized tensor with integers, slices, None and ... "
                           f"only (torch's advanced indexing asserts a per-tensor one), got {key!r}")
    consumed = sum(k is not None and k is not Ellipsis for k in items)
    if consumed > self.ndim:
        raise IndexError(f"too many indices for tensor of dimension {self.ndim}")
    full = []
    for k in items:
        full += [slice(None)] * (self.ndim - consumed) if k is Ellipsis else [k]
    full += [slice(None)] * (self.ndim - sum(k is not None for k in full))
    dim = out = 0
    for k in full:
        if dim == self._q_axis and k is not None:
            break
        dim, out = dim + (k is not None), out + (not isinstance(k, int))
    picked = k      # the channel dimension's index
    if isinstance(picked, int):
        raise RuntimeError("index: selecting one channel of a per-channel quantized tensor (axis "
                           f"{self._q_axis}) is refused, as torch's; dequantize it, or slice the channel")
    ints = self._q_int[key]
    return QuantizedTensor._make(ints, self._q_dtype, self._q_scheme, self._q_scale[picked],
                                 self._q_zero_point[picked], out)


_VIEWS = ("reshape", "view", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "__getitem__")
_STRIDED = {"transpose", "permute", "t"}      # what torch refuses on a per-channel tensor itself
_CHANNEL_VIEWS = {"reshape": lambda q, *a, **k: _reshaped(q, "reshape", *a, **k),
                  "view": lambda q, *a, **k: _reshaped(q, "view", *a, **k),
                  "flatten": lambda q, *a, **k: _reshaped(q, "flatten", *a, **k),
                  "squeeze": _squeeze, "unsqueeze": _unsqueeze, "__getitem__": _channel_index}
for _name in _VIEWS:
    setattr(QuantizedTensor, _name, _view_method(_name))


def quantized_repr(q):
    """torch's repr of a quantized tensor: its dequantized values, then size, dtype, scheme and
    parameters (``tensor([0.1000], size=(1,), dtype=gt.quint8, quantization_scheme=...)``)."""
    suffixes = []
    dev = q.device
    if getattr(dev, "type", "cpu") != "cpu":
        suffixes.append(f"device='{dev}'")
    suffixes += [f"size={tuple(q.shape)}", f"dtype={q.dtype!r}", f"quantization_scheme={q._q_scheme!r}"]
    if q._q_scheme is per_tensor_affine:
        suffixes += [f"scale={q._q_scale!r}", f"zero_point={q._q_zero_point}"]
    else:
        suffixes += [f"scale={q._q_scale!r}", f"zero_point={q._q_zero_point!r}", f"axis={q._q_axis}"]
    return _add_suffixes("tensor(" + B.format(q.dequantize()._data), suffixes, len("tensor("))


refuse_the_rest(QuantizedTensor, Tensor, set(vars(QuantizedTensor)), _message)
