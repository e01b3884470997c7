"""``gt.func``'s module helpers: ``functional_call``, ``stack_module_state``, ``functionalize``,
``replace_all_batch_norm_modules_``."""


from gt.tensor import stack
from gt.nn.batchnorm import _BatchNorm
from gt.nn.module import Module
from gt.nn.norms import _InstanceNorm
from gt.nn.stateless import _functional_call


# ---- modules --------------------------------------------------------------------------------
def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *, tie_weights=True, strict=False):
    """Call ``module(*args, **kwargs)`` with the tensors of ``parameter_and_buffer_dicts`` (a dict
    ``{dotted name: tensor}``, or a tuple/list of such with no key twice) in place of its
    parameters and buffers; names not given keep the module's own, and the module is restored
    afterwards (also on an exception). ``args`` that is not a tuple is the one positional
    argument. ``tie_weights``: a value given for one of tied names (one tensor registered twice)
    is used for all of them. ``strict=True``: missing or unexpected names raise RuntimeError.

        >>> params = {k: v.detach() for k, v in model.named_parameters()}
        >>> out = gt.func.functional_call(model, params, (x,))
    """
    if isinstance(parameter_and_buffer_dicts, dict):
        values = parameter_and_buffer_dicts
    elif isinstance(parameter_and_buffer_dicts, (tuple, list)):
        if not all(isinstance(d, dict) for d in parameter_and_buffer_dicts):
            raise ValueError("Expected all elements of parameter_and_buffer_dicts to be dictionaries")
        counts = {}
        for d in parameter_and_buffer_dicts:
            for k in d:
                counts[k] = counts.get(k, 0) + 1
        repeated = [k for k, n in counts.items() if n > 1]
        if repeated:
            raise ValueError(f"{repeated} appeared in multiple dictionaries; behavior of functional call is ambiguous")
        values = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple of dicts, but got "
                         f"{type(parameter_and_buffer_dicts)}")
    return _functional_call(module, values, args, kwargs, tie_weights=tie_weights, strict=strict)


def stack_module_state(models):
    """``(params, buffers)``: for models of one class, each named parameter and buffer stacked
    over the models along a new first dimension (``{name: tensor}``). Stacked parameters are new
    leaves that require grad (when the models' do): for ensembling with ``vmap`` and
    ``functional_call`` over a stateless copy of one model.
    """
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if not all(type(m) is type(models[0]) for m in models) or not isinstance(models[0], Module):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(named):
        all_named = [dict(n) for n in named]
        out = {}
        for k in all_named[0]:
            tensors = [d[k] for d in all_named]
            grads = [t.requires_grad for t in tensors]
            if any(grads) and not all(grads):
                raise RuntimeError(f"Expected {k} from each model to have the same .requires_grad")
            # the stack is made outside any graph: a new leaf, as torch's
            result = stack([t.detach() for t in tensors])
            out[k] = result._set_requires_grad(True) if all(grads) else result
        return out
    return (stacked(m.named_parameters() for m in models), stacked(m.named_buffers() for m in models))


def functionalize(func, *, remove="mutations"):
    """``func`` itself: torch's ``functionalize`` rewrites in-place ops of a traced program into
    out-of-place ones with the same results; gt runs eagerly and traces nothing, so the function
    already gives those results."""
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(f"functionalize(f, remove='mutations'): received invalid argument for remove={remove}. "
                           "Valid options are:\n     remove='mutations': all inplace and out= operators will be "
                           "removed from the program, and replaced with their out-of-place equivalents.\n     "
                           "remove='mutations_and_views': In addition to the above, all aliasing operators {view} "
                           "will be replaced with their non-aliasing counterparts, {view}_copy.\n")
    return func


def replace_all_batch_norm_modules_(root):
    """In place: every batch norm module of ``root`` (``root`` too) stops tracking running
    statistics (``running_mean``, ``running_var`` and ``num_batches_tracked`` become None), so that
    it normalizes with batch statistics, as ``vmap`` over a model needs. Returns ``root``."""
    for module in root.modules():
        # not the instance norms (gt's share _BatchNorm's code; torch's are no batch norms)
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm) and module.track_running_stats:
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root
