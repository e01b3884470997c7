"""torch's Householder functions: ``geqrf`` (LAPACK's QR factorization in its compact form),
``orgqr`` / ``linalg.householder_product`` (the Q of that form) and ``ormqr`` (Q, or its conjugate
transpose, applied to a matrix from either side without forming Q).

The compact form holds R on and above the diagonal of ``a`` and the Householder vectors below it:
v_i is column i of ``a`` under the diagonal with a 1 on it, ``H_i = I - tau_i v_i v_i^H`` and
``Q = H_1 H_2 ... H_k``. ``geqrf`` has no derivative (torch's); ``orgqr`` and ``ormqr`` are composed
from differentiable ops, one reflection of every column at a time, so their gradients for the
reflectors, tau and the other matrix are torch's. float32, float64, complex64 and complex128; leading
axes are batch axes.
"""

import collections

from gt import dtypes
from gt.autograd import function
from gt.ops import linalg_factor_ops as ops
from gt.tensor.linalg_base import ShapeError, eye_like, matrix_input

# torch.return_types.geqrf
GeqrfResult = collections.namedtuple("geqrf", ["a", "tau"])


def geqrf(input):
    """``(a, tau)``: LAPACK's geqrf of ``input`` (..., m, n), k = min(m, n). R is the upper triangle
    of a, the Householder vectors are below its diagonal and tau (..., k) holds their scales (see the
    module's docstring); ``householder_product(a, tau)`` is the reduced Q. No gradient (torch's: the
    results are recorded and a backward through them raises NotImplementedError)."""
    A = _matrix(input, "geqrf")
    m, n = A.shape[-2:]
    k = min(m, n)
    packed = ops.Geqrf.apply(A)
    batch = tuple(A.shape[:-2])
    return GeqrfResult(packed[..., :m * n].reshape(batch + (m, n)), packed[..., m * n:m * n + k])


def householder_product(A, tau):
    """The first n columns (..., m, n) of the product ``H_1 ... H_k`` of the Householder reflections
    ``H_i = I - tau_i v_i v_i^H``, v_i the i-th column of A (..., m, n) below the diagonal with a 1
    on it, tau (..., k), k <= n <= m (LAPACK's orgqr, the Q of ``geqrf``; ``gt.orgqr``). Composed from
    differentiable ops: gradients for A and tau, complex ones with torch's conjugates."""
    A = matrix_input(A, "linalg.householder_product", complex_ok=True)
    m, n = A.shape[-2:]
    if not isinstance(tau, function.Tensor) or tau.dtype != A.dtype:
        raise TypeError(f"linalg.householder_product: tau must be a tensor of A's dtype {A.dtype.name}, got "
                        f"{getattr(tau, 'dtype', type(tau).__name__)}")
    k = _check_shapes(A, tau)
    q = eye_like(A, m, n).expand(tuple(A.shape[:-2]) + (m, n))
    return _reflect(_vectors(A, k), tau, q, left=True, conjugate=False)


def _check_shapes(A, tau):
    """k, tau's last size, after torch's checks in torch's order (A (..., m, n) with m >= n, k <= n,
    tau (..., k) with A's batch shape); torch's words, the shapes added."""
    m, n = A.shape[-2:]
    shapes = f" (A of shape {tuple(A.shape)}, tau of shape {tuple(tau.shape)})"
    if n > m:
        raise ShapeError("linalg.householder_product: input.shape[-2] must be greater than or equal to "
                         "input.shape[-1]" + shapes)
    if tau.ndim == 0:
        raise IndexError("linalg.householder_product: Dimension specified as -1 but tensor has no dimensions "
                         "(tau is 0-d)")
    if tau.shape[-1] > n:
        raise ShapeError("linalg.householder_product: input.shape[-1] must be greater than or equal to "
                         "tau.shape[-1]" + shapes)
    if tau.ndim != A.ndim - 1:
        raise ShapeError("linalg.householder_product: Expected tau to have one dimension less than input, but got "
                         f"tau.ndim equal to {tau.ndim} and input.ndim is equal to {A.ndim}" + shapes)
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise ShapeError("linalg.householder_product: Expected batch dimensions of tau to be equal to "
                         f"input.shape[:-2], but got {list(tau.shape[:-1])}" + shapes)
    return tau.shape[-1]


def orgqr(input, input2):
    """torch.orgqr (its argument names): ``linalg.householder_product(input, input2)``, input2 being tau."""
    return householder_product(input, input2)


def ormqr(input, input2, input3, left=True, transpose=False):
    """``Q @ other`` for the Q of the compact form (``input`` (..., mn, k) and tau ``input2``, as
    ``geqrf`` gives them; Q is mn x mn) and other ``input3`` (torch's argument names): ``left=False``
    gives ``other @ Q``, ``transpose=True`` puts Q's conjugate transpose in Q's place. other is
    (..., m, n), mn its m (``left``) or n; the batch shapes must be equal (no broadcasting, torch's).
    Gradients for all three, torch's."""
    tau = input2
    A, C = _matrix(input, "ormqr", "input", False), _matrix(input3, "ormqr", "other", False)
    _ormqr_checks(A, tau, C, left)
    _lapack_dtype(A, "ormqr", "input")        # after the checks that compare dtypes, as torch's
    return _reflect(_vectors(A, tau.shape[-1]), tau, C, left, transpose)


def _matrix(x, name, arg="input", dtype_checked=True):
    if not isinstance(x, function.Tensor):
        raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(x).__name__}")
    if x.ndim < 2:
        raise RuntimeError(f"{name}: {arg} must have at least 2 dimensions.")
    if dtype_checked:
        _lapack_dtype(x, name, arg)
    return x


def _lapack_dtype(x, name, arg):
    if not x.dtype.differentiable or x.dtype in (dtypes.float16, dtypes.bfloat16):
        # torch: NotImplementedError ("geqrf_cpu" not implemented for 'Long'); gt.linalg's TypeError
        raise TypeError(f"{name}: expected a float32, float64, complex64 or complex128 tensor as {arg}, got "
                        f"{x.dtype.name}")


def _ormqr_checks(A, tau, C, left):
    """torch's checks of ormqr, in its order and words (RuntimeError)."""
    if not isinstance(tau, function.Tensor):
        raise TypeError(f"ormqr(): argument 'input2' must be Tensor, not {type(tau).__name__}")
    if tau.ndim == 0:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    side, k = (-2 if left else -1), tau.shape[-1]
    if C.shape[side] != A.shape[-2]:
        raise RuntimeError(f"ormqr: other.shape[{side}] must be equal to input.shape[-2]")
    if min(C.shape[side], A.shape[-1]) != k:
        raise RuntimeError(f"ormqr: tau.shape[-1] must be equal to min(other.shape[{side}], input.shape[-1])")
    if A.ndim != C.ndim:
        raise RuntimeError(f"ormqr: Expected other to have the same number of dimensions as input, but got "
                           f"other.ndim equal to {C.ndim} and input.ndim is equal to {A.ndim}")
    batch = list(A.shape[:-2])
    if A.ndim > 2 and list(tau.shape[:-1]) != batch:
        raise RuntimeError(f"ormqr: Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
                           f"{list(tau.shape[:-1])}")
    if A.ndim > 2 and list(C.shape[:-2]) != batch:
        raise RuntimeError(f"ormqr: Expected batch dimensions of other to be equal to input.shape[:-2], but "
                           f"got {list(C.shape[:-2])}")
    for name, x in (("tau", tau), ("other", C)):
        if x.dtype != A.dtype:
            raise RuntimeError(f"ormqr: Expected input and {name} to have the same dtype, but input has dtype "
                               f"{A.dtype.name} and {name} has dtype {x.dtype.name}")


def _vectors(A, k):
    """The k Householder vectors of the compact form A (..., m, >= k) as columns (..., m, k)."""
    m = A.shape[-2]
    return A[..., :, :k].tril(-1) + eye_like(A, m, k)


def _reflect(v, tau, c, left, conjugate):
    """``Q c`` (``left``) or ``c Q``, Q = H_1 ... H_k (its conjugate transpose when ``conjugate``):
    one rank-1 update of c per reflection, in the order the product applies them."""
    k = tau.shape[-1]
    if k == 0:
        return c.clone()        # a new tensor, as torch's, not ``other`` (or the identity's expanded view)
    scales = tau.conj() if conjugate else tau
    order = range(k) if left == conjugate else range(k - 1, -1, -1)
    for i in order:
        vi, ti = v[..., :, i:i + 1], scales[..., i:i + 1].unsqueeze(-1)
        c = c - (ti * vi) @ (vi.mH @ c) if left else c - (c @ vi) @ (ti * vi.mH)
    return c
