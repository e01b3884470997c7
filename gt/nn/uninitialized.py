"""torch's ``UninitializedParameter`` and ``UninitializedBuffer``: the placeholders a lazy module
(gt/nn/lazy.py) holds until its first forward tells it the shapes.

An uninitialized tensor holds no values: ``dtype``, ``device``, ``requires_grad`` and
``Module.to(dtype)`` work on it; its ``shape`` raises torch's ``RuntimeError`` and every op on it
torch's ``ValueError``. ``materialize(shape)`` gives it an (uninitialized) array of that shape and
turns the object itself into a ``Parameter`` (or a plain ``Tensor``), so every reference to it (an
optimizer built before the first forward, say) holds the real parameter afterwards.

    >>> w = nn.UninitializedParameter()
    >>> w
    <UninitializedParameter>
    >>> w.materialize((3, 4)); type(w).__name__, w.shape
    ('Parameter', (3, 4))

Also reachable as ``gt.nn.parameter.UninitializedParameter`` (torch's path), with ``is_lazy``.

Where gt differs from torch: ``numel()`` answers 0, as ``size()`` does (torch raises), so the
``repr`` and ``num_parameters()`` of a module holding one work; the tensor's own ``to(dtype)`` /
``double()`` are refused like any op (torch allows them; ``Module.to(dtype)`` works, as in
torch); ``device`` arguments are accepted and ignored (the engine places arrays); a state dict
value that is uninitialized, loaded into an initialized module, is refused as a size mismatch
(torch: the ``shape`` error above).
"""

from gt import backend, dtypes
from gt.backend import B
from gt.nn import parameter
from gt.nn.parameter import Parameter
from gt.tensor import Tensor

_ARRAY = Tensor.__dict__["_array"]   # the slot that holds the array, under the properties below

_SHAPE_MESSAGE = ("Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
                  "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. "
                  "Call `forward` to initialize the parameters before accessing their attributes.")


class UninitializedTensorMixin:
    """What ``UninitializedParameter`` and ``UninitializedBuffer`` share (torch's class of the
    same name). The placeholder array is empty, (0,), in the dtype the tensor will have."""

    __slots__ = ()
    cls_to_become = None

    # Every op reads ``_array`` (Function.apply): reading it is the "use" torch refuses.
    @property
    def _array(self):
        raise ValueError(f"Attempted to use an uninitialized parameter or buffer ({type(self).__name__}). This error "
                         "happens when you are using a `LazyModule` or explicitly manipulating "
                         f"`nn.parameter.{type(self).__name__}` objects. When using LazyModules Call `forward` with "
                         "a dummy batch to initialize the parameters before calling gt functions")

    @_array.setter
    def _array(self, arr):
        _ARRAY.__set__(self, arr)

    # the ways out to Python and numpy, which read ``_data``: refused too
    def numpy(self, *args, **kwargs):
        return self._array

    tolist = item = __array__ = numpy

    # ``_data`` is the placeholder itself, so ``Module.to(dtype)`` can cast it before materializing.
    @property
    def _data(self):
        return _ARRAY.__get__(self)

    @_data.setter
    def _data(self, arr):
        _ARRAY.__set__(self, arr)
        self._placed = None

    @property
    def shape(self):
        raise RuntimeError(_SHAPE_MESSAGE)

    @property
    def dtype(self):
        return B.dtype_of(_ARRAY.__get__(self))

    @property
    def device(self):
        return B.device_of(_ARRAY.__get__(self))

    @property
    def ndim(self):
        return 1

    def size(self, dim=None):
        """The placeholder's size, ``(0,)``, as torch's (whose ``shape`` raises, but ``size()`` answers)."""
        return (0,) if dim is None else (0,)[dim]

    def numel(self):
        """0 (torch raises here; gt answers as ``size()`` does, so ``repr`` and ``num_parameters()`` of a
        module that holds one work)."""
        return 0

    def materialize(self, shape, device=None, dtype=None):
        """Give this tensor an array of ``shape`` (contents undefined, as ``torch.empty``) in its own
        dtype (or ``dtype``), and make it a ``cls_to_become`` (``Parameter`` or ``Tensor``) in place.
        ``device`` is accepted for torch's signature; the array lives where the engine creates it."""
        dtype = self.dtype if dtype is None else dtypes.to_dtype(dtype)
        shape = tuple(shape)
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
            raise ValueError(f"materialize: shape must be a tuple of non-negative ints, got {shape!r}")
        _ARRAY.__set__(self, B.empty(shape, dtype))
        self.__class__ = self.cls_to_become

    def share_memory_(self):
        raise RuntimeError("Can't share memory on an uninitialized parameter or buffer. Call `forward` to initialize "
                           "the parameters before calling `module.share_memory()`.")

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, proto):
        # no values to save: a copy (copy.deepcopy, pickle) is a new placeholder of the same kind
        return type(self), (self.requires_grad, None, self.dtype)


def is_lazy(param):
    """True if ``param`` is an ``UninitializedParameter`` or ``UninitializedBuffer``."""
    return isinstance(param, UninitializedTensorMixin)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet (a lazy module's weight before its first forward).
    ``dtype`` (default: the default float) is the dtype it will have; ``device`` is accepted for
    torch's signature. ``materialize(shape)`` makes it a ``Parameter``."""

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
        backend.mark_tensor_created()
        self._init(B.zeros((0,), dtype), requires_grad)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy batch norm's running statistics before its
    first forward). ``materialize(shape)`` makes it a plain ``Tensor``. ``persistent`` is accepted
    for torch's signature: in gt, whether a buffer is saved is set by ``Module.register_buffer``."""

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        dtype = dtypes.default_float if dtype is None else dtypes.to_dtype(dtype)
        backend.mark_tensor_created()
        self._init(B.zeros((0,), dtype), requires_grad)


# torch's import path, nn.parameter.UninitializedParameter; parameter.py is imported by this module,
# so it cannot import these names itself.
parameter.UninitializedTensorMixin = UninitializedTensorMixin
parameter.UninitializedParameter, parameter.UninitializedBuffer = UninitializedParameter, UninitializedBuffer
parameter.is_lazy = is_lazy
