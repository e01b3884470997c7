"""torch.nn.grad (also ``gt.nn.functional.grad``): the gradients of ``conv1d``/``conv2d``/``conv3d``
with respect to their input (``conv2d_input``) or weight (``conv2d_weight``) for a given output
gradient, without running a forward pass first.

Each runs the convolution on zeros of the missing argument's shape and takes the gradient through
gt's tape (both gradients are linear in the other arguments, so the zeros change nothing): the
values are torch's ``convolution_backward``, and they are differentiable in ``weight``/``input``
and ``grad_output`` where those require grad, as torch's.
"""

from gt import autograd
from gt.autograd.gradients import grad as _grad     # (not the user's: see gt/autograd/gradients.py)
from gt.nn.conv_functions import conv1d, conv2d, conv3d
from gt.tensor import Tensor, zeros

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]

_CONV = {1: conv1d, 2: conv2d, 3: conv3d}


def _gradient(dims, input, weight, grad_output, wrt, options):
    size, other = (input, weight) if wrt == "input" else (weight, input)
    for name, value in (("weight" if wrt == "input" else "input", other), ("grad_output", grad_output)):
        if not isinstance(value, Tensor):
            raise TypeError(f"conv{dims}d_{wrt}(): argument '{name}' must be Tensor, not {type(value).__name__}")
    leaf = zeros(tuple(size), dtype=grad_output.dtype, requires_grad=True)
    with autograd.enable_grad():
        args = (leaf, other) if wrt == "input" else (other, leaf)
        out = _CONV[dims](*args, None, *options)
    if tuple(out.shape) != tuple(grad_output.shape):
        raise RuntimeError(f"conv{dims}d_{wrt}: grad_output has shape {tuple(grad_output.shape)}, but a convolution "
                           f"of these sizes and options gives {tuple(out.shape)}")
    graph = autograd.is_grad_enabled() and (other.requires_grad or grad_output.requires_grad)
    return _grad(out, leaf, grad_output, create_graph=graph)[0]


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv1d`` for its input of shape ``input_size``."""
    return _gradient(1, input_size, weight, grad_output, "input", (stride, padding, dilation, groups))


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv1d`` for its weight of shape ``weight_size``."""
    return _gradient(1, input, weight_size, grad_output, "weight", (stride, padding, dilation, groups))


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv2d`` for its input of shape ``input_size``."""
    return _gradient(2, input_size, weight, grad_output, "input", (stride, padding, dilation, groups))


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv2d`` for its weight of shape ``weight_size``."""
    return _gradient(2, input, weight_size, grad_output, "weight", (stride, padding, dilation, groups))


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv3d`` for its input of shape ``input_size``."""
    return _gradient(3, input_size, weight, grad_output, "input", (stride, padding, dilation, groups))


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """The gradient of ``conv3d`` for its weight of shape ``weight_size``."""
    return _gradient(3, input, weight_size, grad_output, "weight", (stride, padding, dilation, groups))
