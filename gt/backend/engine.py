"""The engine interface: every primitive the layers above call on ``B``, in one place.

An engine subclasses ``Engine`` and defines each *required* primitive (an abstract method here:
an engine that leaves one out cannot be instantiated, and the error names it). The *optional*
fast paths (joined views, reused buffers, fused updates and kernels, low-precision products)
have working defaults in gt/backend/engine_defaults.py, written from the required primitives; an engine overrides them where its
library does better. So a new engine is this file read top to bottom as a checklist.

Conventions for every primitive: "array" means the engine's own array type (``is_array``); a
``dtype`` argument is a gt dtype (``gt.float32``, or its name); ``axis`` is an int, a tuple of
ints or None (all axes), and ``keepdims`` keeps reduced axes with length 1, as in numpy. Ops
also use Python operators (``+ - * / ** @``, comparisons, in-place ``+=``) on engine arrays,
with numpy's broadcasting and dtype promotion, so an engine's array type must support them.

The engines keep their methods as plain class attributes (``exp = staticmethod(np.exp)``):
no call layer, ``B.exp`` is the library's function itself."""

import abc

from gt.backend.engine_defaults import FastPaths
from gt.backend.engine_math import MathPrimitives
from gt.backend.engine_scatter import ScatterPrimitives
from gt.backend.engine_sorting import SortingPrimitives
from gt.backend.engine_special import SpecialPrimitives
from gt.backend.engine_linalg import LinalgPrimitives
from gt.backend.engine_complex import ComplexPrimitives
from gt.backend.engine_shared import SharedMemoryPrimitives
from gt.backend.engine_sparse import SparsePrimitives
from gt.backend.engine_versions import VersionStates


class Engine(FastPaths, ScatterPrimitives, SortingPrimitives, MathPrimitives, SpecialPrimitives, LinalgPrimitives,
             ComplexPrimitives, SharedMemoryPrimitives, SparsePrimitives, VersionStates, abc.ABC):
    """Base class of gt's array engines (see the module docstring); the primitives of einsum,
    scatters and index searches are declared in gt/backend/engine_scatter.py, those of sorting,
    scans and sampling in gt/backend/engine_sorting.py, those of torch's math functions, ``prod`` and ``cumprod`` in gt/backend/engine_math.py, those of torch.special
    and ``cummax``/``cummin`` in gt/backend/engine_special.py, those of sparse products in
    gt/backend/engine_sparse.py."""

    # ---- identity and devices -------------------------------------------------------------
    @property
    @abc.abstractmethod
    def name(self):
        """The engine's name, as ``GT_BACKEND`` and ``gt.get_backend()`` spell it (``"numpy"``)."""

    @property
    @abc.abstractmethod
    def device(self):
        """The device new arrays are made on (``"cpu"``, ``"cuda:1"``); assignable (the mesh sets it)."""

    supports_bfloat16 = False
    """Whether ``astype``/``matmul_lowp`` handle ``gt.bfloat16`` (callers check this, e.g. autocast)."""

    @abc.abstractmethod
    def on_device(self, device):
        """Context manager: arrays made inside the block go to ``device`` (a name, e.g. ``"cuda:1"``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def to_device(self, arr, device):
        """``arr`` on ``device``: the same array when it is there already, else a copy there."""
        raise NotImplementedError

    @abc.abstractmethod
    def device_of(self, arr):
        """The device name ``arr`` lives on (``"cpu"``, ``"cuda:0"``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def cuda_device_count(self):
        """How many CUDA GPUs this engine can use (0 for a host-only engine)."""
        raise NotImplementedError

    # ---- process-wide flags ----------------------------------------------------------------
    @abc.abstractmethod
    def set_warn_always(self, flag):
        """Hand ``gt.set_warn_always(flag)`` (a bool) to the library's own warn-once warnings, if it has any."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_flush_denormal(self, flag):
        """Flush subnormal floats to zero on the CPU (``flag`` True) or keep them; True when the
        mode asked for is now in force (torch's ``set_flush_denormal``)."""
        raise NotImplementedError

    # ---- dtypes and conversion --------------------------------------------------------------
    @abc.abstractmethod
    def native_dtype(self, dtype):
        """The array library's own dtype for the gt dtype ``dtype`` (``np.float32``, ``torch.int64``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def dtype_of(self, arr):
        """The gt dtype of ``arr``; TypeError naming the array's dtype when gt has none for it."""
        raise NotImplementedError

    @abc.abstractmethod
    def is_array(self, value):
        """True when ``value`` is this engine's array type."""
        raise NotImplementedError

    @abc.abstractmethod
    def numel(self, arr):
        """The number of elements of ``arr`` (an int)."""
        raise NotImplementedError

    @abc.abstractmethod
    def asarray(self, data, dtype=None, copy=False):
        """An array from Python data, a numpy array or a torch tensor; Python floats become
        float32, ints int64, bools bool unless ``dtype`` says otherwise; ``copy`` forces a copy.
        TypeError naming the data for ragged or non-numeric input."""
        raise NotImplementedError

    @abc.abstractmethod
    def to_numpy(self, arr):
        """``arr`` as a host numpy array (sharing memory where the engine can; bfloat16 as float32)."""
        raise NotImplementedError

    @abc.abstractmethod
    def as_torch(self, arr):
        """``arr`` as a torch tensor sharing its memory (torch.distributed reduces into it in place)."""
        raise NotImplementedError

    @abc.abstractmethod
    def astype(self, arr, dtype):
        """``arr`` in gt dtype ``dtype``: ``arr`` itself when it already has it, else a converted copy."""
        raise NotImplementedError

    @abc.abstractmethod
    def is_view(self, arr):
        """True when ``arr`` shares another array's memory (a view; a leaf cannot own it)."""
        raise NotImplementedError

    @abc.abstractmethod
    def is_contiguous(self, arr):
        """True when ``arr`` is C-contiguous (row-major, no gaps)."""
        raise NotImplementedError

    @abc.abstractmethod
    def is_bool(self, arr):
        """True when ``arr``'s dtype is bool."""
        raise NotImplementedError

    @abc.abstractmethod
    def copy(self, arr):
        """A new array with ``arr``'s shape, dtype, device and values, sharing no memory."""
        raise NotImplementedError

    @abc.abstractmethod
    def format(self, arr):
        """``arr``'s values as text for ``repr(tensor)`` (torch's layout: gt/backend/print_options.py)."""
        raise NotImplementedError

    @abc.abstractmethod
    def item(self, arr):
        """The one value of a 1-element ``arr`` as a Python number or bool."""
        raise NotImplementedError

    @abc.abstractmethod
    def tolist(self, arr):
        """``arr`` as nested Python lists of numbers (a number for a 0-d array)."""
        raise NotImplementedError

    # ---- creation and randomness ------------------------------------------------------------
    @abc.abstractmethod
    def zeros(self, shape, dtype):
        """A new array of ``shape`` (a tuple of ints) and gt ``dtype``, filled with 0, on ``device``."""
        raise NotImplementedError

    @abc.abstractmethod
    def ones(self, shape, dtype):
        """A new array of ``shape`` and ``dtype`` filled with 1, on ``device``."""
        raise NotImplementedError

    @abc.abstractmethod
    def full(self, shape, value, dtype):
        """A new array of ``shape`` and ``dtype`` filled with the Python number ``value``."""
        raise NotImplementedError

    @abc.abstractmethod
    def empty(self, shape, dtype):
        """A new array of ``shape`` and ``dtype`` with undefined contents."""
        raise NotImplementedError

    @abc.abstractmethod
    def arange(self, start, stop, step, dtype):
        """1-D array ``start, start + step, ...`` below ``stop``, in ``dtype`` (numpy's arange)."""
        raise NotImplementedError

    @abc.abstractmethod
    def manual_seed(self, seed):
        """Restart the random generator from the int ``seed`` (the same draws on every engine)."""
        raise NotImplementedError

    @abc.abstractmethod
    def randn(self, shape, dtype):
        """An array of ``shape`` and float ``dtype`` drawn from the standard normal distribution."""
        raise NotImplementedError

    @abc.abstractmethod
    def rand(self, shape, dtype):
        """An array of ``shape`` and float ``dtype`` drawn uniformly from [0, 1)."""
        raise NotImplementedError

    @abc.abstractmethod
    def randint(self, low, high, shape):
        """An int64 array of ``shape`` drawn uniformly from the ints in [low, high)."""
        raise NotImplementedError

    @abc.abstractmethod
    def permutation(self, n):
        """A random permutation of ``0 .. n-1`` as a 1-D int64 array."""
        raise NotImplementedError

    @abc.abstractmethod
    def get_rng_state(self):
        """The random generator's state as a JSON-serialisable dict (what checkpoints store)."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_rng_state(self, state):
        """Continue drawing from a ``get_rng_state`` dict; ValueError naming it when it is not one."""
        raise NotImplementedError

    # ---- elementwise (arrays broadcast as in numpy; the result in the inputs' dtype) ---------
    @abc.abstractmethod
    def exp(self, x):
        """``e ** x`` elementwise."""
        raise NotImplementedError

    @abc.abstractmethod
    def log(self, x):
        """Natural logarithm elementwise (-inf at 0, nan below)."""
        raise NotImplementedError

    @abc.abstractmethod
    def sqrt(self, x):
        """Square root elementwise (nan below 0)."""
        raise NotImplementedError

    @abc.abstractmethod
    def rsqrt(self, x):
        """``1 / sqrt(x)`` elementwise (inf at 0, nan below): torch's own kernel on the torch engine."""
        raise NotImplementedError

    @abc.abstractmethod
    def tanh(self, x):
        """Hyperbolic tangent elementwise."""
        raise NotImplementedError

    @abc.abstractmethod
    def sigmoid(self, x):
        """``1 / (1 + exp(-x))`` elementwise, without overflow for large ``|x|``."""
        raise NotImplementedError

    @abc.abstractmethod
    def erf(self, x):
        """The error function elementwise, to the precision of ``x``'s dtype."""
        raise NotImplementedError

    @abc.abstractmethod
    def relu(self, x):
        """``max(x, 0)`` elementwise (NaN stays NaN), one pass over ``x``."""
        raise NotImplementedError

    @abc.abstractmethod
    def relu_(self, x):
        """``relu(x)`` written into ``x`` itself (an array the caller made and owns); returns ``x``."""
        raise NotImplementedError

    @abc.abstractmethod
    def relu_backward(self, grad, out):
        """``grad`` where ``out = relu(x)`` is not <= 0 (positive or NaN, as torch), 0 elsewhere:
        ReLU's gradient read from its output, which the next op keeps anyway (nothing extra is saved)."""
        raise NotImplementedError

    @abc.abstractmethod
    def gelu_with_grad(self, x):
        """``(gelu(x), d gelu / dx)`` elementwise for the exact GELU ``x * Phi(x)`` (Phi the standard
        normal CDF): the derivative is ``Phi(x) + x * phi(x)``. One primitive for both, as they share
        the costly part, each engine's fastest way to float32 accuracy."""
        raise NotImplementedError

    @abc.abstractmethod
    def abs(self, x):
        """``|x|`` elementwise."""
        raise NotImplementedError

    @abc.abstractmethod
    def sign(self, x):
        """-1, 0 or 1 elementwise, in ``x``'s dtype."""
        raise NotImplementedError

    @abc.abstractmethod
    def floor(self, x):
        """The largest integer not above each float element, in ``x``'s dtype (inf and NaN stay,
        here and in ``ceil``, ``trunc``, ``round``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def ceil(self, x):
        """The smallest integer not below each float element."""
        raise NotImplementedError

    @abc.abstractmethod
    def trunc(self, x):
        """Each float element rounded toward zero."""
        raise NotImplementedError

    @abc.abstractmethod
    def round(self, x):
        """Each float element rounded to the nearest integer, halves to even."""
        raise NotImplementedError

    @abc.abstractmethod
    def maximum(self, a, b):
        """The larger of ``a`` and ``b`` elementwise; either may be a Python number."""
        raise NotImplementedError

    @abc.abstractmethod
    def minimum(self, a, b):
        """The smaller of ``a`` and ``b`` elementwise; either may be a Python number."""
        raise NotImplementedError

    @abc.abstractmethod
    def clip(self, x, low, high):
        """``x`` limited to [low, high] elementwise (Python numbers; either may be None)."""
        raise NotImplementedError

    @abc.abstractmethod
    def where(self, cond, x, y):
        """``x`` where the bool array ``cond`` holds, else ``y`` (arrays or Python numbers)."""
        raise NotImplementedError

    @abc.abstractmethod
    def isfinite(self, x):
        """A bool array: True where ``x`` is neither inf nor nan."""
        raise NotImplementedError

    @abc.abstractmethod
    def logical_not(self, x):
        """The bool array ``not x`` elementwise."""
        raise NotImplementedError

    # ---- reductions (numpy's result dtypes: the mean of ints is float64) --------------------
    @abc.abstractmethod
    def sum(self, x, axis=None, keepdims=False):
        """The sum of ``x`` over ``axis``."""
        raise NotImplementedError

    @abc.abstractmethod
    def mean(self, x, axis=None, keepdims=False):
        """The mean of ``x`` over ``axis``."""
        raise NotImplementedError

    @abc.abstractmethod
    def max(self, x, axis=None, keepdims=False):
        """The largest value of ``x`` over ``axis``; ValueError for an empty reduction."""
        raise NotImplementedError

    @abc.abstractmethod
    def min(self, x, axis=None, keepdims=False):
        """The smallest value of ``x`` over ``axis``; ValueError for an empty reduction."""
        raise NotImplementedError

    @abc.abstractmethod
    def argmax(self, x, axis=None, keepdims=False):
        """int64 position of the first largest value along the int ``axis`` (or of the flattened ``x``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def argmin(self, x, axis=None, keepdims=False):
        """int64 position of the first smallest value along the int ``axis`` (or of the flattened ``x``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def all(self, x):
        """Python bool: every element of ``x`` is true."""
        raise NotImplementedError

    @abc.abstractmethod
    def any(self, x):
        """Python bool: some element of ``x`` is true."""
        raise NotImplementedError

    # ---- linear algebra and layout ----------------------------------------------------------
    @abc.abstractmethod
    def matmul(self, a, b):
        """numpy's matmul: ``(..., n, k) @ (..., k, m) -> (..., n, m)``, batch axes broadcast, dtypes promoted."""
        raise NotImplementedError

    @abc.abstractmethod
    def reshape(self, x, shape):
        """``x`` with ``shape`` (a view where possible); ``x`` itself when the shape is unchanged."""
        raise NotImplementedError

    @abc.abstractmethod
    def transpose(self, x, axes):
        """The view of ``x`` with its axes in the order ``axes`` (a permutation of ``range(x.ndim)``)."""
        raise NotImplementedError

    def swap_last(self, x):
        """The view of ``x`` (2 or more dims) with its last two axes swapped: ``transpose`` with those
        axes, in one call where the engine has one (every gradient of a product takes a few)."""
        axes = list(range(x.ndim))
        axes[-1], axes[-2] = axes[-2], axes[-1]
        return self.transpose(x, axes)

    @abc.abstractmethod
    def diagonal_view(self, x, offset, dim1, dim2):
        """The view of ``x``'s diagonal in the planes of ``dim1``, ``dim2`` (``offset`` above it), as
        a new last axis (torch's ``diagonal``); writable where ``x`` is (``x.diagonal().fill_(0)``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def broadcast_to(self, x, shape):
        """A read-only view of ``x`` broadcast to ``shape`` (numpy's rules)."""
        raise NotImplementedError

    @abc.abstractmethod
    def concatenate(self, arrays, axis):
        """One new array: the sequence ``arrays`` joined along the existing ``axis``."""
        raise NotImplementedError

    @abc.abstractmethod
    def stack(self, arrays, axis):
        """One new array: the same-shaped ``arrays`` stacked along a new ``axis``."""
        raise NotImplementedError

    @abc.abstractmethod
    def split(self, x, indices, axis):
        """numpy's split: a list of views of ``x`` cut before each int in ``indices`` along ``axis``
        (an int ``indices``: that many equal parts, ValueError when they are not equal)."""
        raise NotImplementedError

    # ---- indexing (numpy's rules: basic, advanced and bool indices, negative steps) ----------
    @abc.abstractmethod
    def getitem(self, x, index):
        """``x[index]``: a view for basic indices, a copy for index arrays."""
        raise NotImplementedError

    @abc.abstractmethod
    def setitem(self, x, index, value):
        """``x[index] = value`` in place (``value`` an array or a Python number); returns None."""
        raise NotImplementedError

    @abc.abstractmethod
    def index_add(self, target, index, values):
        """``target[index] += values`` in place, repeated int indices adding up (scatter-add); returns ``target``."""
        raise NotImplementedError
