"""torch's ``gradcheck`` and ``gradgradcheck`` as ``gt.autograd.gradcheck`` / ``gradgradcheck``:
the gradients gt's autograd computes for a function (a custom ``gt.autograd.Function`` most of
all) against central finite differences, element by element.

The Jacobians are laid out as torch lays them in its message: one row per element of the input,
one column per element of the output. Complex numbers as torch's: a complex input's row is the
conjugate Wirtinger derivative ``ds/dx + i ds/dy`` of each real output ``s`` (``z = x + i y``),
which gt's gradients give; a complex output is checked as two real ones, its imaginary part
first, then its real part (torch's message names the part). ``fast_mode=True`` is accepted and runs the full check
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
    return [o for o in _tuple(func(*inputs)) if isinstance(o, Tensor) and o.dtype.differentiable]


def _wide(dtype):
    return dtypes.complex128 if dtype.is_complex else dtypes.float64


def _flat64(t):
    # a copy: an output may share memory with an input that the differences change next
    return t.detach().to(_wide(t.dtype)).reshape(-1).clone()


def _part(func, part):
    """``func`` with ``part`` (real or imag) taken of its complex outputs: torch's check of a complex
    output, one part at a time."""
    def parted(*inputs):
        return tuple(getattr(o, part) if isinstance(o, Tensor) and o.dtype.is_complex else o
                     for o in _tuple(func(*inputs)))
    return parted


def _numerical(func, inputs, x, eps, outputs):
    """``d outputs / d x`` by central differences: one (x.numel(), out.numel()) float64 tensor per
    output (``outputs``: those of the unchanged inputs, for the shapes of an empty ``x``); for a
    complex ``x`` complex128, ``ds/dx + i ds/dy`` (torch's conjugate Wirtinger derivative)."""
    rows = []
    units = (1, 1j) if x.dtype.is_complex else (1,)
    for idx in itertools.product(*(range(n) for n in x.shape)):
        old = x[idx].item()
        parts = []
        for unit in units:
            values = []
            for step in (eps, -eps):      # func runs in grad mode, as the caller's would (gradgradcheck needs it)
                with no_grad():
                    x[idx] = old + step * unit
                values.append([_flat64(o) for o in _outputs(func, inputs)])
            parts.append([(p - m) / (2 * eps) for p, m in zip(*values)])
        with no_grad():
            x[idx] = old
        rows.append(parts[0] if len(parts) == 1 else [dx + dy * 1j for dx, dy in zip(*parts)])
    return [stack([r[j] for r in rows]) if rows else zeros((0, o.numel()), dtype=_wide(x.dtype))
            for j, o in enumerate(outputs)]


def _analytical(outputs, x):
    """``d outputs / d x`` by one reverse pass per output element (zeros where unused)."""
    jacs = []
    for out in outputs:
        cols = []
        flat = out.reshape(-1) if out.requires_grad else None
        for k in range(out.numel()):
            g = grad(flat[k], x, retain_graph=True, allow_unused=True)[0] if flat is not None else None
            cols.append(zeros(x.numel(), dtype=_wide(x.dtype)) if g is None else _flat64(g))
        jacs.append(stack(cols, dim=1) if cols else zeros((x.numel(), 0), dtype=_wide(x.dtype)))
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


def _jacobians_differ(func, inputs, wrt, eps, rtol, atol, nondet_tol):
    """``(output index, torch's message)`` of the first Jacobian of ``func`` whose recorded
    gradients differ from the finite differences (or from themselves, run again), else None."""
    outputs = _outputs(func, inputs)
    analyticals = [_analytical(outputs, x) for _, x in wrt]   # before the differences change the inputs
    again = [_analytical(outputs, x) for _, x in wrt]         # torch's reentrancy check: the same twice
    for (i, x), analytical, second in zip(wrt, analyticals, again):
        numerical = _numerical(func, inputs, x, eps, outputs)
        for j, (n, a, b) in enumerate(zip(numerical, analytical, second)):
            if a.numel() and float((a - b).abs().max()) > nondet_tol:
                return None, _NOT_REENTRANT.format(nondet_tol)
            if not a.allclose(n, rtol=rtol, atol=atol):
                return j, (f"Jacobian mismatch for output {j} with respect to input {i},\n"
                           f"numerical:{n}\nanalytical:{a}\n")
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
        if x.dtype.name not in ("float64", "complex128"):
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating point or complex. "
                          "This check will likely fail if all the inputs are not of double precision floating point "
                          "or complex. ", UserWarning, stacklevel=2)
    if not check_backward_ad:
        return True
    outputs = _outputs(func, inputs)
    complex_outputs = {j for j, o in enumerate(outputs) if o.dtype.is_complex}
    checks = [(func, "")]
    if complex_outputs:
        checks = [(_part(func, "imag"), "imaginary"), (_part(func, "real"), "real")]
    for fn, part in checks:
        message = _jacobians_differ(fn, inputs, wrt, eps, rtol, atol, nondet_tol)
        if message is not None:
            j = message[0]
            prefix = f"While considering the {part} part of complex outputs only, " if j in complex_outputs else ""
            return _fail(prefix + message[1], raise_exception)
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
