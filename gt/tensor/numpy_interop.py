"""How gt tensors meet numpy: ``np.asarray(t)``, numpy functions and ufuncs on tensors, and
``format(t, ".4f")``.

Code written for the public gt calls numpy on tensors (``np.mean(t.data)``,
``np.exp(t)``). numpy hands such calls back to the tensor:

- reductions (``np.mean``, ``np.sum``, ``np.max``, ``np.std``, ...) call the tensor's own method
  with numpy's keywords (``dtype=``, ``out=``), which gt's reductions accept; the result is a
  gt tensor (torch 2.13's own reductions refuse numpy's ``axis=None``: gt keeps the public gt's);
- ufuncs (``np.exp(t)``, ``arr + t``, ``np.maximum(t, 0)``) come to ``__array_ufunc__``: those
  gt has an op for run as that op (recorded on the tape, sharding kept) and give a gt tensor;
- any other ufunc, and any numpy function that falls back to the tensor's values (``np.clip``,
  ``np.round``, ``np.transpose``, ``np.cumsum``, ``np.linalg.inv``, ...), runs in numpy and
  comes back as a gt tensor through ``__array_wrap__``, as a torch tensor does: a 0-d result
  stays a tensor and a bool result is uint8 (torch's ``__array_wrap__`` rule). Reading the
  values of a tensor that requires grad (with grad mode on) raises torch's RuntimeError, as
  torch's ``__array__`` does: the result would leave the graph without a word.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import autograd
from gt.backend import B
from gt.tensor import checks
from gt.tensor._args import _scalar
from gt.tensor.promotion import result_dtype

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# numpy ufunc name -> gt's op; operands are tensors or Python numbers by then (see _operand)
_UFUNCS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "true_divide": lambda a, b: a / b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a ** b,
    "matmul": lambda a, b: _array_matmul(a, b),
    "maximum": lambda a, b: _tensor_method("maximum", a, b),
    "minimum": lambda a, b: _tensor_method("minimum", a, b),
    "negative": lambda a: -a,
    "positive": lambda a: a,
    "absolute": lambda a: a.abs(),
    "exp": lambda a: a.exp(),
    "log": lambda a: a.log(),
    "sqrt": lambda a: a.sqrt(),
    "tanh": lambda a: a.tanh(),
    "greater": lambda a, b: a > b,
    "greater_equal": lambda a, b: a >= b,
    "less": lambda a, b: a < b,
    "less_equal": lambda a, b: a <= b,
    "equal": lambda a, b: a == b,
    "not_equal": lambda a, b: a != b,
}


def _operand(x):
    """numpy scalars become Python numbers (so they never widen a float32 tensor, as in
    ``t * np.float64(0.5)``); arrays become tensors, so no ndarray operator runs again."""
    if isinstance(x, Tensor):
        return x
    x = _scalar(x)
    return x if isinstance(x, (int, float, bool)) else Tensor._wrap(B.asarray(x))


def _array_matmul(a, b):
    """``array @ t`` in the two's promoted dtype: gt's extension (torch refuses the array), which
    the tensors' own product, keeping one dtype as torch's, would refuse for two dtypes."""
    dtype = result_dtype(a, b)
    return (a if a.dtype is dtype else a.to(dtype)) @ (b if b.dtype is dtype else b.to(dtype))


def _tensor_method(name, a, b):
    """``t.maximum(other)`` for a symmetric ufunc, the tensor first; a number (``np.maximum(t, 0)``)
    as a 0-d tensor, since gt's methods, as torch's, take only a tensor there."""
    if not isinstance(a, Tensor):
        a, b = b, a
    return getattr(a, name)(b if isinstance(b, Tensor) else Tensor._wrap(B.asarray(b)))


def no_out(out, fn):
    """numpy's reductions pass ``out=None``; a real ``out`` array cannot receive a gt result."""
    if out is not None:
        raise TypeError(f"{fn}: out= is not supported for gt tensors; use the returned tensor "
                        f"(e.g. result = np.{fn}(t)), or np.{fn}(t.numpy(), out=...)")


NUMPY_OF_GRAD = "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."


def _converted(arr, dtype, copy, gt_dtype):
    """``__array__``'s ``dtype``/``copy`` on the tensor's numpy values (numpy's contract)."""
    if dtype is not None and arr.dtype != dtype:
        if copy is False:
            raise ValueError(f"Unable to avoid copy while creating an array of {dtype} from a {gt_dtype} "
                             "tensor as requested (copy=False)")
        return arr.astype(dtype)
    # np.array(t) asks for copy=True and trusts what comes back: the engine's own array would
    # let writes into "the copy" change the tensor
    return arr.copy() if copy else arr


def _from_numpy_result(result):
    """torch's ``__array_wrap__``: a numpy result as a tensor sharing its memory, bool as uint8."""
    if result.dtype.kind == "b":
        result = result.astype("uint8")
    return Tensor._wrap(B.asarray(result))


def _numpy_ufunc(ufunc, method, inputs, kwargs):
    """A ufunc gt has no op for: numpy on the values, as torch runs it (torch tensors have no
    ``__array_ufunc__``: numpy reads them through ``__array__`` and wraps the result back)."""
    if method == "at" and isinstance(inputs[0], Tensor):
        raise TypeError("first operand must be array")      # numpy's words for torch's tensors
    out = kwargs.get("out")
    if out is not None and any(isinstance(o, Tensor) for o in out):
        raise TypeError(f"np.{ufunc.__name__}: a gt tensor cannot be the out= of a numpy ufunc (numpy: "
                        "return arrays must be of ArrayType); assign the result instead")
    args = [x.__array__() if isinstance(x, Tensor) else x for x in inputs]
    result = getattr(ufunc, method)(*args, **kwargs)
    if out is not None or result is None or method == "outer":   # numpy wraps neither out= nor outer
        return result
    if isinstance(result, tuple):
        return tuple(_from_numpy_result(r) for r in result)
    return _from_numpy_result(result)


class NumpyMethods:
    __slots__ = ()

    def numpy(self, *, force=False):
        """The values as a numpy array (shares memory with the tensor on the CPU). ``force`` is
        torch's (a copy off the graph and the GPU): gt reads any tensor's values either way (the
        public gt's ``w.numpy()`` of a weight); ``np.asarray(t)`` refuses one that requires grad,
        as torch's does."""
        checks.flush()
        return B.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(NUMPY_OF_GRAD)
        checks.flush()                  # numpy()'s body, inlined: np.asarray(t) is on hot paths
        arr = B.to_numpy(self._data)
        if dtype is None and not copy:
            return arr
        return _converted(arr, dtype, copy, self.dtype)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        """numpy's result of a function that ran on the tensor's values (``np.clip(t, 0, 1)``,
        ``np.round(t)``, ``np.linalg.inv(t)``) as a tensor, as torch's: 0-d results stay tensors,
        bool results become uint8."""
        return _from_numpy_result(array)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        gt_fn = _UFUNCS.get(ufunc.__name__) if method == "__call__" and not kwargs else None
        if gt_fn is not None:
            return gt_fn(*map(_operand, inputs))
        return _numpy_ufunc(ufunc, method, inputs, kwargs)

    def __dlpack__(self, *args, **kwargs):
        """The DLPack capsule of the tensor's engine array (numpy's or torch's, a sharded tensor's
        gathered values), so ``np.from_dlpack(t)`` and ``torch.from_dlpack(t)`` share its memory."""
        checks.flush()
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __contains__(self, element):
        """``x in t``: whether any element equals ``x`` (a number or a tensor that broadcasts), as torch's."""
        element = _scalar(element)      # numpy's scalars are numbers here, as torch takes them
        if not isinstance(element, (Tensor, int, float, bool)):
            raise RuntimeError(f"Tensor.__contains__ only supports Tensor or scalar, but you passed in a "
                               f"{type(element)}.")
        return bool((self == element).any())

    def __format__(self, spec):
        # torch's rule: a plain 0-d tensor formats as its number (f"{loss:.4f}"), others (a
        # Parameter too) as their repr, which refuses a format spec
        if self.ndim == 0 and type(self) is Tensor:
            return format(self.item(), spec)
        return object.__format__(self, spec)
