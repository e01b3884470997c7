"""torch's lazy modules: ``LazyModuleMixin``, and ``LazyLinear`` here; ``LazyConv1d/2d/3d``,
``LazyConvTranspose1d/2d/3d``, ``LazyBatchNorm1d/2d/3d`` and ``LazyInstanceNorm1d/2d/3d`` in
gt/nn/lazy_conv_norm.py.

A lazy module is its eager class without the input size (``in_features``, ``in_channels`` or
``num_features``, 0 until known): its parameters (and batch norm's running statistics) are
``UninitializedParameter``s / ``UninitializedBuffer``s (gt/nn/uninitialized.py) until the first
call, which reads the size off the input, materializes them in their shapes and dtype,
initialises them as the eager class does (its ``reset_parameters()``, so the same seed gives the
same values as the eager module built with that size) and turns the module into its eager class
(``cls_to_become``: after the first call ``type(m) is nn.Linear``).

    >>> fc = nn.LazyLinear(8)
    >>> fc
    LazyLinear(in_features=0, out_features=8, bias=True)
    >>> fc(gt.randn(4, 20)).shape, type(fc).__name__, fc.weight.shape
    ((4, 8), 'Linear', (8, 20))

Before the first call: ``parameters()`` yields the uninitialized objects (an optimizer may hold
them; they become the real parameters in place), ``state_dict()`` holds them as values,
``load_state_dict`` of an initialized (e.g. torch's eager) state dict materializes them in the
loaded shapes, and ``Module.to(dtype)`` sets the dtype they will have. The input may be
sharded: the size comes from its global shape, and the parameters are the unsharded ones.

Where gt differs from torch: the first input's number of dims is checked before anything is
materialized (torch materializes, then the eager forward refuses the input, and the module is
left initialized from it); a module whose parameters were loaded takes its size from the first
input too, and checks it against the loaded shapes (torch leaves ``in_channels`` /
``num_features`` 0 there, and raises ``AssertionError`` for ``LazyLinear``: gt ``ValueError``);
a lazy instance norm reads the channels of an unbatched input at dim 0 (torch reads dim 1 for
every input); parameters loaded by a partial ``load_state_dict(strict=False)`` keep their values
when the first call initialises the others; a load that is refused (a shape mismatch, so
nothing is written) leaves the module uninitialized (torch's is left materialized, without values).
"""

import itertools

from gt import autograd
from gt.backend import B
from gt.nn.inputs import as_tensor
from gt.nn.linear import Linear
from gt.nn.uninitialized import UninitializedParameter, is_lazy


def check_no_device(name, device):
    """torch's lazy layers take ``device``; gt's layers take none, so only None (or "cpu") is accepted."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{name}: device={device!r} is not supported (gt's layers take no device: parameters "
                         "live where the engine creates them)")


class LazyModuleMixin:
    """torch's ``nn.modules.lazy.LazyModuleMixin``, for modules whose parameters are known only at
    the first call: put it first in the bases, hold ``UninitializedParameter``s, and write
    ``initialize_parameters(*args, **kwargs)`` (it gets the first call's arguments and materializes
    them). After it ran, the module becomes ``cls_to_become`` (unless None).

        >>> class LazyScale(LazyModuleMixin, nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.weight = nn.UninitializedParameter()
        ...     def initialize_parameters(self, x):
        ...         if self.has_uninitialized_params():
        ...             self.weight.materialize(x.shape[-1:])
        ...             nn.init.ones_(self.weight)
        ...     def forward(self, x):
        ...         return x * self.weight
    """

    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._load_hook = self.register_load_state_dict_pre_hook(_lazy_load_hook)
        self._loaded_hook = self.register_load_state_dict_post_hook(_lazy_loaded_hook)
        self._save_hook = self.register_state_dict_post_hook(_lazy_save_hook)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self):
        """True while any parameter or buffer of this module is uninitialized."""
        _undo_failed_load(self)
        return any(is_lazy(t) for t in itertools.chain(self._parameters.values(), self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs):
        """Materialize the parameters from the first call's arguments (subclasses write it)."""
        raise NotImplementedError(f"initialize_parameters is not implemented for {type(self).__name__}")


class LazyLayer(LazyModuleMixin):
    """What gt's lazy layers share: put it before the eager class in the bases, and give
    ``cls_to_become`` (the eager class), ``_size_name`` (the attribute the input decides),
    ``_input_size(x)`` (that size, from the first input, whose dims it checks) and
    ``_lazy_shapes(size)`` (``{name: shape}`` of each parameter and buffer the size decides)."""

    _size_name = None

    def __init__(self, *args, **kwargs):
        # The eager __init__ runs with placeholder sizes: the flag keeps reset_parameters from
        # drawing values (the random stream must be where it was until the first call).
        self.__dict__["_lazy_building"] = True
        super().__init__(*args, **kwargs)
        del self.__dict__["_lazy_building"]

    def reset_parameters(self):
        # torch's rule: nothing to initialise before the sizes are known
        if ("_lazy_building" not in self.__dict__ and not self.has_uninitialized_params()
                and getattr(self, self._size_name) != 0):
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs):
        """Read the size off ``input`` (checking its dims), materialize the uninitialized parameters
        and buffers in their shapes and initialise them as the eager class does. Parameters already
        loaded (``load_state_dict``) must have the shapes the input implies, and keep their values."""
        name = type(self).__name__
        _undo_failed_load(self)
        size = self._input_size(as_tensor(input, name))
        shapes = self._lazy_shapes(size)
        own = {n: t for n, t in itertools.chain(self._parameters.items(), self._buffers.items())
               if n in shapes and t is not None}
        for n, t in own.items():
            if not is_lazy(t) and t.shape != shapes[n]:
                raise ValueError(f"{name}: the {self._size_name} inferred from the input ({size}) does not match the "
                                 f"loaded {n} of shape {t.shape} (expected {shapes[n]})")
        self.__dict__[self._size_name] = size
        if not any(is_lazy(t) for t in own.values()):
            return
        kept = {n: B.copy(t._data) for n, t in own.items() if not is_lazy(t)}
        with autograd.no_grad():
            for n, t in own.items():
                if is_lazy(t):
                    t.materialize(shapes[n])
            super().reset_parameters()   # the eager class's (LazyModuleMixin has none), whatever the size
            for n, arr in kept.items():
                own[n]._data = arr


def _lazy_load_hook(module, state_dict, prefix, *_):
    """torch's ``_lazy_load_hook``: an uninitialized entry takes the shape of the value loaded into it
    (so that the load checks that shape) until the load is done (``_lazy_loaded_hook``) or refused.
    An uninitialized value (a state dict saved before the first call) is loaded as the empty
    placeholder it holds, and the entry is uninitialized again once the load is done."""
    _undo_failed_load(module)
    pending = module.__dict__["_lazy_pending"] = []
    for name, t in itertools.chain(module._parameters.items(), module._buffers.items()):
        value = state_dict.get(prefix + name)
        if not is_lazy(t) or value is None:
            continue
        try:
            shape = value.size() if is_lazy(value) else tuple(getattr(value, "shape", None) or B.asarray(value).shape)
        except (TypeError, ValueError, RuntimeError):
            continue   # the load reports what it cannot read
        pending.append((t, type(t), t._data, not is_lazy(value)))
        t.materialize(shape)


def _lazy_loaded_hook(module, _incompatible_keys):
    """The load went through: the entries materialized for it hold the loaded values (those loaded
    from uninitialized values are uninitialized again)."""
    pending = module.__dict__.pop("_lazy_pending", ())
    _undo(entry for entry in pending if not entry[3])


def _undo_failed_load(module):
    """A load that materialized entries and then refused the state dict (writing nothing) leaves
    them uninitialized again (torch leaves them materialized, holding no values)."""
    _undo(module.__dict__.pop("_lazy_pending", ()))


def _undo(pending):
    for t, cls, placeholder, _ in pending:
        t.__class__ = cls
        t._data = placeholder


def _lazy_save_hook(module, state_dict, prefix, _metadata):
    """torch's ``_save_to_state_dict`` of a lazy module: an uninitialized entry is saved as itself."""
    _undo_failed_load(module)
    for name, t in itertools.chain(module._parameters.items(), module._buffers.items()):
        if is_lazy(t) and prefix + name in state_dict:
            state_dict[prefix + name] = t


def _infer_parameters(module, args, kwargs):
    """The forward pre-hook of a lazy module: initialise, then become the eager class."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise RuntimeError(f"module {type(module).__name__} has not been fully initialized")
    for hook in ("_initialize_hook", "_load_hook", "_loaded_hook", "_save_hook"):
        module.__dict__.pop(hook).remove()
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become


class LazyLinear(LazyLayer, Linear):
    """``Linear`` with ``in_features`` read off the first input's last dim: (..., in) -> (..., out).
    ``weight`` (out_features, in_features) and ``bias`` (out_features,) are uninitialized until then,
    and become ``Linear``'s (U(-1/sqrt(in_features), 1/sqrt(in_features))); the module becomes a
    ``Linear``. See gt/nn/lazy.py.

        >>> fc = nn.LazyLinear(16)
        >>> fc(gt.randn(8, 40)).shape, fc.in_features
        ((8, 16), 40)
    """

    cls_to_become = Linear
    _size_name = "in_features"

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        check_no_device("LazyLinear", device)
        super().__init__(0, out_features, False, dtype)
        self.weight = UninitializedParameter(dtype=dtype)
        if bias:
            self.bias = UninitializedParameter(dtype=dtype)

    def _input_size(self, x):
        if x.ndim == 0:
            raise ValueError(f"LazyLinear({self.extra_repr()}): expected an input of shape (..., in_features), got a "
                             "0-d tensor")
        return x.shape[-1]

    def _lazy_shapes(self, size):
        return {"weight": (self.out_features, size), "bias": (self.out_features,)}
