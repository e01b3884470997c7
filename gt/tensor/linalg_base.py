"""The input check and the identity shared by gt's linear algebra in the tensor layer
(gt/tensor/linalg_methods.py, gt/tensor/linalg_factor.py)."""

from gt import dtypes, errors
from gt.autograd import function
from gt.backend import B


_COMPLEX = (dtypes.complex64, dtypes.complex128)
ShapeError = errors.ShapeError        # the linear-algebra modules import it from here


def matrix_input(a, name, square=False, complex_ok=False):
    """``a`` checked: a float32/float64 tensor (or complex64/complex128 where ``complex_ok``: the ops
    whose complex gradients are torch's) of at least 2 dims (square matrices if ``square``)."""
    if not isinstance(a, function.Tensor):
        raise TypeError(f"{name}(): argument 'A' must be a tensor, not {type(a).__name__}")
    if a.dtype not in (dtypes.float32, dtypes.float64) and not (complex_ok and a.dtype in _COMPLEX):
        if a.dtype not in _COMPLEX:
            refuse_dtype(a, name)
        raise TypeError(f"{name}: expected a float32 or float64 tensor as input, got {a.dtype.name} (gt computes "
                        f"this one on real matrices only)")
    if a.ndim < 2:
        raise ValueError(f"{name}: the input tensor A must have at least 2 dimensions, got shape {a.shape}")
    if square and a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: A must be batches of square matrices, but they are "
                         f"{a.shape[-2]} by {a.shape[-1]} matrices")
    return a


# torch's checks of an integer, bool or half input: the kernels that refuse it ("not implemented for"),
# the functions that check first (named as torch names them), and each one's refusal of half precision
_KERNELS = {"linalg.eigh": "linalg_eigh_cpu", "linalg.lu": "lu_cpu", "linalg.lu_factor": "lu_cpu",
            "linalg.lu_factor_ex": "lu_cpu", "lu": "lu_cpu", "linalg.householder_product": "orgqr_cpu",
            "linalg.solve_triangular": "triangular_solve_cpu", "triangular_solve": "triangular_solve_cpu",
            "cholesky_inverse": "cholesky_inverse_out_cpu", "cholesky_solve": "cholesky_solve_cpu"}
_CHECKED = {"linalg.inv_ex": "linalg.inv", "linalg.cholesky_ex": "linalg.cholesky", "linalg.svdvals": "linalg.svd",
            "linalg.cond": "linalg.svd", "linalg.solve_ex": "linalg.solve", "linalg.lu_solve": "torch.linalg.lu_solve",
            "linalg.matrix_power": "linalg.inv"}
_HALF_KERNELS = {"linalg.det": "lu_cpu", "linalg.solve": "lu_cpu", "linalg.cholesky": "cholesky_cpu",
                 "linalg.qr": "geqrf_cpu", "linalg.svd": "linalg_svd_cpu", "torch.linalg.lu_solve": "linalg.lu_solve_cpu"}


def refuse_dtype(a, name):
    """torch's error for ``a``, an integer, bool or half tensor, given to the linear-algebra
    function ``name``: NotImplementedError from the kernels that have none for it, RuntimeError
    from the functions that check their input first."""
    word = dtypes.torch_type_name(a.dtype.name)
    if name in ("linalg.pinv", "linalg.matrix_rank", "linalg.lstsq"):
        if name == "linalg.pinv":
            raise RuntimeError(f"linalg.pinv({word}{{{list(a.shape)}}}): expected a tensor with 2 or more dimensions "
                               f"of float, double, cfloat or cdouble types")
        raise RuntimeError("This function doesn't handle types other than float and double")
    name = _CHECKED.get(name, name)
    kernel = _KERNELS.get(name)
    if kernel is None and a.dtype in dtypes.HALVES:
        kernel = _HALF_KERNELS.get(name)
        if kernel is None:
            raise RuntimeError(f"{name}: Low precision dtypes not supported. Got {word}")
    if kernel is not None:
        raise NotImplementedError(f"\"{kernel}\" not implemented for '{word}'")
    raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {word}")


def eye_like(a, n, m=None):
    """The (n, m) identity (m defaults to n) in ``a``'s dtype (a constant)."""
    m = n if m is None else m
    rows = B.reshape(B.arange(0, n, 1, dtypes.int64), (n, 1))
    return function.Tensor._wrap(B.astype(rows == B.reshape(B.arange(0, m, 1, dtypes.int64), (1, m)), a.dtype))
