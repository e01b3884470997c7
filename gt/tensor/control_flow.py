"""torch's structured control flow, ``gt.cond`` and ``gt.while_loop``, run eagerly.

torch keeps these operators so that ``torch.compile``/``torch.export`` can capture data-dependent
branches and loops; run eagerly they are an ``if`` and a ``while``, which is what gt does (gt
compiles nothing). The autograd tape records whichever branch and iterations ran, so gradients
flow through both, as through torch's. torch's checks that stay meaningful eagerly are kept:
``pred`` is a bool or a one-element tensor, the operands a tuple or list, and each iteration of
``while_loop`` hands back as many values as it carries, of the same kinds, shapes and dtypes.
"""

from gt.tensor.core import Tensor

__all__ = ["cond", "while_loop"]


def _truth(value, fn, what):
    """``value`` (a Python bool/int/float or a one-element tensor) as a bool."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise RuntimeError(f"{fn}: expected {what} to be bool or single-element tensor, but got a tensor of "
                               f"shape {list(value.shape)}")
        return bool(value.item())
    if isinstance(value, (bool, int, float)):
        return bool(value)
    raise RuntimeError(f"{fn}: expected {what} to be bool or single-element tensor, but got {type(value).__name__}")


def _operands(value, fn, name):
    if not isinstance(value, (tuple, list)):
        raise RuntimeError(f"{fn}: expected {name} to be a tuple or list of (possibly nested dict/list/tuple of) "
                           f"tensors and ints, got {type(value).__name__}")
    return tuple(value)


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)`` (torch's ``torch.cond``).

    ``pred``: a bool (or number), or a tensor of one element (read with ``.item()``, so a GPU
    waits for it). ``operands``: a tuple or list (default: none). Only the branch taken runs, and
    its result is returned as it gives it, with its gradient graph.

        >>> x = gt.tensor([1.0, 2.0], requires_grad=True)
        >>> gt.cond(x.sum() > 0, lambda a: a.cos(), lambda a: a.sin(), (x,))
    """
    for name, fn in (("true_fn", true_fn), ("false_fn", false_fn)):
        if not callable(fn):
            raise RuntimeError(f"cond: expected {name} to be callable, got {type(fn).__name__}")
    operands = _operands(operands, "cond", "operands")
    return true_fn(*operands) if _truth(pred, "cond", "pred") else false_fn(*operands)


def _meta(value):
    """What ``while_loop`` keeps fixed across iterations: each tensor's shape and dtype, each
    number's kind, and the nesting of tuples, lists and dicts."""
    if isinstance(value, Tensor):
        return ("tensor", tuple(value.shape), value.dtype)
    if isinstance(value, (tuple, list)):
        return ("sequence", tuple(_meta(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _meta(value[k])) for k in sorted(value, key=repr)))
    if isinstance(value, (bool, int, float)):
        return (type(value).__name__,)
    raise RuntimeError(f"while_loop: carried values must be tensors, ints or floats (in tuples, lists, dicts), "
                       f"got {type(value).__name__}")


def while_loop(cond_fn, body_fn, carried_inputs):
    """``val = carried_inputs; while cond_fn(*val): val = body_fn(*val)``, then ``val`` (torch's
    ``torch.while_loop``).

    ``cond_fn`` answers a bool or a one-element tensor; ``body_fn`` returns a tuple or list with
    one value per carried input, each a tensor of the same shape and dtype as the one it replaces
    or an int (RuntimeError otherwise, naming the first difference). Gradients flow through every
    iteration that ran.

        >>> gt.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2), (0, gt.ones(2)))
        (3, tensor([8., 8.]))
    """
    for name, fn in (("cond_fn", cond_fn), ("body_fn", body_fn)):
        if not callable(fn):
            raise RuntimeError(f"while_loop: expected {name} to be callable, got {type(fn).__name__}")
    val = _operands(carried_inputs, "while_loop", "carried_inputs")
    expected = _meta(val)[1]
    while _truth(cond_fn(*val), "while_loop", "cond_fn's result"):
        out = body_fn(*val)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        got = _meta(tuple(out))[1]
        if len(got) != len(expected):
            raise RuntimeError(f"while_loop: expected body_fn_output and carried_inputs to have the same number of "
                               f"outputs, but got {len(got)} and {len(expected)}")
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b and not (a[0] in ("int", "bool") and b[0] in ("int", "bool")):
                raise RuntimeError(f"while_loop: expected body_fn_output and carried_inputs to have the same "
                                   f"metadata, but output {i} is {a} where the carried input is {b}")
        val = out
    return val
