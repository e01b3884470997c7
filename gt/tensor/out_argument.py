"""torch's ``out=`` keyword for gt's top-level functions: ``gt.cat(xs, out=buf)``,
``gt.add(a, b, out=c)``, ``gt.max(x, dim=1, out=(values, indices))``.

The result is computed as without ``out`` and then written into ``out``, which is returned, as
torch does: the result's dtype must cast to ``out``'s under torch's rules (not floating ->
integer or bool, nor integer -> bool); an ``out`` of another shape is resized (with torch's
warning when it held elements); and, as torch's, ``out=`` is refused where autograd would
record the call (an argument, or ``out``, requires grad). Functions with an ``out`` of their own
(the reductions, the samplers) keep it; ``accept_out`` wraps the others that give tensors, once,
at import, and a call without ``out`` goes straight to the function.
"""

import functools
import inspect
import warnings

from gt import autograd, dtypes
from gt.tensor import inplace_grad
from gt.tensor.core import Tensor
from gt.tensor.dtype_functions import can_cast


def with_out(fn):
    """``fn`` taking torch's ``out=`` keyword as well (see the module docstring)."""
    name = fn.__name__

    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if autograd.is_grad_enabled() and _requires_grad(args, kwargs, out):
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        if name not in _PRODUCTS:
            _refuse_shared(args, kwargs, out)
        return write(fn(*args, **kwargs), out, name)
    call._takes_out = True
    return call


def write(result, out, name):
    """Copy ``result`` (a tensor, or a tuple of them) into ``out`` (one tensor, or as many);
    returns ``out`` (as the result's tuple type)."""
    if isinstance(result, tuple) and isinstance(out, (tuple, list)):
        if len(out) != len(result):
            raise TypeError(f"{name}(): out must hold {len(result)} tensors, one per result, got {len(out)}")
        for r, o in zip(result, out):
            _write_one(r, o, name)
        return type(result)(*out) if hasattr(result, "_fields") else tuple(out)
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}() got an unexpected keyword argument 'out' (it gives no tensor to write)")
    if isinstance(out, (tuple, list)):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    _write_one(result, out, name)
    return out


def _write_one(result, out, name):
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if name in _EXACT_DTYPE and out.dtype != result.dtype:
        raise RuntimeError(f"{name}(): expected out tensor to have dtype {result.dtype}, but got {out.dtype} instead "
                           "(as torch, whose kernel writes this op's out without casting)")
    if not can_cast(result.dtype, out.dtype):
        raise RuntimeError(f"result type {dtypes.torch_type_name(result.dtype.name)} can't be cast to the desired output type "
                           f"{dtypes.torch_type_name(out.dtype.name)}")
    if out.shape != result.shape:
        if out.numel():
            warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                          f"which does not match the required output shape {list(result.shape)}. This behavior "
                          "is deprecated, and in a future PyTorch release outputs will not be resized unless they "
                          "have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, "
                          "to zero elements with t.resize_(0).", UserWarning, stacklevel=4)
        out.resize_(*result.shape)
    with autograd.no_grad():
        out.copy_(result)


# functions whose out= torch asks for in the result's own dtype (no cast)
_EXACT_DTYPE = {"aminmax", "gather", "complex", "polar", "conj_physical"}

# functions whose out= torch lets overlap an input (its BLAS products); the others refuse one
# that lies in part of out's memory, as its elementwise ops do
_PRODUCTS = {"mm", "matmul", "bmm", "addmm", "addbmm", "baddbmm", "addmv", "mv", "addr", "dot", "vdot", "inner",
             "outer", "ger"}


def _refuse_shared(args, kwargs, out):
    values = [v for a in (*args, *kwargs.values()) for v in (a if isinstance(a, (list, tuple)) else (a,))]
    for o in (out if isinstance(out, (list, tuple)) else (out,)):
        if isinstance(o, Tensor):
            inplace_grad.refuse_shared_input(o, values)


def _requires_grad(args, kwargs, out):
    def tensors(values):
        for v in values:
            if isinstance(v, Tensor):
                yield v
            elif isinstance(v, (list, tuple)):
                yield from (t for t in v if isinstance(t, Tensor))
    outs = out if isinstance(out, (list, tuple)) else (out,)
    return any(t.requires_grad for t in tensors((*args, *kwargs.values(), *outs)))


# Functions that give no tensor (settings, questions, saving, seeding, transforms of functions):
# not wrapped, so that an out= there is refused by Python before the function runs (saves a file,
# sets a seed), not after
_NO_TENSOR = {"save", "load", "manual_seed", "seed", "initial_seed", "compile", "vmap", "typename", "numel",
              "can_cast", "promote_types", "result_type", "get_rng_state"}
_NO_TENSOR_PREFIXES = ("set_", "get_", "is_", "use_")


def accept_out(namespace, also=()):
    """Give every public function of ``namespace`` (a module's globals) that gives tensors and has
    no ``out`` parameter of its own torch's ``out=`` (``_NO_TENSOR``: those that give none); one wrapper per function, so aliases stay one object
    (``gt.arctan2 is gt.atan2``), and the modules in ``also`` that hand out the same functions
    (``gt.client.tensor``, ``gt.func``) get the same wrappers. Returns the names wrapped."""
    wrappers, wrapped = {}, []
    for key, value in list(namespace.items()):
        if (key.startswith(("_",) + _NO_TENSOR_PREFIXES) or key in _NO_TENSOR or not inspect.isfunction(value)
                or not value.__module__.startswith("gt.") or getattr(value, "_takes_out", False)
                or "out" in _parameters(value)):
            continue
        if id(value) not in wrappers:
            wrappers[id(value)] = (value, with_out(value))
        namespace[key] = wrappers[id(value)][1]
        wrapped.append(key)
    for module in also:
        for key, value in list(vars(module).items()):
            if id(value) in wrappers and wrappers[id(value)][0] is value:
                setattr(module, key, wrappers[id(value)][1])
    return wrapped


def _parameters(fn):
    # the names of the parameters, from the code object: inspect.signature would cost ~10 ms at import
    code = inspect.unwrap(fn).__code__
    return code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
