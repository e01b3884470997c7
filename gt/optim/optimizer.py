"""The optimizer base class: it walks the parameters and their state; subclasses write the math.

A subclass writes two small methods, both on one parameter and both in place:

- ``_init_state(p, state, group)``: fill ``state`` (a dict) the first time ``p`` has a gradient;
- ``_update(p, grad, state, group)``: change ``p`` (and ``state``) in place.

``state_dict()`` uses torch's layout, so checkpoints read the same way in both frameworks.
"""

import collections
import functools
import numbers
import weakref

from gt import autograd
from gt.backend import B
from gt.tensor import Tensor
from gt.tensor.inplace import bump_versions
from gt.tensor.sparse_autograd import SparseSeen, refuse_sparse_grads
from gt.tensor.sparse_make import import_sparse
from gt.autograd import profiler_record
from gt.autograd.node_hooks import RemovableHandle
from gt.optim.state_dict_hooks import StateDictHooks, hooked_load_state_dict, hooked_state_dict

# torch's choices of kernel in a saved param group; a state dict of torch's carries them, and
# gt runs its own kernels whatever they say, so loading resets them (its constructors refuse them)
_SPEED_HINTS = {"capturable": False}

# id(parameter) -> the in_backward optimizer that updates it (two would update it twice). An
# optimizer holds its parameters, so while it lives the id names the same tensor.
_OWNER = weakref.WeakValueDictionary()
# Hyperparameters the base class checks in every group (a subclass may check more).
_NON_NEGATIVE = ("lr", "momentum", "dampening", "weight_decay", "eps")


class Optimizer(StateDictHooks):
    """Base class of gt's optimizers: ``param_groups``, ``state``, ``step()``, ``zero_grad()``.

    ``params`` is an iterable of tensors, or of dicts ``{'params': [...], **hyperparameters}``
    (one per group; missing hyperparameters come from ``defaults``); tensors may come as torch's
    ``(name, tensor)`` pairs (``model.named_parameters()``), kept as the group's ``param_names``.

        >>> w = gt.randn(3, requires_grad=True)
        >>> opt = gt.optim.SGD([w], lr=0.1)
        >>> (w * w).sum().backward(); opt.step(); opt.zero_grad()
    """

    _sparse_grads = False      # SGD and SparseAdam take sparse COO gradients (torch's)

    def __init__(self, params, defaults, in_backward=False):
        self.defaults = dict(defaults)
        # parameter -> its state dict (tensors hash by identity); {} for one never stepped, as torch's
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        if not isinstance(in_backward, bool):
            raise TypeError(f"{type(self).__name__}: in_backward must be True or False, got {in_backward!r}")
        self.in_backward = in_backward
        self._group_of = {}  # id(parameter) -> its group (in_backward: the hook's lookup)
        self._handles = []   # in_backward: the hooks registered on the parameters
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of tensors or of dicts, got a single tensor; pass [tensor]")
        if isinstance(params, dict):
            raise TypeError("params must be an iterable of tensors or of dicts, got a dict; pass [dict]")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if self.defaults.get("fused") and self.defaults.get("foreach"):    # torch's constructors' check
            raise RuntimeError(f"{type(self).__name__}: `fused` and `foreach` cannot be `True` together "
                               f"(got fused={self.defaults['fused']!r}, foreach={self.defaults['foreach']!r})")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:          # a subclass's own step runs the step hooks too
            cls.step = _with_step_hooks(cls.__dict__["step"])
        for name, wrap in (("state_dict", hooked_state_dict), ("load_state_dict", hooked_load_state_dict)):
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))

    def register_step_pre_hook(self, hook):
        """Run ``hook(optimizer, args, kwargs)`` before every ``step()``; it may return new
        ``(args, kwargs)`` for the step. Returns a handle whose ``remove()`` takes it off (torch's)."""
        return _add_hook(self, "_step_pre_hooks", hook)

    def register_step_post_hook(self, hook):
        """Run ``hook(optimizer, args, kwargs)`` after every ``step()``. Returns a handle whose
        ``remove()`` takes it off (torch's)."""
        return _add_hook(self, "_step_post_hooks", hook)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])

    # ---- parameter groups ------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (defaults fill the rest).

            >>> opt.add_param_group({'params': [head_w], 'lr': 1e-2})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("parameters must be given in an ordered collection (list or tuple), not a set: "
                            "their order indexes the optimizer state")
        params, names = _split_names(list(params))
        seen = set()
        for i, p in enumerate(params):
            _check_param(p, i)
            if id(p) in seen:
                raise ValueError(f"parameter {i} (shape {p.shape}) appears twice in the same parameter group")
            seen.add(id(p))
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken & seen:
            raise ValueError("some parameters appear in more than one parameter group")
        if any(("param_names" in g) != (names is not None) for g in self.param_groups):
            raise ValueError("all optimizer param groups should be with/without names. cannot add param group "
                             f"{'with' if names is not None else 'without'} names to the optimizer")
        group = param_group     # torch's: the caller's dict is the group (a later change to it counts)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        if "lr" in group:
            group["lr"] = lr_value(group["lr"])
        betas = group.get("betas")
        if isinstance(betas, (tuple, list)) and any(isinstance(b, Tensor) for b in betas):
            group["betas"] = tuple(lr_value(b, f"betas[{i}]") for i, b in enumerate(betas))  # floats, as the lr
        self._check_group(group)
        self.param_groups.append(group)
        if self.in_backward:
            for p in params:
                if p.requires_grad:         # a frozen one never gets a gradient to apply
                    self._step_in_backward(p, group)

    def _check_group(self, group):
        """Reject hyperparameters that cannot be right, naming the value. Subclasses may add checks."""
        name = type(self).__name__
        for key in _NON_NEGATIVE:
            if key not in group:
                continue
            value = group[key]
            if not _is_number(value):
                raise TypeError(f"{name}: {key} must be a number, got {value!r}")
            if not value >= 0:  # also catches nan
                raise ValueError(f"{name}: invalid {key} {value!r}: it must be >= 0")
        if "betas" in group:
            betas = group["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(_is_number(b) for b in betas):
                raise TypeError(f"{name}: betas must be a pair of numbers, got {betas!r}")
            for i, beta in enumerate(betas):
                if not 0.0 <= beta < 1.0:
                    raise ValueError(f"{name}: invalid beta{i + 1} {beta!r} in betas={tuple(betas)}: "
                                     "it must be in [0, 1)")

    # ---- stepping inside the backward (in_backward=True) --------------------------------------
    def _step_in_backward(self, p, group):
        """Update ``p`` from its post-accumulate-grad hook, then drop its gradient; plain
        gradient descent may instead be fused into the product that makes the gradient."""
        if _OWNER.get(id(p)) is not None:
            raise ValueError(f"a parameter of shape {p.shape} is already updated in the backward by another "
                             "optimizer; a parameter may have only one in_backward optimizer")
        if not self._handles:   # the first one: when this optimizer is dropped, its hooks go too
            weakref.finalize(self, _remove_hooks, self._handles)
        _OWNER[id(p)] = self
        self._group_of[id(p)] = group
        self._handles.append(p.register_post_accumulate_grad_hook(_InBackward(self)))
        alpha = self._fused_alpha(id(p), weakref.ref(self))
        if alpha is not None:
            autograd.register_fused_update(p, alpha)

    def _fused_alpha(self, key, optimizer):
        """A callable giving the scale of a fused update ``p += alpha * grad`` of the parameter
        whose id is ``key`` (None: never fused). ``optimizer`` is a weak reference to self: the
        callable must not keep the optimizer alive. Optimizers whose update is plain gradient
        descent in some settings override this."""
        return None

    def _step_one(self, p):
        if not self._sparse_grads and SparseSeen.made:
            refuse_sparse_grads(type(self).__name__, (p,))
        with autograd.no_grad():
            self._update_one(p, self._group_of[id(p)])
        p._bump_version()
        autograd.zero_grads([p])   # the gradient is spent: no parameter's gradient outlives its update

    # ---- the walk ----------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (``set_to_none=True``) or fill it with zeros."""
        params = (p for group in self.param_groups for p in group["params"])
        if profiler_record.active is None:
            return autograd.zero_grads(params, set_to_none)
        return profiler_record.around(f"Optimizer.zero_grad#{type(self).__name__}.zero_grad",   # torch's range
                                      autograd.zero_grads, params, set_to_none)

    @autograd.no_grad()
    def step(self, closure=None):
        """Update every parameter that has a gradient, in place. Returns ``closure()`` if given.

        ``closure`` re-evaluates the model and returns the loss (run with gradients on). With
        ``in_backward=True`` the updates happened in ``backward()`` already and ``step()``
        changes nothing (a loop written for the usual order runs unchanged).
        """
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        if self.in_backward:
            return loss
        for group in self.param_groups:
            # asking for the tensors that hold a gradient leaves one held as factors unmade
            params = [p for p in group["params"] if p._grad_value is not None or p._grad_factors is not None]
            if not self._sparse_grads and SparseSeen.made:    # a flag: no pass over the parameters until then
                refuse_sparse_grads(type(self).__name__, params)
            self._update_group(params, group)
            bump_versions(params)     # a graph that saved them before this step can no longer backward
        return loss

    def _update_group(self, params, group):
        """Update ``params`` (those of ``group`` that have a gradient); one at a time by default,
        an optimizer with a multi-parameter engine call overrides it."""
        for p in params:
            self._update_one(p, group)

    def _state_of(self, p, group):
        state = self.state[p]       # a defaultdict(dict), as torch's
        if not state:        # never stepped (``opt.state[p]`` may have made it, empty)
            self._init_state(p, state, group)
        return state

    def _update_one(self, p, group):
        self._update(p, p.grad, self._state_of(p, group), group)

    def _init_state(self, p, state, group):
        """Fill ``state`` for ``p`` before its first update (nothing by default)."""

    def _update(self, p, grad, state, group):
        raise NotImplementedError(f"{type(self).__name__} must implement _update(p, grad, state, group)")

    # ---- checkpoints ---------------------------------------------------------------------
    def state_dict(self):
        """A copy of the optimizer's state in torch's layout.

        ``{'state': {index: {name: array or int}}, 'param_groups': [{**hyperparameters, 'params': [index]}]}``;
        parameters are numbered in group order; arrays are numpy copies.

            >>> ckpt = opt.state_dict(); opt2.load_state_dict(ckpt)
        """
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if s and id(p) in index:
                state[index[id(p)]] = {k: _export(v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state and hyperparameters saved by ``state_dict()``.

        Groups must match in number and size, and every saved array the shape of its parameter;
        otherwise a ValueError says what differs and nothing is loaded.
        """
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("load_state_dict expects a dict with 'state' and 'param_groups' entries") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s), "
                             f"this optimizer has {len(self.param_groups)}")
        by_index, groups = {}, []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i}: the loaded state dict has {len(saved['params'])} "
                                 f"parameters, this optimizer has {len(group['params'])}")
            by_index.update(zip(saved["params"], group["params"]))
            new_group = dict(saved, params=group["params"])
            if "param_names" in group and "param_names" not in saved:
                new_group["param_names"] = group["param_names"]
            for hint, off in _SPEED_HINTS.items():   # a CUDA run's capturable=True: not gt's
                if new_group.get(hint, off) not in (None, False):
                    new_group[hint] = off
            # the lr unchecked, as torch's: a schedule can leave -1e-18 in a checkpoint (LinearLR to 0)
            self._check_group({k: v for k, v in new_group.items() if k != "lr"})
            groups.append(new_group)
        state = {}
        for key, saved in saved_state.items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"loaded state has an entry for parameter {key}, which no group lists")
            state[p] = {name: _import(value, p, key, name) for name, value in saved.items()}
        # Everything converted and checked: only now replace the live state.
        self.state = collections.defaultdict(dict, state)
        self.param_groups[:] = groups
        for group in groups:
            self._group_of.update((id(p), group) for p in group["params"])


def _add_hook(optimizer, name, hook):
    hooks = optimizer.__dict__.get(name)
    if hooks is None:
        hooks = optimizer.__dict__[name] = []
    hooks.append(hook)
    return RemovableHandle(hooks, hook)


def _with_step_hooks(step):
    """``step`` running the optimizer's step pre- and post-hooks around it (once: a subclass's
    step that calls its base's runs them at the outer call only)."""

    @functools.wraps(step)
    def hooked_step(self, *args, **kwargs):
        if profiler_record.active is not None:      # torch's range around the step, under the profiler
            name = f"Optimizer.step#{type(self).__name__}.step"
            if not profiler_record.inside(name):    # once: a subclass's step calling its base's is one range
                with profiler_record.record_function(name):
                    return hooked_step(self, *args, **kwargs)
        self._opt_called = True     # torch's flag: an lr scheduler stepped before any optimizer step warns
        pre, post = self.__dict__.get("_step_pre_hooks"), self.__dict__.get("_step_post_hooks")
        if not (pre or post) or self.__dict__.get("_in_hooked_step"):
            return step(self, *args, **kwargs)
        self._in_hooked_step = True
        try:
            for hook in list(pre or ()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError("optimizer_pre_hook must return None or a tuple of (new_args, "
                                           f"new_kwargs), but got {result}.")
                    args, kwargs = result
            out = step(self, *args, **kwargs)
            for hook in list(post or ()):
                hook(self, args, kwargs)
            return out
        finally:
            self._in_hooked_step = False

    return hooked_step


Optimizer.step = _with_step_hooks(Optimizer.step)
Optimizer.state_dict = hooked_state_dict(Optimizer.state_dict)
Optimizer.load_state_dict = hooked_load_state_dict(Optimizer.load_state_dict)


def _remove_hooks(handles):
    for handle in handles:
        handle.remove()


class _InBackward:
    """A parameter's post-accumulate-grad hook that steps its optimizer. It holds the optimizer
    weakly: the hook registry must not keep an optimizer (and its state) alive after the user
    dropped it; a dropped optimizer's parameters are then left alone, gradients and all."""

    def __init__(self, optimizer):
        self._optimizer = weakref.ref(optimizer)

    def __call__(self, p):
        optimizer = self._optimizer()
        if optimizer is not None:
            optimizer._step_one(p)


def decay_groups(params, weight_decay):
    """Two parameter groups, nanoGPT's habit: weight decay on >= 2-D tensors (matrices, embeddings),
    none on 1-D ones (biases, norm gains). Tensors that do not require grad are left out.

        >>> opt = gt.optim.AdamW(gt.optim.decay_groups(model.parameters(), 0.1), lr=3e-4)
    """
    params = [params] if isinstance(params, Tensor) else [p for p in params if p.requires_grad]
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def _whole(*tensors):
    """Whether every tensor holds its whole array (none is spread over the mesh): the engine's
    multi-parameter updates take them; sharded ones take the tensor arithmetic."""
    return all(t._placed is None for t in tensors)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def lr_value(lr, name="lr"):
    """``lr`` (or the hyperparameter ``name``) as a float where it is a tensor (torch takes a
    1-element one), else as given; the updates read a float (a group keeps the float)."""
    if isinstance(lr, Tensor):
        if lr.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return float(lr.item())
    return lr


def _split_names(params):
    """``params`` and their names where given as torch's ``(name, tensor)`` pairs
    (``model.named_parameters()``); names None where none is given."""
    pairs = [isinstance(p, tuple) for p in params]
    if not any(pairs):
        return params, None
    if not all(pairs):
        raise ValueError("all optimizer params should be with/without names. Some param names are missing")
    return [p[1] for p in params], [p[0] for p in params]


def _check_param(p, i):
    if not isinstance(p, Tensor):
        raise TypeError(f"an optimizer can only optimize gt tensors, but parameter {i} is a {type(p).__name__}")
    if not p.is_leaf:
        raise ValueError(f"cannot optimize a non-leaf tensor (parameter {i}, shape {p.shape}, grad_fn={p.grad_fn}); "
                         "use .detach().requires_grad_() to make a leaf")


def _export(value):
    if isinstance(value, Tensor):
        if value.is_sparse:         # SGD's momentum on a sparse gradient: a sparse copy, as torch saves it
            return value.detach().clone()
        return B.to_numpy(B.copy(value._data))  # a copy: later steps must not change a saved checkpoint
    return value


def _import(value, p, index, name):
    # 'step' is a count (torch saves it as a 0-d tensor); every other array is shaped like its parameter.
    if name == "step":
        return int(value.item() if hasattr(value, "item") else value)
    if not hasattr(value, "shape"):
        return value
    shape = tuple(value.shape)
    if shape != p.shape:
        raise ValueError(f"loaded state '{name}' of parameter {index} has shape {shape}, the parameter has {p.shape}")
    if getattr(value, "is_sparse", False):      # SGD's sparse momentum buffer (gt's, or torch's tensor)
        return import_sparse(value, p.dtype)
    data = value._data if isinstance(value, Tensor) else value
    return Tensor._wrap(B.asarray(data, dtype=p.dtype, copy=True))
