"""torch's ``gradcheck`` and ``gradgradcheck`` as ``gt.autograd.gradcheck`` / ``gradgradcheck``:
the gradients gt's autograd computes for a function (a custom ``gt.autograd.Function`` most of
all) against central finite differences, element by element.

The Jacobians are laid out as torch lays them in its message: one row per element of the input,
one column per element of the output. ``fast_mode=True`` is accepted and runs the full check
(torch's fast mode checks random projections instead); the forward-mode and batched checks are
refused (gt has neither forward-mode AD nor vmap).
"""

import itertools
import warnings

from gt import dtypes
from gt.autograd import grad, no_grad
from gt.tensor.core import Tensor
from gt.tensor.creation import randn, zeros
from gt.tensor.functions import stack


class GradcheckError(RuntimeError):
    """A gradient that does not match its finite differences (torch's class of the same name)."""


_NOT_REENTRANT = ("Backward is not reentrant, i.e., running backward with same input and grad_output multiple times "
                  "gives different values, although analytical gradient matches numerical gradient.The tolerance for "
                  "nondeterminism was {}.\n\nNOTE: If your op relies on non-deterministic operations, this failure "
                  "might be expected: call gradcheck/gradgradcheck with `nondet_tol=<tol>` as a keyword argument.")


def _tuple(value):
    return value if isinstance(value, tuple) else tuple(value) if isinstance(value, list) else (value,)


def _outputs(func, inputs):
    return [o for o in _tuple(func(*inputs)) if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _flat64(t):
    # a copy: an output may share memory with an input that the differences change next
    return t.detach().to(dtypes.float64).reshape(-1).clone()


def _numerical(func, inputs, x, eps, outputs):
    """``d outputs / d x`` by central differences: one (x.numel(), out.numel()) float64 tensor per
    output (``outputs``: those of the unchanged inputs, for the shapes of an empty ``x``)."""
    rows = []
    for idx in itertools.product(*(range(n) for n in x.shape)):
        old = float(x[idx])
        values = []
        for step in (eps, -eps):      # func runs in grad mode, as the caller's would (gradgradcheck needs it)
            with no_grad():
                x[idx] = old + step
            values.append([_flat64(o) for o in _outputs(func, inputs)])
        with no_grad():
            x[idx] = old
        rows.append([(p - m) / (2 * eps) for p, m in zip(*values)])
    return [stack([r[j] for r in rows]) if rows else zeros((0, o.numel()), dtype=dtypes.float64)
            for j, o in enumerate(outputs)]


def _analytical(outputs, x):
    """``d outputs / d x`` by one reverse pass per output element (zeros where unused)."""
    jacs = []
    for out in outputs:
        cols = []
        flat = out.reshape(-1) if out.requires_grad else None
        for k in range(out.numel()):
            g = grad(flat[k], x, retain_graph=True, allow_unused=True)[0] if flat is not None else None
            cols.append(zeros(x.numel(), dtype=dtypes.float64) if g is None else _flat64(g))
        jacs.append(stack(cols, dim=1) if cols else zeros((x.numel(), 0), dtype=dtypes.float64))
    return jacs


def _not_multiplied(outputs, xs):
    """torch's last check: the backward from zero output gradients gives zeros of each input's
    dtype and shape (a backward that adds a constant fails here); torch's message, or None."""
    outs = [o for o in outputs if o.requires_grad]
    if not outs:
        return None
    got = grad(outs, xs, [zeros(o.shape, dtype=o.dtype) for o in outs], allow_unused=True)
    for g, x in zip(got, xs):
        if g is None:
            continue
        if not bool((g == 0).all()):
            return "backward not multiplied by grad_output"
        if g.dtype != x.dtype:
            return "grad is incorrect type"
        if g.shape != x.shape:
            return "grad is incorrect size"
    return None


def _fail(message, raise_exception):
    if raise_exception:
        raise GradcheckError(message)
    return False


def _check_options(fn, flags):
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"{fn}({name}=True): gt has no forward-mode AD and no vmap, so this check "
                                      "cannot run; leave it False")


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None):
    """Compare the gradients of ``func(*inputs)`` with respect to every input that requires grad
    against central finite differences (step ``eps``), as torch's ``gradcheck``: True when each
    element agrees within ``atol + rtol * |numerical|``; else raises ``GradcheckError`` naming the
    output and input with both Jacobians (or returns False with ``raise_exception=False``). Use
    float64 inputs: float32 differences are too coarse (a warning says so, as torch's)."""
    _check_options("gradcheck", {"check_batched_grad": check_batched_grad, "check_forward_ad": check_forward_ad,
                                 "check_batched_forward_grad": check_batched_forward_grad})
    inputs = _tuple(inputs)
    wrt = [(i, x) for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not wrt:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but none of them have "
                         "requires_grad=True.")
    for i, x in wrt:
        if x.dtype.name != "float64":
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point or complex. "
                          "This check will likely fail if all the inputs are not of double precision floating point "
                          "or complex. ", UserWarning, stacklevel=2)
    if not check_backward_ad:
        return True
    outputs = _outputs(func, inputs)
    analyticals = [_analytical(outputs, x) for _, x in wrt]   # before the differences change the inputs
    again = [_analytical(outputs, x) for _, x in wrt]         # torch's reentrancy check: the same twice
    for (i, x), analytical, second in zip(wrt, analyticals, again):
        numerical = _numerical(func, inputs, x, eps, outputs)
        for j, (n, a, b) in enumerate(zip(numerical, analytical, second)):
            if a.numel() and float((a - b).abs().max()) > nondet_tol:
                return _fail(_NOT_REENTRANT.format(nondet_tol), raise_exception)
            if not a.allclose(n, rtol=rtol, atol=atol):
                return _fail(f"Jacobian mismatch for output {j} with respect to input {i},\n"
                             f"numerical:{n}\nanalytical:{a}\n", raise_exception)
    # on outputs made again: the differences changed the inputs in place since (their versions moved)
    message = _not_multiplied(_outputs(func, inputs), [x for _, x in wrt])
    return True if message is None else _fail(message, raise_exception)


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, gen_non_contig_grad_outputs=False,
                  raise_exception=True, nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
                  check_batched_grad=False, check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False,
                  masked=False):
    """``gradcheck`` of the gradient itself: the second derivatives of ``func`` (through
    ``create_graph=True``) against finite differences of its first derivatives, with respect to the
    inputs and to ``grad_outputs`` (random float64 tensors of the outputs' shapes when None)."""
    _check_options("gradgradcheck", {"check_batched_grad": check_batched_grad, "check_fwd_over_rev": check_fwd_over_rev})
    inputs = _tuple(inputs)
    outputs = _outputs(func, inputs)
    if grad_outputs is None:
        grad_outputs = tuple(randn(*o.shape, dtype=o.dtype, requires_grad=True) for o in outputs)
    grad_outputs = _tuple(grad_outputs)
    n = len(inputs)
    wrt = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*args):
        outs = [o for o in _outputs(func, args[:n]) if o.requires_grad]
        xs = [x for x in args[:n] if isinstance(x, Tensor) and x.requires_grad]
        if not outs:
            return tuple(zeros(x.shape, dtype=x.dtype) for x in xs)
        return grad(outs, xs, args[n:n + len(outs)], create_graph=True, allow_unused=True, materialize_grads=True)

    if not wrt or not check_rev_over_rev:
        return gradcheck(func, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
