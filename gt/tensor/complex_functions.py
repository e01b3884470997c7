"""torch's top-level complex-number functions: ``gt.complex``, ``gt.polar``, ``gt.view_as_real``,
``gt.view_as_complex``, and the functional forms of the methods (``gt.real``, ``gt.imag``,
``gt.conj``, ``gt.angle``...: gt/tensor/complex_methods.py)."""

import collections

from gt.autograd import forward_ad, is_grad_enabled
from gt.backend import B
from gt.ops import complex_ops as cx
from gt.tensor.core import Tensor
from gt.tensor.toplevel_checks import _tensor_arg

__all__ = ["complex", "polar", "view_as_real", "view_as_complex", "conj", "conj_physical", "resolve_conj",
           "resolve_neg", "is_conj", "is_neg", "real", "imag", "angle"]


def _same_float(a, b, fn):
    """torch's checks of the two real parts of ``complex``/``polar``: float32 or float64, one dtype."""
    for x in (a, b):
        if x.dtype.name not in ("float32", "float64"):
            raise RuntimeError(f"{fn}: Expected both inputs to be Float or Double tensors but got {a.dtype!r} and "
                               f"{b.dtype!r}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"{fn}: Expected object of scalar type {a.dtype!r} but got scalar type {b.dtype!r} for "
                           f"second argument")


def complex(real, imag):  # noqa: A001  (torch's name)
    """The complex tensor ``real + 1j * imag`` (broadcast): float32 parts give complex64,
    float64 complex128; the gradients are the real and imaginary parts of the output's."""
    re, im = _tensor_arg(real, "complex", "real"), _tensor_arg(imag, "complex", "imag")
    _same_float(re, im, "complex")
    return cx.Complex.apply(re, im)


def polar(abs, angle):  # noqa: A002  (torch's name)
    """The complex tensor ``abs * (cos(angle) + 1j * sin(angle))`` (differentiable in both)."""
    r, theta = _tensor_arg(abs, "polar", "abs"), _tensor_arg(angle, "polar", "angle")
    _same_float(r, theta, "polar")
    return cx.Complex.apply(r * theta.cos(), r * theta.sin())


def view_as_real(input):
    """The complex ``input`` as a real view of shape ``input.shape + (2,)`` (real and imaginary
    parts last); writes through it change ``input``."""
    x = _tensor_arg(input, "view_as_real")
    if not x.dtype.is_complex:
        raise RuntimeError(f"view_as_real is only supported for complex tensors (got {x.dtype!r})")
    return cx.ViewAsReal.apply(x)


def view_as_complex(input):
    """The real ``input`` (float32 or float64, last dimension 2 with stride 1) as a complex view
    of shape ``input.shape[:-1]``; writes through it change ``input``."""
    x = _tensor_arg(input, "view_as_complex")
    if x.dtype.name not in ("float32", "float64"):
        raise RuntimeError(f"view_as_complex is only supported for float and double tensors, but got a tensor of "
                           f"scalar type: {x.dtype!r}")
    if x.ndim == 0 or x.shape[-1] != 2:
        raise RuntimeError(f"Tensor must have a last dimension of size 2 (got shape {tuple(x.shape)})")
    return cx.ViewAsComplex.apply(x)


def conj(input):
    """The complex conjugate (``input.conj()``): ``input`` itself when real."""
    return _tensor_arg(input, "conj").conj()


def conj_physical(input):
    """The complex conjugate, materialised (a copy of a real ``input``; differentiable)."""
    return _tensor_arg(input, "conj_physical").conj_physical()


def resolve_conj(input):
    """``input`` with a lazy conjugation applied: ``input`` itself (gt's conjugates are never lazy)."""
    return _tensor_arg(input, "resolve_conj")


def resolve_neg(input):
    """``input`` with a lazy negation applied: ``input`` itself (gt has none)."""
    return _tensor_arg(input, "resolve_neg")


def is_conj(input):
    """Whether ``input`` is a lazily conjugated view: never in gt (``conj()`` copies)."""
    return _tensor_arg(input, "is_conj").is_conj()


def is_neg(input):
    """Whether ``input`` is a lazily negated view: never in gt."""
    return _tensor_arg(input, "is_neg").is_neg()


def real(input):
    """The real part (a view of a complex ``input``; ``input`` itself when real)."""
    return _tensor_arg(input, "real").real


def imag(input):
    """The imaginary part of a complex ``input`` (a view); RuntimeError for a real one, as torch."""
    return _tensor_arg(input, "imag").imag


def angle(input):
    """The argument of each element (``input.angle()``); integers give the default float dtype."""
    return _tensor_arg(input, "angle").angle()


EigResult = collections.namedtuple("EigResult", ["eigenvalues", "eigenvectors"])   # torch.return_types.linalg_eig


def linalg_eig(A):
    """``gt.linalg.eig``: the complex ``(eigenvalues, eigenvectors)`` of the square matrices ``A``
    (the last two dims; float32/complex64 give complex64), eigenvectors as unit columns. Not
    differentiable in gt: NotImplementedError where ``A`` requires grad or is dual (torch has both)."""
    x = _tensor_arg(A, "linalg.eig", "A")
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.eig: A must be batches of square matrices, but they are {tuple(x.shape[-2:])} "
                           f"matrices")
    if not x.dtype.differentiable:
        raise RuntimeError(f"linalg.eig: Expected a floating point or complex tensor as input. Got {x.dtype!r}")
    if x.requires_grad and is_grad_enabled():
        raise NotImplementedError("linalg.eig: gt has no gradient for eig/eigvals; call it on A.detach() or under "
                                  "gt.no_grad()")
    if forward_ad.dual_values(x, ()):      # its tangent would be lost: torch's is the eigen-derivative
        raise NotImplementedError("linalg.eig: gt has no forward AD for eig/eigvals (a dual A); pass its primal "
                                  "(forward_ad.unpack_dual(A).primal)")
    x = x.float() if x.dtype.name in ("float16", "bfloat16") else x
    w, v = B.eig(x.contiguous()._data)
    return EigResult(Tensor._wrap(w), Tensor._wrap(v))


def linalg_eigvals(A):
    """``gt.linalg.eigvals``: the complex eigenvalues of ``A`` (``eig``'s first result)."""
    return linalg_eig(A).eigenvalues
