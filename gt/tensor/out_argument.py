"""torch's ``out=`` keyword for gt's top-level functions: ``gt.cat(xs, out=buf)``,
``gt.add(a, b, out=c)``, ``gt.max(x, dim=1, out=(values, indices))``.

The result is computed as without ``out`` and then written into ``out``, which is returned, as
torch does: the result's dtype must cast to ``out``'s under torch's rules (not floating ->
integer or bool, nor integer -> bool), or be ``out``'s own where torch's kernel asks for it
(``_EXACT_DTYPE``); an ``out`` of another shape is resized (with torch's warning when it held
elements, but for ``_SILENT_RESIZE``); and, as torch's, ``out=`` is refused where autograd would
record the call (an argument, or ``out``, requires grad), but by torch's composite functions
(``_COMPOSITE``), which write ``out`` as a copy (recorded as torch records it). Functions with an ``out`` of their own
(the reductions, the samplers) keep it; ``accept_out`` wraps the others that give tensors, once,
at import, and a call without ``out`` goes straight to the function.
"""

import functools
import inspect
import warnings

from gt import autograd, dtypes
from gt.ops.exact_value import NoDerivative
from gt.tensor import inplace_grad
from gt.tensor.core import Tensor
from gt.tensor.dtype_functions import can_cast
from gt.tensor.out_layout import take_layout
from gt.tensor.number_first import NO_OUT_NUMBER_FIRST, NUMBERS


def with_out(fn, name=None):
    """``fn`` taking torch's ``out=`` keyword as well (see the module docstring); ``name`` (by
    default ``fn``'s) names it in messages and in the tables below."""
    name = name or fn.__name__

    @functools.wraps(fn)
    def call(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return _call_out(fn, name, args, kwargs, out)
    call._takes_out = True
    return call


def _call_out(fn, name, args, kwargs, out):
    if name in NO_OUT_NUMBER_FIRST and args and isinstance(args[0], NUMBERS):
        raise TypeError(f"{name}() received an invalid combination of arguments - got ({type(args[0]).__name__}, "
                        f"Tensor, out=Tensor): torch's {name} with a number first takes no out=")
    record = False
    if name not in _UNRECORDED and autograd.is_grad_enabled() and _requires_grad(args, kwargs, out):
        inputs = _requires_grad(args, kwargs, ())
        # torch's composite functions compute and copy into out, recorded as a copy; its kernels refuse
        record = inputs and name in _COMPOSITE and _COMPOSITE[name](args, kwargs)
        record = record if record and not _requires_grad((), {}, out) else None
        if record is None:
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        record = record != _UNTRACKED and record
    if name not in _PRODUCTS:
        _refuse_shared(args, kwargs, out)
    if name in _FACTORIES and kwargs.get("dtype") is not None and isinstance(out, Tensor):
        _factory_dtype(dtypes.to_dtype(kwargs["dtype"]), out.dtype)
    if name in ("max", "min") and isinstance(out, (tuple, list)):
        args, kwargs = _dim_form(args, kwargs)
    elif name in ("median", "nanmedian") and not isinstance(out, (tuple, list)):
        raise TypeError(f'{name}() missing 1 required positional arguments: "dim"')     # (its out= form's)
    elif name in ("max", "min") and (_dim_form(args, kwargs)[1] is not kwargs or "dim" in kwargs):
        raise TypeError(_EXTREMUM_OUT.format(name=name, got=", ".join(
            [_kind(a) for a in args] + [f"{k}={_kind(v)}" for k, v in (("out", out), *kwargs.items())])))
    if name in _IN_OUT_DTYPE and kwargs.get("dtype") is not None and isinstance(out, Tensor):
        asked = dtypes.to_dtype(kwargs["dtype"])
        if asked != out.dtype:      # torch's kernel then asks out for dtype='s
            raise RuntimeError(_STRUCTURED.format(result=_word(asked), out=_word(out.dtype)))
    if (name in _IN_OUT_DTYPE or name in _FACTORIES) and kwargs.get("dtype") is None and isinstance(out, Tensor):
        kwargs = {**kwargs, "dtype": out.dtype}     # torch's kernel computes in out's dtype
    return write(fn(*args, **kwargs), out, name, record, _dtype_check_name(name, args, kwargs),
                 operands=(*args, *kwargs.values()))


_EXTREMUM_OUT = ("{name}() received an invalid combination of arguments - got ({got}), but expected one of: "
                 "(Tensor input, *, Tensor out = None), (Tensor input, Tensor other, *, Tensor out = None), "
                 "(Tensor input, int dim, bool keepdim = False, *, tuple of Tensors out = None): with a dim, out= "
                 "takes a (values, indices) pair")


def _kind(value):
    return "Tensor" if isinstance(value, Tensor) else type(value).__name__


def _dim_form(args, kwargs):
    # gt.max(x, 1) gives values only (gt's numpy reading); a tuple out asks for torch's (values, indices)
    if len(args) > 1 and not isinstance(args[1], Tensor) and "dim" not in kwargs:
        kwargs = {**kwargs, "dim": args[1], **({"keepdim": args[2]} if len(args) > 2 else {})}
        args = args[:1]
    return args, kwargs


def _dtype_check_name(name, args, kwargs):
    """The kernel whose out-dtype check torch's ``name`` meets: matmul's is that of the product
    its operands' ranks pick (dot, mv, or mm/bmm), each in its own words; clamp's with number
    bounds (its Scalar kernel; tensor bounds cast as elementwise ops do)."""
    if name in _CLAMPS:
        bounds = (*args[1:], *(kwargs.get(k) for k in ("min", "max")))
        return "clamp.Scalar" if not any(isinstance(b, Tensor) for b in bounds) else name
    if name in ("max", "min") and "dim" in kwargs:     # (values, indices): structured, of their own dtypes
        return name + ".dim"
    if name != "matmul":
        return name
    a = args[0] if args else kwargs.get("input")
    b = args[1] if len(args) > 1 else kwargs.get("other")
    ranks = (getattr(a, "ndim", None), getattr(b, "ndim", None))
    return {(1, 1): "dot", (2, 1): "mv"}.get(ranks, "mm")


def write(result, out, name, record=False, checked_as=None, operands=()):
    """Copy ``result`` (a tensor, or a tuple of them) into ``out`` (one tensor, or as many);
    returns ``out`` (as the result's tuple type). ``record``: False (not recorded), ``_COPY``
    (a recorded copy) or the aten op whose missing derivative a backward names. ``checked_as``:
    the name whose dtype rule and message apply (by default ``name``). ``operands``: the call's
    arguments, whose layouts a resized ``out`` may follow (gt/tensor/out_layout.py)."""
    if isinstance(result, tuple) and isinstance(out, (tuple, list)):
        if len(out) != len(result):
            raise TypeError(f"{name}(): out must hold {len(result)} tensors, one per result, got {len(out)}")
        second = f"{checked_as or name} [1]"       # the indices (frexp's exponent), where torch words them apart
        pairs = list(enumerate(zip(result, out)))
        for i, (r, o) in pairs[::-1] if name in ("median", "nanmedian") else pairs:     # (torch: indices first)
            _write_one(r, o, name, record, second if i and second in _EXACT_DTYPE else checked_as, operands)
        return type(result)(*out) if hasattr(result, "_fields") else tuple(out)
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}() got an unexpected keyword argument 'out' (it gives no tensor to write)")
    if isinstance(out, (tuple, list)):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    _write_one(result, out, name, record, checked_as, operands)
    return out


def _write_one(result, out, name, record=False, checked_as=None, operands=()):
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    checked_as = checked_as or name
    if out.dtype != result.dtype and checked_as in _EXACT_DTYPE:
        raise RuntimeError(_EXACT_DTYPE[checked_as].format(result=_word(result.dtype), out=_word(out.dtype),
                                                     Result=_Word(result.dtype), Out=_Word(out.dtype),
                                                     int32=result.dtype.name == "int32"))
    if not can_cast(result.dtype, out.dtype) and name in _CATS:
        raise TypeError(f"torch.cat(): input types can't be cast to the desired output type "
                        f"{dtypes.torch_type_name(out.dtype.name)}")
    if not can_cast(result.dtype, out.dtype) and name not in _COPIES:
        raise RuntimeError(f"result type {dtypes.torch_type_name(result.dtype.name)} can't be cast to the desired output type "
                           f"{dtypes.torch_type_name(out.dtype.name)}")
    if out.shape != result.shape:
        if out.numel() and name not in _SILENT_RESIZE:
            warnings.warn(f"An output with one or more elements was resized since it had shape {list(out.shape)}, "
                          f"which does not match the required output shape {list(result.shape)}. This behavior "
                          "is deprecated, and in a future PyTorch release outputs will not be resized unless they "
                          "have zero elements. You can explicitly reuse an out tensor t by resizing it, inplace, "
                          "to zero elements with t.resize_(0).", UserWarning, stacklevel=5)
        out.resize_(*result.shape)
        take_layout(out, result, operands, name)
    if record == _COPY:
        out.copy_(result)
        return
    if record:          # torch's out-variant has no derivative: a grad_fn whose backward raises
        out.copy_(NoDerivative.apply(result, record))
        return
    with autograd.no_grad():
        out.copy_(result)


def _copy_if(argument, position, values):
    def rule(args, kwargs):
        return _COPY if kwargs.get(argument, args[position] if len(args) > position else None) in values else None
    return rule


def _no_derivative(aten):
    return lambda args, kwargs: aten


def _diag(args, kwargs):
    x = args[0] if args else kwargs.get("input")
    return "aten::diag_embed" if getattr(x, "ndim", 2) == 1 else "aten::diagonal_copy"


# torch's composite functions (CompositeImplicitAutograd): out= with an input that requires grad
# computes and copies into out, where its kernels refuse. The rule gives how torch's copy is
# recorded: a copy autograd differentiates (_COPY), one whose grad_fn raises (the aten op it
# names), one not recorded (_UNTRACKED), or None: refused as a kernel's
_COPY, _UNTRACKED = "copy", "untracked"
_COMPOSITE = {
    **{name: lambda args, kwargs: _COPY for name in (
        "lu_legacy", "quantile", "nanquantile", "inner", "tensordot", "linalg.cond", "linalg.norm",
        "linalg.matrix_norm", "linalg.tensorinv", "linalg.tensorsolve")},
    **{name: _no_derivative("aten::" + name) for name in (
        "conj_physical", "expand_copy", "diagonal_copy", "alias_copy", "softmax", "log_softmax", "as_strided_copy",
        "view_copy", "permute_copy", "slice_scatter", "unfold_copy", "squeeze_copy", "unsqueeze_copy",
        "transpose_copy", "t_copy")},
    "diag": _diag,
    "unbind_copy": lambda args, kwargs: _UNTRACKED,
    "diff": _copy_if("n", 1, (0,)),
    "norm": _copy_if("p", 1, ("nuc",)),
    **{name: lambda args, kwargs: {0: _UNTRACKED, 1: _COPY}.get(kwargs.get("n", args[1] if len(args) > 1 else None))
       for name in ("linalg.matrix_power", "matrix_power")},
}
# functions whose torch kernel writes out as under no_grad whatever requires grad (an input, out):
# out stays as it was (a leaf, its requires_grad unchanged), nothing recorded
_UNRECORDED = {"histc", "split_with_sizes_copy"}
# torch.lu copies its results into out as copy_ does (any cast, resized silently)
_COPIES = {"lu_legacy"}
# functions whose out= goes through torch's cat kernel, which refuses an uncastable out as a TypeError
_CATS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "row_stack"}
_CLAMPS = {"clamp", "clip", "clamp_min", "clamp_max"}
# functions whose kernel computes in out's dtype where no dtype= is given
_IN_OUT_DTYPE = {"cumsum", "cumprod", "sum", "prod"}
# functions that resize out silently whatever it held (torch's factories, resize_as_ in torch.lu)
_SILENT_RESIZE = {"addbmm", "linspace", "logspace", "lu_legacy", "narrow_copy", "ones", "zeros", "full", "empty",
                  "eye"}


def _Word(dtype):
    return dtypes.torch_type_name(dtype.name)


def _word(dtype):
    # the C++ type's name, as torch's structured kernels print it
    return _CPP_NAMES.get(dtype.name, dtype.name)


_CPP_NAMES = {"float64": "double", "float32": "float", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool", "complex128": "c10::complex<double>",
              "complex64": "c10::complex<float>"}


def _factory_dtype(dtype, out_dtype):
    if dtype != out_dtype:
        raise RuntimeError(f"dtype {_Word(dtype)} does not match dtype of out parameter ({_Word(out_dtype)})")


# factories whose dtype= must be out's (without one they make out's dtype)
_FACTORIES = {"arange", "linspace", "logspace", "ones", "zeros", "full", "empty", "eye"}

# Functions whose out= torch asks for in the result's own dtype (no cast into a narrower out,
# which its general rule, and its elementwise ops, allow), with its message. Most are structured
# kernels (their set_output checks the dtype) or linalg's, whose out is checked before the call;
# the others check it by hand, each in its words. torch 2.13, probed op by op.
_STRUCTURED = "Expected out tensor to have dtype {result}, but got {out} instead"
_EXACT_DTYPE = {
    **{name: _STRUCTURED for name in (
        "aminmax", "gather", "complex", "polar", "conj_physical", "addmm", "addmv", "baddbmm", "bmm", "mm", "cross",
        "expand_copy", "diag", "diagonal_copy", "alias_copy", "lu_unpack", "lu_solve_legacy", "softmax",
        "as_strided_copy", "view_copy", "permute_copy", "qr", "split_with_sizes_copy", "slice_scatter",
        "triangular_solve", "svd", "index_copy", "index_add", "index_reduce", "scatter", "scatter_add",
        "unbind_copy", "unfold_copy", "msort", "renorm", "squeeze_copy", "take_along_dim", "unsqueeze_copy",
        "transpose_copy", "tril", "triu", "log_softmax", "norm", "t_copy", "scatter_reduce", "argmax", "argmin",
        "slogdet", "linalg.cross", "linalg.det", "linalg.cholesky", "linalg.cholesky_ex", "linalg.eigvalsh",
        "linalg.qr", "linalg.slogdet", "linalg.vector_norm", "linalg.lu_factor", "linalg.lu_factor_ex",
        "linalg.lu", "linalg.lu_solve", "linalg.inv", "linalg.inv_ex", "linalg.solve", "linalg.solve_ex",
        "linalg.svd", "linalg.svdvals", "linalg.eigh", "topk", "sort")},
    **{name: "expected scalar_type {Result} but found {Out}" for name in ("cummax", "cummin", "diff", "logcumsumexp")},
    "linalg.solve_triangular": "expected scalar type {Result} but found {Out}",
    "kthvalue": "output values must be of same type as input",
    "mode": "expected scalar type '{Result}' but got '{Out}' for values output",
    "narrow_copy": "Expected self.dtype() == output.dtype() to be true, but got false.",
    "ormqr": "torch.ormqr: Expected input and result to have the same dtype, but input has dtype{Result} and "
             "result has dtype {Out}",
    "float_power": "the output given to float_power has dtype {Out} but the operation's result requires dtype "
                   "{Result}",
    "frexp": "torch.frexp() expects mantissa to have dtype {result} but got {out}",
    "frexp [1]": "torch.frexp() expects exponent to have int dtype but got {out}",
    **{name: _STRUCTURED for name in ("max.dim", "min.dim")},
    "kthvalue [1]": "output indices must be of scalar type Long",
    "mode [1]": "expected scalar type '{Result}' but got '{Out}' for indices output",
    **{name: "Expected tensor for 'values' to have the same type as tensor for argument #2 'self'; but type "
             "torch.{Out}Tensor does not equal torch.{Result}Tensor (while checking arguments for median)"
       for name in ("median", "nanmedian")},
    **{f"{name} [1]": "Expected tensor for argument #1 'indices' to have scalar type Long; but got "
                      "torch.{Out}Tensor instead (while checking arguments for median)"
       for name in ("median", "nanmedian")},
    **{name: "Found dtype {Out} but expected {Result}" for name in (
        "abs", "ceil", "frac", "floor", "neg", "round", "sign", "sgn", "trunc")},
    **{name: "result dtype {Out} does not match input dtype {Result}" for name in ("dot", "vdot")},
    "addbmm": "self and mat2 must have the same dtype, but got {Out} and {Result}",
    "mv": "addmv input tensors must have the same dtype, but got {Out}, {Result}, and {Result}",
    "masked_select": "masked_select(): self and result must have the same scalar type",
    "index_select": "index_select(): self and result must have the same scalar type",
    **{name: "quantile() out tensor must be same dtype as the input tensor" for name in ("quantile", "nanquantile")},
    "heaviside": "heaviside is not yet implemented for tensors with different dtypes.",
    "nan_to_num": "nan_to_num: dtype of out: {Out} should be same as input: {Result}",
    "take": "take(): self and out expected to have the same dtype, but got self.dtype = {Result} and "
            "out.dtype = {Out}",
    **{name: "torch.histogram: input tensor and hist tensor should have the same dtype, but got input {Result} "
             "and hist {Out}" for name in ("histogram", "histc")},
    **{name: "torch.searchsorted(): output tensor's dtype is wrong, it can only be Int(int32) or Long(int64) "
             "depending on whether out_int32 flag is True, but we got output tensor's dtype {Out} and out_int32 "
             "flag is {int32}" for name in ("bucketize", "searchsorted")},
    **{name: "tensordot: Expected the output tensor to have dtype {Result}, but got an output tensor with dtype "
             "{Out}" for name in ("inner", "tensordot")},
    "nonzero": "nonzero: Expected out tensor to have scalar type Long but got scalar type{Out}",
    **{name: "linalg.matrix_norm expected out tensor dtype {Result} but got: {Out}"
       for name in ("linalg.matrix_norm",)},
    **{name: "Expected the dtype for input and out to match, but got {Result} for input's dtype and {Out} for "
             "out's dtype." for name in ("amax", "amin")},
    "linalg.vecdot": "linalg.vecdot: Expected out of dtype{Result} but found {Out}",
    "linalg.multi_dot": "multi_dot(): expected out tensor to have dtype {result} but got {out}",
    "linalg.norm": "linalg.norm expected out tensor dtype {Result} but got: {Out}",
    "where": "Expected out type to be {Result} but got {Out}",
    "clamp.Scalar": "Found dtype {Out} but expected {Result}",
}

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


def accept_out(namespace, also=(), prefix=""):
    """Give every public function of ``namespace`` (a module's globals) that gives tensors and has
    no ``out`` parameter of its own torch's ``out=`` (``_NO_TENSOR``: those that give none); one wrapper per function, so aliases stay one object
    (``gt.arctan2 is gt.atan2``), and the modules in ``also`` that hand out the same functions
    (``gt.client.tensor``, ``gt.func``) get the same wrappers; ``prefix`` (``"linalg."``) goes before
    each function's name in messages and in the tables above. Returns the names wrapped."""
    wrappers, wrapped = {}, []
    for key, value in list(namespace.items()):
        if (key.startswith(("_",) + _NO_TENSOR_PREFIXES) or key in _NO_TENSOR or not inspect.isfunction(value)
                or not value.__module__.startswith("gt.") or getattr(value, "_takes_out", False)
                or "out" in _parameters(value)):
            continue
        if id(value) not in wrappers:
            wrappers[id(value)] = (value, with_out(value, prefix + value.__name__))
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
