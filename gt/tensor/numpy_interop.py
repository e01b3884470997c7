"""How gt tensors meet numpy: ``np.asarray(t)``, numpy functions and ufuncs on tensors, and
``format(t, ".4f")``.

Code written for the public gt calls numpy on tensors (``np.mean(t.data)``,
``np.exp(t)``). numpy hands such calls back to the tensor:

- reductions (``np.mean``, ``np.sum``, ``np.max``, ``np.std``, ...) call the tensor's own method
  with numpy's keywords (``dtype=``, ``out=``), which gt's reductions accept; the result is a
  gt tensor, as ``np.mean`` of a torch tensor is a torch tensor;
- ufuncs (``np.exp(t)``, ``arr + t``, ``np.maximum(t, 0)``) come to ``__array_ufunc__``: those
  gt has an op for run as that op (recorded on the tape, sharding kept) and give a gt tensor;
  any other ufunc runs in numpy on the gathered values and gives a numpy array. A tensor that
  requires grad is refused there, as torch refuses ``.numpy()`` on it: the result would leave
  the graph without a word.

Mixed into ``gt.Tensor``; ``Tensor`` below is bound by gt/tensor/core.py once the class exists.
"""

from gt import autograd
from gt.backend import B
from gt.tensor import checks
from gt.tensor._args import _scalar

Tensor = None  # gt.Tensor, bound by gt/tensor/core.py

# numpy ufunc name -> gt's op; operands are tensors or Python numbers by then (see _operand)
_UFUNCS = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "true_divide": lambda a, b: a / b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a ** b,
    "matmul": lambda a, b: a @ b,
    "maximum": lambda a, b: a.maximum(b) if isinstance(a, Tensor) else b.maximum(a),
    "minimum": lambda a, b: a.minimum(b) if isinstance(a, Tensor) else b.minimum(a),
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


def no_out(out, fn):
    """numpy's reductions pass ``out=None``; a real ``out`` array cannot receive a gt result."""
    if out is not None:
        raise TypeError(f"{fn}: out= is not supported for gt tensors; use the returned tensor "
                        f"(e.g. result = np.{fn}(t)), or np.{fn}(t.numpy(), out=...)")


class NumpyMethods:
    __slots__ = ()

    def numpy(self, *, force=False):
        """The values as a numpy array (shares memory with the tensor on the CPU). ``force`` is
        torch's (a copy off the graph and the GPU): gt reads any tensor's values either way."""
        checks.flush()
        return B.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        gt_fn = _UFUNCS.get(ufunc.__name__) if method == "__call__" and not kwargs else None
        if gt_fn is not None:
            return gt_fn(*map(_operand, inputs))
        if autograd.is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in inputs):
            raise TypeError(f"np.{ufunc.__name__} on a gt tensor that requires grad would leave the graph: "
                            "use gt's own op, or np.{0}(t.detach()) for the values only".format(ufunc.__name__))
        args = [x.numpy() if isinstance(x, Tensor) else x for x in inputs]
        out = kwargs.get("out")
        if out is not None and any(isinstance(o, Tensor) for o in out):
            raise TypeError(f"np.{ufunc.__name__}: a gt tensor cannot be the out= of a numpy ufunc; "
                            "assign the result instead")
        return getattr(ufunc, method)(*args, **kwargs)

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
