"""``Module``: the base class of every layer, with PyTorch's conventions.

Attributes that are ``Parameter``s or ``Module``s register themselves on
assignment, so ``named_parameters()`` and ``state_dict()`` find every weight at
every depth under dotted names (``blocks.0.attn.q_proj.weight``).
"""

import collections
import weakref

from gt import autograd
from gt.nn import global_hooks, state_dict_hooks
from gt.nn.backward_hooks import BackwardHooks
from gt.nn.hooks import ModuleHooks
from gt.nn.lookup import ModuleLookup
from gt.nn.module_devices import ModuleDevices
from gt.nn.parameter import Parameter
from gt.nn.state import IncompatibleKeys  # noqa: F401  (re-exported)
from gt.tensor import Tensor


class Members(collections.OrderedDict):
    """One of a module's three registries (``_parameters``, ``_buffers``, ``_modules``): an ordered
    dict ``name -> value``, as torch's, that also keeps each entry as a plain attribute of its
    module. ``self.weight`` in a forward is then an instance-dict read (0.02 us) instead of a
    ``__getattr__`` call through the registries (0.53 us; a forward of the default model reads
    157 of them, a training step of a small model more). The registry stays the truth: every
    way of changing it (``m._modules["fc"] = ...``, ``del``, ``pop``, ``update``, ``clear``)
    updates the attribute, and ``Module.__getattr__`` still answers from it. A shallow copy
    (``copy.copy``) shares the registries with its original, as torch's does, and both see every
    change; a deep copy or an unpickled module gets registries of its own (``Module.__setstate__``
    makes it their owner)."""

    _owners = ()   # weak references to the modules whose attributes mirror this registry

    def __init__(self, module=None):
        super().__init__()
        self._owners = () if module is None else (weakref.ref(module),)

    def owner(self):
        """The module this registry belongs to (the first one alive), or None."""
        return next((m for m in (r() for r in self._owners) if m is not None), None)

    def _attribute_dicts(self):
        return [m.__dict__ for m in (r() for r in self._owners) if m is not None]

    def __setitem__(self, name, value):
        super().__setitem__(name, value)
        for attributes in self._attribute_dicts():
            attributes[name] = value

    def __delitem__(self, name):
        super().__delitem__(name)
        self._forget(name)

    def pop(self, name, *default):
        had = name in self
        value = super().pop(name, *default)
        if had:
            self._forget(name)
        return value

    def popitem(self, last=True):
        name, value = super().popitem(last)
        self._forget(name)
        return name, value

    def _forget(self, name):
        for attributes in self._attribute_dicts():
            attributes.pop(name, None)

    def clear(self):
        for attributes in self._attribute_dicts():
            for name in self:
                attributes.pop(name, None)
        super().clear()

    def __reduce__(self):
        return type(self), (), None, None, iter(self.items())

    def own(self, module):
        """Add ``module`` to the owners (a copy, or an unpickled module) and its attributes the entries."""
        alive = tuple(r for r in self._owners if r() is not None and r() is not module)
        self._owners = alive + (weakref.ref(module),)
        module.__dict__.update(self)


class ParameterRegistry(Members):
    """``module._parameters``: torch's ordered dict ``name -> Parameter``, which also takes the
    public gt's way of registering weights, as a list::

        self.gamma = gt.ones(dim, requires_grad=True)
        self._parameters.extend([self.gamma, self.beta])

    ``append``/``extend`` register each tensor under the name of the attribute that holds it
    (``gamma``), else ``param_<i>``. The tensor itself becomes the ``Parameter`` (the same
    object, so ``self.gamma``, the optimizer and any other reference all see one tensor).
    """

    def append(self, tensor):
        module = self.owner()
        if module is None:
            raise RuntimeError("_parameters.append: this registry belongs to no module")
        if not isinstance(tensor, Tensor):
            raise TypeError(f"_parameters.append: expected a gt.Tensor, got {type(tensor).__name__}")
        if any(p is tensor for p in self.values()):
            return
        if not tensor.is_leaf:
            raise ValueError("_parameters.append: only a leaf tensor can be a parameter, this one was computed "
                             f"by {tensor.grad_fn.name}; create it with gt.zeros/gt.randn(..., requires_grad=True) "
                             "or pass t.detach().requires_grad_()")
        if tensor._placed is not None:
            tensor._data = tensor._data   # parameters live whole on every device (replicated)
        if not isinstance(tensor, Parameter):
            tensor.__class__ = Parameter   # same slots, so the object itself becomes the parameter
        registered = set().union(*(module.__dict__[r] for r in ("_parameters", "_buffers", "_modules")))
        name = next((k for k, v in module.__dict__.items()
                     if v is tensor and not k.startswith("_") and k not in registered), None)
        if name is None:
            i = len(self)
            while f"param_{i}" in self or hasattr(module, f"param_{i}"):
                i += 1
            name = f"param_{i}"
        else:
            del module.__dict__[name]   # from now on the attribute is served from the registry
        module.register_parameter(name, tensor)

    def extend(self, tensors):
        for t in tensors:
            self.append(t)
        return self

    def __iadd__(self, tensors):
        return self.extend(tensors)


class Parameters(list):
    """What ``Module.parameters()`` returns: a list (``len``, indexing, iterating again, as the
    public gt's) that ``next()`` also steps through, as torch's generator
    (``next(model.parameters()).dtype``)."""

    __slots__ = ("_cursor",)

    def __next__(self):
        try:
            cursor = self._cursor
        except AttributeError:
            cursor = self._cursor = iter(list.__iter__(self))
        return next(cursor)


class Module(ModuleHooks, BackwardHooks, ModuleLookup, ModuleDevices, state_dict_hooks.StateDictHooks):
    """Base class for layers and models: subclass it, assign layers and ``Parameter``s in
    ``__init__``, and write ``forward``. Calling the module calls ``forward`` (and its hooks: hooks.py).

        >>> class MLP(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
        ...     def forward(self, x):                      # x: (N, 4) -> (N, 2)
        ...         return self.fc2(self.fc1(x).relu())
        >>> [name for name, _ in MLP().named_parameters()]
        ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    call_super_init = False     # torch's: a class sets True to pass __init__'s arguments on (mixins after Module)
    dump_patches = False        # torch's flag, unused there too

    def __init__(self, *args, **kwargs):
        if not self.call_super_init and (args or kwargs):
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"'{next(iter(kwargs))}'" if kwargs else f"{type(self).__name__}.__init__() takes 1 "
                            f"positional argument but {len(args) + 1} were given")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = ParameterRegistry(self)
        d["_buffers"] = Members(self)
        d["_non_persistent_buffers"] = set()
        d["_modules"] = Members(self)
        d.update(self._new_hook_dicts())   # torch's dicts of forward and backward hooks (gt/nn/hooks.py)
        if self.call_super_init:
            super().__init__(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward() in the subclass")

    # ---- registration ----------------------------------------------------------------
    def _registry(self, kind):
        reg = self.__dict__.get(kind)
        if reg is None:
            raise AttributeError(f"cannot assign {kind[1:]} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")
        return reg

    def _check_name(self, name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a str, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")
        # torch's rule: a name may be registered again only in its own registry (a parameter's
        # name is no buffer's: ``del`` it first)
        if hasattr(self, name) and name not in self.__dict__.get(f"_{kind}s", ()):
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def register_parameter(self, name, param):
        """Add ``param`` (a ``Parameter`` or ``None``) under ``name``."""
        params = self._registry("_parameters")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter {name!r} "
                            "(gt.nn.Parameter or None expected)")
        params[name] = global_hooks.registered("parameter", self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        """Add a tensor that is state but not a parameter (e.g. fixed positional encodings).

        Persistent buffers are saved in ``state_dict()``; ``persistent=False`` ones are not.
        """
        buffers = self._registry("_buffers")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer {name!r} (gt.Tensor or None expected)")
        if tensor is not None and tensor._placed is not None:
            tensor = tensor.detach().replicate()  # module state lives whole on every device, like parameters
        buffers[name] = global_hooks.registered("buffer", self, name, tensor)
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Add a child module (or ``None``) under ``name``; the same as ``self.name = module``."""
        modules = self._registry("_modules")
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        modules[name] = global_hooks.registered("module", self, name, module)

    register_module = add_module

    def _forget(self, name, keep=None):
        # ``keep``: the registry being assigned into, so a re-assigned name keeps its place (order)
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg != keep:
                self.__dict__.get(reg, {}).pop(name, None)
        self.__dict__.pop(name, None)
        self.__dict__.get("_non_persistent_buffers", set()).discard(name)

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._registry("_parameters")
            self._forget(name, keep="_parameters")
            self.register_parameter(name, value)
        elif name in d.get("_parameters", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(gt.nn.Parameter or None expected)")
            d["_parameters"][name] = None
        elif isinstance(value, Module):
            self._registry("_modules")
            self._forget(name, keep="_modules")
            d["_modules"][name] = global_hooks.registered("module", self, name, value)
        elif name in d.get("_modules", ()):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} "
                                "(gt.nn.Module or None expected)")
            d["_modules"][name] = global_hooks.registered("module", self, name, None)
        elif isinstance(value, Tensor) and getattr(value, "_is_buffer", False):     # nn.Buffer(t): registers itself
            self._forget(name, keep="_buffers")
            persistent = getattr(value, "persistent", True)
            self.register_buffer(name, value, persistent=persistent)
            d["_buffers"][name]._is_buffer, d["_buffers"][name].persistent = True, persistent   # replicated: a copy
        elif name in d.get("_buffers", ()):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (gt.Tensor or None expected)")
            d["_buffers"][name] = global_hooks.registered("buffer", self, name, value)
        else:
            object.__setattr__(self, name, value)

    def __setstate__(self, state):
        # a copy (copy.deepcopy, pickle) of a module: its registries are its own, not the original's
        self.__dict__.update(state)
        for kind in ("_parameters", "_buffers", "_modules"):
            registry = state.get(kind)
            if isinstance(registry, Members):
                registry.own(self)

    def __getattr__(self, name):
        # Only called when normal lookup fails: registered entries live in the three dicts (and,
        # through Members, as attributes; this answers for a registry that lost its owner).
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in d.get(reg, ()):
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if any(name in self.__dict__.get(r, ()) for r in ("_parameters", "_buffers", "_modules")):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    # ---- traversal -----------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted_name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:       # torch's memo holds the modules themselves (a caller may pass some)
                return
            memo.add(self)
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, kind, prefix, recurse, remove_duplicate=True):
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        seen = set()
        for mod_prefix, mod in mods:
            for name, value in mod.__dict__[kind].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted_name, Parameter)`` pairs; a parameter shared by two layers comes once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """Every parameter (shared ones once), in registration order, as a list that also
        works with ``next()``; see ``Parameters``."""
        return Parameters(p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target):
        """The module at dotted path ``target`` (``""`` is this module)."""
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules or mod._modules[part] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (looking up {target!r})")
            mod = mod._modules[part]
        return mod

    def apply(self, fn):
        """Call ``fn(module)`` on every child (recursively), then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self, trainable_only=False):
        """How many scalar weights the module holds (shared parameters counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes and gradients -------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode on this module and every descendant (Dropout is active in it)."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode (Dropout is the identity); the same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the ``.grad`` of every parameter, in every child module too."""
        autograd.zero_grads(self.parameters(), set_to_none)

    # ---- state dict ----------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An OrderedDict ``dotted_name -> numpy array`` (a copy) of every parameter and
        persistent buffer, in torch's order, with torch's ``_metadata`` (each module's version).
        ``keep_vars=True`` gives the tensors themselves; ``destination`` a dict to fill and return.
        A first positional str is the prefix (gt's order), else torch's deprecated positional
        order ``(destination, prefix, keep_vars)``."""
        return state_dict_hooks.state_dict(self, args, destination, prefix, keep_vars)   # hooks: in there

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values (numpy arrays, gt tensors or torch tensors) into the parameters and
        buffers in place, cast to each one's dtype. With ``assign=True`` (torch's) the state
        dict's tensors become the module's entries instead, with their own dtypes (a parameter
        stays a ``Parameter`` with the module's ``requires_grad``; a gt tensor is taken as it is).

        Everything is checked before anything is written: one ``RuntimeError`` lists every
        missing key, unexpected key and shape mismatch, and the module is left untouched.
        With ``strict=False`` missing and unexpected keys are allowed (shape mismatches are
        not). Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, like torch.
        """
        return state_dict_hooks.load(self, state_dict, strict, assign)   # with hooks: see gt/nn/state_dict_hooks.py

    # ---- repr ------------------------------------------------------------------------------
    def extra_repr(self):
        """The text inside this module's parentheses in ``repr`` (override in layers)."""
        return ""

    def __repr__(self):
        n = self.num_parameters()
        count = f"  # {n:,} parameters" if n else ""
        extra = self.extra_repr()
        children = [f"({name}): {_indent(repr(m))}" for name, m in self._modules.items()]
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra}){count}"
        lines = (extra.split("\n") if extra else []) + children
        return f"{type(self).__name__}({count}\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        extra = [k for r in ("_parameters", "_buffers", "_modules") for k in self.__dict__.get(r, ())]
        return sorted(k for k in set(super().__dir__()) | set(extra) if not k[:1].isdigit())   # torch's: no "0"


def _indent(text, spaces=2):
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])
