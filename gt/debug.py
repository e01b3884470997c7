"""Looking inside the tape while debugging."""

from gt import autograd


def print_tape(tensor=None, file=None):
    """Print the recorded ops: those ``tensor`` depends on (inputs first), or, with no argument,
    every op recorded since the last ``backward()``. Returns the number of ops printed."""
    if tensor is not None:
        nodes = [n for n in autograd._topological_order(tensor) if n._ctx is not None] if tensor.requires_grad else []
        ctxs = [n._ctx for n in nodes]
    else:
        ctxs = [c for c in (ref() for ref in autograd.tape) if c is not None and not c.released]
    print(f"tape: {len(ctxs)} op(s)", file=file)
    for i, ctx in enumerate(ctxs):
        shapes = ", ".join(str(t.shape) if hasattr(t, "shape") and hasattr(t, "_data") else repr(t)
                           for t in ctx.inputs)
        print(f"  [{i}] {ctx.name}({shapes}) -> {ctx.out_shape}", file=file)
    return len(ctxs)
