"""Gradient clipping, in place on the parameters' ``.grad`` (torch's ``nn.utils`` semantics)."""

import math
import sys

from gt import autograd, dtypes
from gt.backend import B
from gt.tensor import Tensor
from gt.nn.init import deprecated_alias
from gt.nn.convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from gt.nn.utils_extra import (clip_grads_with_norm_, fuse_conv_bn_eval, fuse_conv_bn_weights,  # noqa: F401
                                fuse_linear_bn_eval, fuse_linear_bn_weights, get_total_norm, skip_init)
from gt.nn import packed_sequence as rnn   # torch's path: gt.nn.utils.rnn.pack_padded_sequence

sys.modules[__name__ + ".rnn"] = rnn      # so that `import gt.nn.utils.rnn` finds it too (this is a module)
from gt.nn import parametrizations, parametrize  # noqa: E402  (torch's nn.utils.parametrize / .parametrizations)
sys.modules[__name__ + ".parametrize"] = parametrize      # `import gt.nn.utils.parametrize as P`, as in torch
sys.modules[__name__ + ".parametrizations"] = parametrizations
from gt.nn import stateless  # noqa: E402  (torch's nn.utils.stateless.functional_call)
sys.modules[__name__ + ".stateless"] = stateless
from gt.nn import prune  # noqa: E402  (torch's nn.utils.prune)
sys.modules[__name__ + ".prune"] = prune
from gt.nn import fusion  # noqa: E402  (torch's nn.utils.fusion)
sys.modules[__name__ + ".fusion"] = fusion
from gt.nn.weight_norm import remove_weight_norm, weight_norm  # noqa: E402,F401  (torch's deprecated hook version)
from gt.nn.spectral_norm import remove_spectral_norm, spectral_norm  # noqa: E402,F401  (torch's hook version)


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(arr, norm_type):
    """The ``norm_type`` vector norm of all of ``arr``'s elements, as a 0-d engine array."""
    dtype = B.dtype_of(arr)
    if dtype in dtypes.HALVES:     # summed in float32, as torch does, else 300 ** 2 is inf already
        return B.astype(_norm(B.astype(arr, dtypes.float32), norm_type), dtype)
    if norm_type == math.inf:
        return B.max(B.abs(arr))
    if norm_type == 2.0:
        flat = B.reshape(arr, (-1,))  # a view for contiguous grads; the dot product is one BLAS pass
        return B.sqrt(B.matmul(flat, flat))
    return B.sum(B.abs(arr) ** norm_type) ** (1.0 / norm_type)


def _array(value):
    """A 0-d engine array of ``value`` (a numpy scalar, or an array) in its own dtype (half too)."""
    return B.asarray(value, dtype=B.dtype_of(value))


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their total norm is at most ``max_norm``.

    The total norm is the ``norm_type`` norm of all gradients as if concatenated into one vector
    (``float('inf')`` for the max-abs norm; any order of ``torch.linalg.vector_norm``, 0 and negative
    ones too). When it exceeds ``max_norm``, every gradient is multiplied in place by
    ``max_norm / (total_norm + 1e-6)``. Parameters whose ``.grad`` is None are skipped. Returns
    the total norm (before clipping) as a 0-d tensor. ``foreach`` is accepted for torch
    compatibility and ignored.

        >>> loss.backward()
        >>> norm = gt.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    """
    norm_type = float(norm_type)
    grads = [g for g in _grads(parameters) if g.numel() > 0]
    if not grads:
        return Tensor._wrap(B.zeros((), "float32"))
    if norm_type == math.inf or norm_type > 0:
        norms = B.stack([_array(_norm(_stored(g)._data, norm_type)) for g in grads], 0)
        total = _array(_norm(norms, norm_type))
    else:       # torch's other vector-norm orders: 0 (a count of nonzeros), negative ones, -inf
        total = get_total_norm(grads, norm_type)._data
    if error_if_nonfinite and not B.all(B.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
            f"({B.item(total)}), so it cannot be clipped; pass error_if_nonfinite=False to scale the "
            "gradients by it anyway"
        )
    coef = max_norm / (total + 1e-6)  # in the gradients' dtype, as torch computes it
    if not coef >= 1.0:  # `not >=` so that a nan norm propagates into the grads, as in torch
        with autograd.no_grad():
            for g in grads:
                g.mul_(coef)
    return Tensor._wrap(total)


def _stored(g):
    """A gradient's entries: a sparse one's coalesced values (the same norm as its dense form)."""
    return g.coalesce()._values() if g.is_sparse else g


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to ``[-clip_value, clip_value]``, in place.

        >>> gt.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    with autograd.no_grad():
        for g in _grads(parameters):
            g.copy_(Tensor._wrap(B.clip(g._data, -clip_value, clip_value)))


# torch's deprecated name of clip_grad_norm_ (with its FutureWarning)
clip_grad_norm = deprecated_alias(clip_grad_norm_, "torch.nn.utils")
