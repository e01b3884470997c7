"""Backward hooks on modules, with torch's semantics: ``register_full_backward_pre_hook`` and
``register_full_backward_hook`` on every ``Module``, each returning a ``RemovableHandle``.

    >>> seen = []
    >>> handle = model.fc1.register_full_backward_hook(
    ...     lambda m, grad_input, grad_output: seen.append(grad_output[0].shape))
    >>> model(x).sum().backward()
    >>> seen                                  # d(loss)/d(fc1's output), once per backward
    [(8, 32)]

``grad_input`` and ``grad_output`` are tuples over the module's positional arguments and its
outputs (a tensor or a tuple): None for what is not a tensor, and for an output no gradient
reached; a tensor argument that does not require grad gets zeros, as in torch (its gradient is
materialized there). The pre-hook runs once every output's gradient is known and may return new
ones; the hook runs when the inputs' gradients are known and may return new ones, which flow on
instead. When no argument requires grad, the hook runs right after the pre-hooks with
``grad_input`` all None (and may return only None). The hooks that run are those registered when
the module was called (torch's rule), with recording off (on under ``create_graph=True``).

How: as torch's ``BackwardHookFunction``, a call wraps the positional tensors that require grad,
and then the outputs that do, in identity tape entries (views of the same values). gt's ops have
one output, so torch's one node over all of them is two kinds of entry here: each wrapped tensor
is a ``_Pass`` (graph inputs: the tensor it wraps, which gets no gradient from it, and a 0-d
placeholder) and one ``_Gate`` makes the placeholder from all the tensors of its side. The walk
visits a tensor only after every op that reads it, so the gate runs once, after every pass of
its side has handed in its gradient (a zero goes to the placeholder): it sees the gradients of
all the outputs (or inputs) at once, runs the hooks, and returns what they leave to the tensors
it wraps. The output gate also gives the input placeholder a zero when the inputs are in the
outputs' graph, so the input side runs even where a pre-hook stopped every gradient (torch walks
that node too, with zeros). Gradients are handed on as they lie on the mesh (sharded or partial:
the entries are layout-neutral, as ``Redistribute``), so a sharded module stays sharded and its
hooks see sharded or partial gradient tensors (their values are the unsharded ones).

As in torch, a wrapped input or output (a view) cannot be changed in place while recording: gt
refuses it with its error for views it cannot follow (clone first). Where gt differs from torch:
the warning torch gives when a hook fires without inputs that require grad is given only when a
full backward hook (not only a pre-hook) is registered; a hook that is not callable is refused at
registration (torch fails only when it is called); a pre-hook of a one-output module may return
a tensor instead of a 1-tuple; a replaced gradient of the wrong shape or dtype gets gt's message.
The deprecated ``register_backward_hook`` runs its hook as a full backward hook (with a warning
saying so); torch's global ``register_module_full_backward_hook`` and
``register_module_full_backward_pre_hook`` (gt/nn/global_hooks.py) run before a module's own.
"""

import warnings

from gt import autograd, dtypes
from gt.autograd.deferred import materialized
from gt.backend import B
from gt.nn import hooks as module_hooks
from gt.sharding.layout import Placed
from gt.tensor import Tensor
from gt.tensor.dispatch import Redistribute
from gt.utils.hooks import RemovableHandle

_NO_INPUT_GRAD = ("Full backward hook is firing when gradients are computed with respect to module outputs since "
                  "no inputs require gradients (see torch.nn.Module.register_full_backward_hook)")


class BackwardHooks:
    """The backward half of ``Module``'s hooks: their registration, and the wrapping of a hooked
    module's inputs and outputs that ``ModuleHooks._call_with_hooks`` asks for."""

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """Run ``hook(module, grad_output) -> tuple of tensors or None`` each time the gradients
        of the module's outputs are known (``grad_output``: one entry per output, None where no
        gradient reached it); a tuple it returns (same length) replaces them, and flows into
        ``forward``'s graph instead. ``prepend=True`` runs it before the hooks already
        registered. Returns a ``RemovableHandle``."""
        return self._add_backward_hook("_backward_pre_hooks", hook, prepend, "register_full_backward_pre_hook")

    def register_full_backward_hook(self, hook, prepend=False):
        """Run ``hook(module, grad_input, grad_output) -> tuple of tensors or None`` each time the
        gradients of the module's positional arguments are known (``grad_input``: one entry per
        argument, None for a non-tensor; ``grad_output`` as the pre-hooks left it). A tuple it
        returns (same length) replaces ``grad_input``: those are the gradients that flow on to
        the arguments (None stops one). When no argument requires grad it runs with the output
        gradients, ``grad_input`` all None, and may return only None. ``prepend=True`` runs it
        first. Returns a ``RemovableHandle``.

            >>> h = lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))
            >>> lin(x).sum().backward()     # x.grad is half of what it would be
        """
        self._hook_dicts(hook, "register_full_backward_hook")   # a non-callable is refused before the mark
        _one_kind(self, True, "on a single Module")
        return self._add_backward_hook("_backward_hooks", hook, prepend, "register_full_backward_hook")

    _is_full_backward_hook = None   # torch's: which kind of backward hook the module has (no mixing)

    def register_backward_hook(self, hook):
        """torch's deprecated backward hook, run here as a full backward hook (with a
        ``FutureWarning``): ``grad_input`` is over the module's positional arguments, as
        ``register_full_backward_hook``'s, where torch's gives the gradients of the inputs of the
        last operation of ``forward`` (the same for a one-operation module such as ``ReLU``).
        Returns a ``RemovableHandle``."""
        warnings.warn(DEPRECATED_BACKWARD_HOOK.format(where="register_full_backward_hook"), FutureWarning,
                      stacklevel=2)
        self._hook_dicts(hook, "register_backward_hook")
        _one_kind(self, False, "on a single Module")
        return self._add_backward_hook("_backward_hooks", hook, False, "register_backward_hook")

    def _add_backward_hook(self, name, hook, prepend, fn):
        hooks = self._hook_dicts(hook, fn)[name]
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def _backward_hook_call(self, args):
        """For a call of a module with backward hooks: (``args`` with each positional tensor that
        requires grad wrapped, the ``_Call`` that wraps the outputs), or (``args``, None) when
        nothing is recorded (grad mode off)."""
        if not autograd.is_grad_enabled():
            return args, None
        call = _Call(self, [*module_hooks._global_backward_hooks.values(), *self._backward_hooks.values()],
                     [*module_hooks._global_backward_pre_hooks.values(), *self._backward_pre_hooks.values()])
        return call.wrap_inputs(args), call


class _Call:
    """One call of a hooked module: the hooks it runs (those registered at the call, as torch's)
    and the output gradients kept from the output gate until the input gate runs the hooks."""

    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs = None
        self.n_inputs, self.input_specs, self.wrapped_inputs = 0, {}, None
        self.input_placeholder = None   # until the outputs are wrapped (no cycle through the graph after)
        self.n_outputs, self.output_specs, self.wrapped_outputs = 0, {}, ()

    def wrap_inputs(self, args):
        self.n_inputs = len(args)
        self.input_specs = {i: (a.shape, a.dtype) for i, a in enumerate(args) if isinstance(a, Tensor)}
        wrap = [i for i in self.input_specs if args[i].requires_grad]
        if not wrap:
            return args
        self.wrapped_inputs = wrap
        new, self.input_placeholder = _wrap([args[i] for i in wrap], self._inputs_done)
        out = list(args)
        for i, t in zip(wrap, new):
            out[i] = t
        return tuple(out)

    def wrap_outputs(self, result):
        """``result`` with its tensors that require grad wrapped (a tensor, or a tuple of them)."""
        single = isinstance(result, Tensor)
        if not (single or isinstance(result, tuple)):
            warnings.warn("For backward hooks to be called, module output should be a Tensor or a tuple of Tensors "
                          f"but received {type(result)}", stacklevel=4)
            return result
        outs = (result,) if single else result
        link, self.input_placeholder = self.input_placeholder, None
        self.n_outputs = len(outs)
        self.output_specs = {i: (o.shape, o.dtype) for i, o in enumerate(outs) if isinstance(o, Tensor)}
        wrap = [i for i in self.output_specs if outs[i].requires_grad]
        if not wrap:
            return result
        self.wrapped_outputs = wrap
        new = list(outs)
        if link is not None and not _reaches([outs[i] for i in wrap], link):
            link = None
        for i, t in zip(wrap, _wrap([outs[i] for i in wrap], self._outputs_done, link)[0]):
            new[i] = t
        if single:
            return new[0]
        return tuple(new) if type(result) is tuple else type(result)(*new)

    def _outputs_done(self, grads, graph):
        """The gradients of the wrapped outputs, all known: the pre-hooks (and the hooks, when
        no input is wrapped) run on them; returns what flows into ``forward``'s graph."""
        go = [None] * self.n_outputs
        for i, g in zip(self.wrapped_outputs, grads):
            go[i] = None if g is None else _tensor(g)
        go = tuple(go)
        for hook in self.pre_hooks:
            out = hook(self.module, go)
            if out is not None:
                go = _replaced(out, go, "Backward pre hook", "grad_output", hook)
        if self.wrapped_inputs is None:
            self._run_without_inputs(go)
        else:
            self.grad_outputs = go
        return tuple(_passed(go[i], self.output_specs[i], graph, hook_name="grad_output", index=i)
                     for i in self.wrapped_outputs)

    def _run_without_inputs(self, go):
        if self.hooks:
            warnings.warn(_NO_INPUT_GRAD, stacklevel=2)
        gi = (None,) * self.n_inputs
        for hook in self.hooks:
            res = hook(self.module, gi, go)
            if res is not None and not (isinstance(res, tuple) and all(r is None for r in res)):
                raise RuntimeError("Backward hook for Modules where no input requires gradient should always return "
                                   f"None or None for all gradients; {_name(hook)} returned {type(res).__name__}")

    def _inputs_done(self, grads, graph):
        """The gradients of the wrapped inputs, all known: the hooks run on them (with the output
        gradients kept by ``_outputs_done``); returns what flows on to the inputs."""
        go, self.grad_outputs = self.grad_outputs, None
        if go is None:   # reached without passing the outputs (as torch: no hook runs)
            return tuple(grads)
        gi = [None] * self.n_inputs
        for i, (shape, dtype) in self.input_specs.items():   # torch materializes the missing ones as zeros
            gi[i] = Tensor._wrap(B.zeros(shape, dtype))
        for i, g in zip(self.wrapped_inputs, grads):
            if g is not None:
                gi[i] = _tensor(g)
        gi = tuple(gi)
        for hook in self.hooks:
            out = hook(self.module, gi, go)
            if out is not None:
                gi = _replaced(out, gi, "Backward hook", "grad_input", hook)
        return tuple(_passed(gi[i], self.input_specs[i], graph, hook_name="grad_input", index=i)
                     for i in self.wrapped_inputs)


DEPRECATED_BACKWARD_HOOK = (
    "gt runs a hook of the deprecated register_backward_hook as a full backward hook: its grad_input holds the "
    "gradients of the module's inputs, where torch's holds those of the inputs of the last operation in "
    "forward; use {where} for torch's documented behavior")


def _one_kind(owner, full, where):
    """Mark ``owner`` (a module, or the ``global_hooks`` module) as having full (or deprecated)
    backward hooks; refuses to mix the two kinds, as torch."""
    if owner._is_full_backward_hook is (not full):
        raise RuntimeError(f"Cannot use both regular backward hooks and full backward hooks {where}. "
                           "Please use only one of them.")
    owner._is_full_backward_hook = full


def _replaced(out, old, who, what, hook):
    """A hook's result as the new tuple of gradients, checked: the same length as ``old``."""
    if isinstance(out, Tensor):
        out = (out,)
    if not isinstance(out, (tuple, list)):
        raise TypeError(f"{who} {_name(hook)} must return None or a tuple of tensors (the new {what}), "
                        f"got {type(out).__name__}")
    if len(out) != len(old):
        raise RuntimeError(f"{who} returned an invalid number of {what}, got {len(out)}, but expected {len(old)}")
    return tuple(out)


def _passed(t, spec, graph, hook_name, index):
    """The gradient tensor ``t`` (or None) as it flows on, checked against its tensor's shape and
    dtype: the tensor itself under ``create_graph``, else its value, copied (the hooks may keep
    the tensor they saw or returned; the walk may hand what flows on to a leaf as its .grad)."""
    if t is None:
        return None
    shape, dtype = spec
    if not isinstance(t, Tensor):
        raise TypeError(f"{hook_name}[{index}] from a module backward hook must be a tensor or None, "
                        f"got {type(t).__name__}")
    if t.shape != shape or t.dtype != dtype:
        raise RuntimeError(f"a module backward hook has changed the size or type of {hook_name}[{index}]: "
                           f"expected shape {shape} and {dtype}, got shape {t.shape} and {t.dtype}")
    if graph:
        return t
    value = t._value
    if isinstance(value, Placed):
        return Placed(value.shards, value.placement, value.shape, owned=False)
    return B.copy(value)


def _tensor(g):
    """A gradient of the walk (engine array, ``Placed``, factors, or a recorded tensor) as a tensor."""
    if isinstance(g, Tensor):
        return g
    value = materialized(g)
    if isinstance(value, Placed) and value.owned:
        value = Placed(value.shards, value.placement, value.shape, owned=False)
    return Tensor._from_value(value)


def _name(hook):
    return repr(getattr(hook, "__name__", type(hook).__name__))


class _Gate(Redistribute):
    """Tape entry of the 0-d placeholder made from the tensors one side of a call wraps: walked
    after each of their ``_Pass``es, it hands all their gradients to ``done`` at once."""

    __slots__ = ("done", "grads", "link")
    name = "BackwardHookFunction"

    def __repr__(self):
        return "<BackwardHookFunctionBackward>"

    def _finish(self, graph):
        grads, self.grads = self.grads, [None] * len(self.grads)
        out = self.done(grads, graph)
        return out + (_zero(graph),) if self.link else out

    def backward(self, g):
        with autograd.no_grad():
            return self._finish(False)

    def backward_graph(self, g):
        return self._finish(True)


class _Pass(Redistribute):
    """Tape entry of one wrapped tensor (the same values, so a view of the tensor it wraps, its
    first input, which gets no gradient from here): its gradient goes to its gate, a zero to the
    placeholder. Being a view that gt cannot replay, it is refused by an in-place change."""

    __slots__ = ("gate", "index")
    name = "BackwardHookFunction"

    def __repr__(self):
        return "<BackwardHookFunctionBackward>"

    def backward(self, g):
        self.gate.grads[self.index] = g
        return None, _zero(False)

    def backward_graph(self, g):
        self.gate.grads[self.index] = g
        return None, _zero(True)


def _zero(graph):
    """The gradient a placeholder gets: a 0-d zero (a tensor under ``create_graph``)."""
    zero = B.zeros((), dtypes.float32)
    return Tensor._wrap(zero) if graph else zero


def _reaches(tensors, target):
    """Whether ``target`` is in the recorded graph of ``tensors``. The input gate of a call is
    then walked whenever its output gate is (torch walks every node on a path from the loss,
    even where the gradient was stopped, and materializes zeros there)."""
    seen, stack = set(), list(tensors)
    while stack:
        t = stack.pop()
        if t is target:
            return True
        if t._ctx is None or id(t) in seen:
            continue
        seen.add(id(t))
        stack.extend(p for p in t._ctx.inputs if isinstance(p, Tensor) and p._requires_grad)
    return False


def _record(node, inputs, out, shape):
    node.inputs, node.released, node.target, node.out_shape = tuple(inputs), False, None, shape
    out._requires_grad = True
    out._ctx = node
    autograd.put_on_tape(node, out)


def _wrap(tensors, done, link=None):
    """(``tensors`` (each requires grad) as new tensors of the same values, whose gradients reach
    ``done(grads, graph)`` together, once per backward (it returns the gradients that flow on),
    the placeholder their gate makes). ``link``: the input placeholder of the call, given a zero
    by this gate so that the input gate is walked after it even where no gradient reached it."""
    gate = _Gate()
    gate.done, gate.grads, gate.link = done, [None] * len(tensors), link is not None
    placeholder = Tensor._wrap(B.zeros((), dtypes.float32))
    _record(gate, tensors if link is None else (*tensors, link), placeholder, ())
    out = []
    for i, t in enumerate(tensors):
        node = _Pass()
        node.gate, node.index = gate, i
        view = Tensor._from_value(t._value)
        _record(node, (t, placeholder), view, t.shape)
        out.append(view)
    return out, placeholder
