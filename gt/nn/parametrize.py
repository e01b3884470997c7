"""Parametrizations of a module's tensors, as torch's ``torch.nn.utils.parametrize``.

``register_parametrization(module, "weight", P())`` moves ``module.weight`` to
``module.parametrizations.weight.original`` and makes ``module.weight`` a property that returns
``P()(original)``, computed again at every read (inside ``cached()``: once per block), so a
gradient reaches the original through ``P``. The module's class becomes a subclass made for it
(``ParametrizedLinear``), which holds the property, so other modules of the class are untouched.

    >>> class Symmetric(nn.Module):
    ...     def forward(self, X):                  # X: (n, n) -> (n, n)
    ...         return X.triu() + X.triu(1).mT
    >>> m = parametrize.register_parametrization(nn.Linear(3, 3), "weight", Symmetric())
    >>> list(m.state_dict())
    ['bias', 'parametrizations.weight.original']

Where gt differs from torch: assigning a tensor (``module.weight = value``, or the value kept by
``remove_parametrizations``) makes the original share the value's memory, as torch's ``set_``
does; there is no scripting or tracing, so torch's errors about them do not exist; a
parametrized module is deep-copied as torch's is, and pickling it is refused as torch does.
"""

import collections.abc
import contextlib
import copy

from gt import autograd
from gt.nn.containers import ModuleDict, ModuleList
from gt.nn.module import Module
from gt.nn.parameter import Parameter
from gt.tensor import Tensor

__all__ = ["cached", "ParametrizationList", "register_parametrization", "is_parametrized",
           "remove_parametrizations", "type_before_parametrizations", "transfer_parametrizations_and_params"]

_cache_enabled = 0
_cache = {}


@contextlib.contextmanager
def cached():
    """Inside the block each parametrized tensor is computed once, at its first read, and that
    value is returned by every later read (a weight used several times in one forward, as an
    RNN's recurrent kernel). The values are dropped when the outermost block ends.

        >>> with parametrize.cached():
        ...     out = model(x)
    """
    global _cache, _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache = {}


def _register_parameter_or_buffer(module, name, X):
    if isinstance(X, Parameter):
        module.register_parameter(name, X)
    else:
        module.register_buffer(name, X)


def _maybe_set(dest, src):
    # torch's ``dest.set_(src)``: dest keeps its identity (an optimizer holding it still works)
    # and takes src's values and shape, sharing its memory.
    dest._data = src._data


def _check_dtype(value, dtype, what):
    if value.dtype != dtype:
        raise ValueError(f"The tensor returned by `right_inverse` has dtype {value.dtype} while {what} "
                         f"has dtype {dtype}")


class ParametrizationList(ModuleList):
    """The type of ``module.parametrizations[tensor_name]``: the parametrizations of one tensor
    (children ``0``, ``1``, ... applied in that order) and the tensor they start from, under
    ``original`` (a Parameter or a buffer), or ``original0``, ``original1``, ... when the first
    parametrization's ``right_inverse`` returns a sequence of tensors. Made by
    ``register_parametrization``, not by users. ``unsafe=True`` skips the check that the
    parametrized tensor keeps the original's shape and dtype.
    """

    def __init__(self, modules, original, unsafe=False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = original.shape, original.dtype
        with autograd.no_grad():
            new = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass
        if not isinstance(new, (Tensor, collections.abc.Sequence)):
            raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                             f"Got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if original.dtype != new.dtype:
                raise ValueError("When `right_inverse` outputs one tensor, it may not change the dtype.\n"
                                 f"original.dtype: {original.dtype}\nright_inverse(original).dtype: {new.dtype}")
            with autograd.no_grad():
                _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, originali in enumerate(new):
                if not isinstance(originali, Tensor):
                    raise ValueError("'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...). "
                                     f"Got element {i} of the sequence with type {type(originali).__name__}.")
                if isinstance(original, Parameter):
                    originali = Parameter(originali, original.requires_grad)
                originali._set_requires_grad(original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", originali)
        if not self.unsafe:
            Z = self()
            _check_result(Z, original_dtype, original_shape, "unparametrized", "parametrized", "")

    def right_inverse(self, value):
        """Run the ``right_inverse`` of each parametrization, last registered first, on ``value``
        and store the result in ``original`` (or ``original0``, ``original1``, ...). This is what
        ``module.weight = value`` does."""
        with autograd.no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(f"parametrization {type(module).__name__} does not implement right_inverse.")
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value).__name__}")
                _check_dtype(value, self.original.dtype, "`original`")
                _maybe_set(self.original, value)
                return
            if not isinstance(value, collections.abc.Sequence):
                raise ValueError(f"'right_inverse' must return a sequence of tensors. Got {type(value).__name__}.")
            if len(value) != self.ntensors:
                raise ValueError("'right_inverse' must return a sequence of tensors of length "
                                 f"{self.ntensors}. Got a sequence of length {len(value)}.")
            for i, tensor in enumerate(value):
                if not isinstance(tensor, Tensor):
                    raise ValueError("'right_inverse' must return a sequence of tensors. "
                                     f"Got element {i} of type {type(tensor).__name__}.")
                original_i = getattr(self, f"original{i}")
                if original_i.dtype != tensor.dtype:
                    raise ValueError(f"Tensor {i} returned by `right_inverse` has dtype {tensor.dtype} "
                                     f"while `original{i}` has dtype {original_i.dtype}")
                _maybe_set(original_i, tensor)

    def forward(self):
        """The parametrized tensor: the parametrizations applied in order to the original(s)."""
        mods = list(self)
        if self.is_tensor:
            x = mods[0](self.original)
        else:
            x = mods[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for m in mods[1:]:
            x = m(x)
        return x


def _check_result(X, dtype, shape, before, after, flag_article):
    """torch's checks that a parametrization returns a tensor of the original's dtype and shape."""
    if not isinstance(X, Tensor):
        raise ValueError(f"A parametrization must return a tensor. Got {type(X).__name__}.")
    if X.dtype != dtype:
        raise ValueError(f"Registering a parametrization may not change the dtype of the tensor, unless "
                         f"{flag_article}`unsafe` flag is enabled.\n{before} dtype: {dtype}\n{after} dtype: {X.dtype}")
    if X.shape != shape:
        raise ValueError(f"Registering a parametrization may not change the shape of the tensor, unless "
                         f"{flag_article}`unsafe` flag is enabled.\n{before} shape: {shape}\n{after} shape: {X.shape}")


def _default_deepcopy(self, memo):
    obj = memo.get(id(self))
    if obj is not None:
        return obj
    replica = self.__new__(self.__class__)
    memo[id(self)] = replica
    replica.__setstate__(copy.deepcopy(self.__dict__, memo))   # the copy owns its registries (module.py)
    return replica


def _getstate(self):
    raise RuntimeError("Serialization of parametrized modules is only supported through state_dict(). See:\n"
                       "https://pytorch.org/tutorials/beginner/saving_loading_models.html"
                       "#saving-loading-a-general-checkpoint-for-inference-and-or-resuming-training")


def _inject_new_class(module):
    cls = module.__class__
    dct = {"__getstate__": _getstate}
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = _default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), dct)


def _inject_property(module, tensor_name):
    if hasattr(module, tensor_name):
        raise AssertionError(f"Module already has an attribute named '{tensor_name}'")

    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if not _cache_enabled:
            return parametrization()
        key = (id(self), tensor_name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def _check_appended(module, tensor_name, parametrization):
    """torch's checks before a parametrization is appended to a tensor that already has some."""
    Y = getattr(module, tensor_name)
    X = parametrization(Y)
    _check_result(X, Y.dtype, Y.shape, f"module.{tensor_name}", f"parametrization(module.{tensor_name})", "the ")
    if not hasattr(parametrization, "right_inverse"):
        return
    try:
        Z = parametrization.right_inverse(X)
    except NotImplementedError:
        return
    if not isinstance(Z, Tensor):
        raise ValueError(f"parametrization.right_inverse must return a tensor. Got: {type(Z).__name__}")
    for what, got, want in (("dtype", Z.dtype, Y.dtype), ("shape", Z.shape, Y.shape)):
        if got != want:
            raise ValueError(f"The tensor returned by parametrization.right_inverse must have the same {what} as "
                             f"module.{tensor_name}, unless the `unsafe` flag is enabled.\n"
                             f"module.{tensor_name}.{what}: {want}\nreturned {what}: {got}")


def register_parametrization(module, tensor_name, parametrization, *, unsafe=False):
    """Parametrize ``module.<tensor_name>`` (a parameter or buffer) by the module
    ``parametrization``: reading ``module.<tensor_name>`` returns ``parametrization(original)``.

    The tensor moves to ``module.parametrizations[tensor_name].original``; if ``parametrization``
    has ``right_inverse(X)``, the original is initialised to ``right_inverse(tensor)`` (several
    tensors, when it returns a sequence: ``original0``, ``original1``, ...), and assigning
    ``module.<tensor_name> = value`` stores ``right_inverse(value)``. Registering again on the
    same tensor chains the parametrizations (applied in registration order). Unless ``unsafe``,
    the parametrized tensor must keep the original's shape and dtype. Returns ``module``.

        >>> m = register_parametrization(nn.Linear(4, 4), "weight", Skew())
        >>> m.parametrizations.weight.original.shape      # the Parameter the optimizer updates
        (4, 4)
    """
    if not isinstance(module, Module):
        raise TypeError(f"register_parametrization: module must be a gt.nn.Module, got {type(module).__name__}")
    if not isinstance(parametrization, Module):
        raise TypeError("register_parametrization: parametrization must be a gt.nn.Module, "
                        f"got {type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            _check_appended(module, tensor_name, parametrization)
        module.parametrizations[tensor_name].append(parametrization)
        module.parametrizations[tensor_name].unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        parametrizations = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = parametrizations
    else:
        raise ValueError(f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
                         f"with name '{tensor_name}'")
    return module


def is_parametrized(module, tensor_name=None):
    """Whether ``module`` has a parametrization on ``tensor_name`` (on any tensor when None)."""
    parametrizations = getattr(module, "parametrizations", None)
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module, tensor_name, leave_parametrized=True):
    """Undo ``register_parametrization`` on ``module.<tensor_name>`` (all its parametrizations).

    With ``leave_parametrized=True`` the tensor keeps its current parametrized value (written
    into the original Parameter, so an optimizer holding it goes on working); with False it
    goes back to the unparametrized ``original`` (not possible for a tensor parametrized by a
    sequence of tensors). When no parametrization is left the module gets its class back.
    Returns ``module``.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    parametrizations = module.parametrizations[tensor_name]
    if parametrizations.is_tensor:
        original = parametrizations.original
        if leave_parametrized:
            with autograd.no_grad():
                t = getattr(module, tensor_name)
                _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ValueError("Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                             "parametrized in terms of a sequence of tensors.")
        with autograd.no_grad():
            t = getattr(module, tensor_name)
        original = Parameter(t) if parametrizations.original0.requires_grad else t
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module):
    """The class ``module`` had before its first parametrization (its class when it has none)."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(from_module, to_module, tensor_name=None):
    """Give ``to_module`` the parametrizations of ``from_module`` (those of ``tensor_name``, or
    all), sharing the same parametrization modules and original tensors; a tensor that
    ``to_module`` lacks is created first. Returns ``to_module``."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name)))
        for param_func in source:
            register_parametrization(to_module, name, param_func)
        target = to_module.parametrizations[name]
        if source.is_tensor:
            target.original = source.original
        else:
            for i in range(source.ntensors):
                setattr(target, f"original{i}", getattr(source, f"original{i}"))
    return to_module
