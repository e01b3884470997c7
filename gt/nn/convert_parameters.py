"""``nn.utils.parameters_to_vector`` and ``vector_to_parameters``: all parameters as one flat
vector and back (torch's ``torch.nn.utils.convert_parameters``)."""

from gt import autograd
from gt.tensor import Tensor, cat


def _tensors(parameters, fn):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: expected an iterable of gt.Tensor (parameters), got {type(p).__name__}")
    return params


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated, in order, into one (total numel,) tensor; it is
    on the tape (differentiable), as torch's.

        >>> vec = nn.utils.parameters_to_vector(model.parameters())
    """
    params = _tensors(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters (torch.cat of an empty list fails too)")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into the parameters, in order, in place and
    outside the tape. torch rebinds each ``param.data`` to a view of ``vec``; gt copies the
    values (the parameters do not share memory with ``vec``). A ``vec`` whose length is not the
    parameters' total size is an error (torch ignores extra elements).

        >>> nn.utils.vector_to_parameters(vec * 0.5, model.parameters())
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a gt.Tensor, but got {type(vec).__name__}")
    params = _tensors(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: vec must be 1-D with {total} elements (the parameters' total "
                         f"size), got shape {vec.shape}")
    offset = 0
    with autograd.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(p.shape))
            offset += n
