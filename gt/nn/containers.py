"""Containers that hold child modules (``Sequential``, ``ModuleList``, ``ModuleDict``, the old
``Container``) or parameters (``ParameterList``, ``ParameterDict``)."""

import collections
import collections.abc
import operator
import warnings

from gt.nn.module import Module, _indent
from gt.nn.parameter import Parameter
from gt.tensor import Tensor


def _check_module(value, where):
    if not isinstance(value, Module):
        raise TypeError(f"{where}: expected a gt.nn.Module, got {type(value).__name__}")
    return value


def _position(idx, n, kind):
    """``idx`` as a position in a list container of ``n`` entries (negative counts from the end)."""
    try:
        idx = operator.index(idx)     # torch's: numpy ints and one-element integer tensors too
    except TypeError:
        raise TypeError(f"{kind} indices must be integers or slices, not {type(idx).__name__}") from None
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {kind} of length {n}")
    return idx % n


class Container(Module):
    """torch's oldest container, kept for old code: ``Container(name=module, ...)`` registers each
    keyword as a child. Deprecated, with torch's FutureWarning: a plain ``Module`` does the same."""

    def __init__(self, **kwargs):
        warnings.warn("`nn.Container` is deprecated. All of its functionality is now implemented in `nn.Module`. "
                      "Subclass that instead.", FutureWarning, stacklevel=2)
        super().__init__()
        for key, value in kwargs.items():
            self.add_module(key, value)


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ... so their parameters
    are found by ``parameters()`` and saved as ``blocks.0.weight`` and so on.

        >>> blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        >>> len(blocks), blocks[-1].weight.shape
        (3, (4, 4))
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx):
        return _position(idx, len(self._modules), type(self).__name__)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(mods[idx])
        return mods[self._index(idx)]

    def __setitem__(self, idx, module):
        self._modules[str(self._index(idx))] = _check_module(module, f"{type(self).__name__}[{idx}] = ...")

    def __delitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[self._index(idx)]
        # renumber so the names stay "0".."n-1", as torch does
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, modules):
        """A new ``ModuleList`` of this one's modules and then ``modules``' (the same objects)."""
        return ModuleList(list(self) + list(modules))

    def pop(self, idx):
        """Remove and return the module at ``idx`` (an int or a slice: a container of them); the
        names after it are renumbered, as torch's."""
        removed = self[idx]
        del self[idx]
        return removed

    def append(self, module):
        self._modules[str(len(self._modules))] = _check_module(module, f"{type(self).__name__}.append")
        return self

    def extend(self, modules):
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError(f"{type(self).__name__}.extend expects an iterable of modules, "
                            f"got {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        mods = list(self._modules.values())
        mods.insert(index, _check_module(module, f"{type(self).__name__}.insert"))
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def __repr__(self):
        """torch's: a run of equal entries is one line, ``(0-2): 3 x Linear(...)``."""
        if type(self) is not ModuleList or not len(self):
            return super().__repr__()
        runs = []     # [first index, last index, repr]
        for i, text in enumerate(repr(m) for m in self):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [_indent(f"({a}): {text}" if a == b else f"({a}-{b}): {b - a + 1} x {text}") for a, b, text in runs]
        n = self.num_parameters()
        return "ModuleList(" + (f"  # {n:,} parameters" if n else "") + "\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it in the parent's forward()")


class Sequential(ModuleList):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Also accepts an OrderedDict ``name -> module`` to name the children.

        >>> mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> mlp(gt.randn(5, 4)).shape
        (5, 2)
    """

    def __init__(self, *modules):
        Module.__init__(self)
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, _check_module(m, "Sequential"))
        else:
            for m in modules:
                self.append(m)

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(collections.OrderedDict(mods[idx]))
        return mods[self._index(idx)][1]

    def __setitem__(self, idx, module):
        key = list(self._modules)[self._index(idx)]
        self._modules[key] = _check_module(module, f"Sequential[{idx}] = ...")

    def insert(self, index, module):
        """Put ``module`` before position ``index``; an index beyond either end is torch's IndexError."""
        if not -len(self) <= index <= len(self):
            raise IndexError(f"Index out of range: {index}")
        super().insert(index, module)
        return self

    def __add__(self, other):
        """A new ``Sequential`` of this one's modules and then ``other``'s (the same objects)."""
        if not isinstance(other, Sequential):
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return Sequential(*self, *other)

    def __iadd__(self, other):
        if not isinstance(other, Sequential):    # torch's: += takes a Sequential only (ModuleList's takes any list)
            raise ValueError(f"add operator supports only objects of Sequential class, but {type(other)} is given.")
        return self.extend(list(other))

    def __mul__(self, times):
        """A new ``Sequential`` of this one's modules ``times`` times over (the same objects, so
        their parameters are shared, as torch's)."""
        return Sequential(*self._repeated(times))

    __rmul__ = __mul__

    def __imul__(self, times):
        for m in self._repeated(times)[len(self):]:
            self.append(m)
        return self

    def _repeated(self, times):
        if isinstance(times, bool) or not isinstance(times, int):
            raise TypeError(f"unsupported operand type(s) for *: {type(self)} and {type(times)}")
        if times <= 0:
            raise ValueError(f"Non-positive multiplication factor {times} for {type(self)}")
        return list(self) * times

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class _NamedEntries(Module):
    """A dict view of one of the module's registries (``_modules`` or ``_parameters``): the keys
    are the entries' names (strings without dots); subclasses check what goes in."""

    _registry_name = None

    def __init__(self, entries=None):
        super().__init__()
        if entries is not None:
            self.update(entries)

    @property
    def _entries(self):
        return self.__dict__[self._registry_name]

    def __getitem__(self, key):
        return self._entries[key]

    def __delitem__(self, key):
        del self._entries[key]

    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        return iter(self._entries)

    def __contains__(self, key):
        return key in self._entries

    def keys(self):
        return self._entries.keys()

    def values(self):
        return self._entries.values()

    def items(self):
        return self._entries.items()

    _sorts_dicts = False   # torch's ParameterDict takes a plain dict's entries in sorted key order

    def update(self, entries):
        """Add or replace entries from a mapping (another container too) or ``(key, value)`` pairs."""
        kind = type(self).__name__
        if isinstance(entries, (collections.abc.Mapping, _NamedEntries)):
            ordered = isinstance(entries, (collections.OrderedDict, _NamedEntries)) or not self._sorts_dicts
            items = entries.items() if ordered else sorted(entries.items())
        elif isinstance(entries, collections.abc.Iterable):
            items = list(entries)
            for i, pair in enumerate(items):     # torch's checks, before anything is added
                if not isinstance(pair, collections.abc.Iterable):
                    raise TypeError(f"{kind} update sequence element #{i} should be Iterable; is "
                                    f"{type(pair).__name__}")
                if len(pair) != 2:
                    raise ValueError(f"{kind} update sequence element #{i} has length {len(pair)}; 2 is required")
        else:
            raise TypeError(f"{kind}.update should be called with an iterable of key/value pairs, but got "
                            f"{type(entries).__name__}")
        for key, value in items:
            self[key] = value

    def pop(self, key):
        """Remove the entry ``key`` and return it (KeyError if there is none)."""
        value = self[key]
        del self[key]
        return value

    def clear(self):
        """Remove every entry."""
        self._entries.clear()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); look its entries up in the parent's "
                                  "forward()")


class ModuleDict(_NamedEntries):
    """A dict of modules, registered under their keys (which must be strings without dots)."""

    _registry_name = "_modules"

    def __init__(self, modules=None):             # torch's name of the argument
        super().__init__(modules)

    def __setitem__(self, key, module):
        self.add_module(key, _check_module(module, f"ModuleDict[{key!r}] = ..."))


def _as_parameter(value, where):
    """A ``Parameter`` (or None: an empty slot, as ``register_parameter`` allows) as it is, a tensor or
    array made one (torch's containers do the same)."""
    if value is None or isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor) or hasattr(value, "__array__") or isinstance(value, (list, tuple)):
        return Parameter(value)
    raise TypeError(f"{where}: expected a gt.nn.Parameter or a tensor, got {type(value).__name__}")


def _entries_repr(items, kind):
    """torch's lines of a ``ParameterList``/``ParameterDict`` repr; ``kind(tensor)``: the list names
    the dtype (``gt.float32``), the dict the tensor type (``gt.FloatTensor``)."""
    lines = []
    for key, p in items:
        if isinstance(p, Tensor):
            lines.append(f"  ({key}): {'Parameter' if isinstance(p, Parameter) else 'Tensor'} containing: "
                         f"[{kind(p)} of size {'x'.join(str(n) for n in p.shape)}]")
        else:
            lines.append(f"  ({key}): Object of type: {type(p).__name__}")
    return "\n".join(lines)


class ParameterList(Module):
    """A list of parameters, registered as ``"0"``, ``"1"``, ... (so ``parameters()`` and
    ``state_dict()`` find them); tensors put in become ``Parameter``s, as in torch.

        >>> weights = nn.ParameterList([gt.zeros(2), gt.ones(3)])
        >>> [name for name, _ in weights.named_parameters()]
        ['0', '1']
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _index(self, idx):
        return _position(idx, len(self), "ParameterList")

    def _values(self):
        return [self._parameters[str(i)] for i in range(len(self))]

    def __getitem__(self, idx):
        values = self._values()
        return ParameterList(values[idx]) if isinstance(idx, slice) else values[self._index(idx)]

    def __setitem__(self, idx, value):
        self.register_parameter(str(self._index(idx)), _as_parameter(value, f"ParameterList[{idx}] = ..."))

    def __len__(self):
        # the entries are "0", "1", ...: a parameter set as an attribute (``plist.scale = p``) is
        # registered but is not an entry, as in torch
        n = 0
        while str(n) in self._parameters:
            n += 1
        return n

    def __iter__(self):
        return iter(self._values())

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        self.register_parameter(str(len(self)), _as_parameter(value, "ParameterList.append"))
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return _entries_repr(enumerate(self), lambda p: str(p.dtype))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); use its parameters in the parent's forward()")


class _MissingKey(KeyError, AttributeError):
    """A key a ``ParameterDict`` lacks: torch's raises AttributeError there, a dict KeyError; either catches it."""


class ParameterDict(_NamedEntries):
    """A dict of parameters, registered under their keys (strings without dots); tensors put
    in become ``Parameter``s, as in torch."""

    _registry_name = "_parameters"
    _sorts_dicts = True

    def __getitem__(self, key):
        if key not in self._entries:
            raise _MissingKey(f"'ParameterDict' object has no attribute '{key}'")
        return self._entries[key]

    def __init__(self, parameters=None):          # torch's name of the argument
        super().__init__(parameters)

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value, f"ParameterDict[{key!r}] = ..."))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def extra_repr(self):
        return _entries_repr(self.items(), lambda p: p.type())

    def setdefault(self, key, default=None):
        """The entry ``key``, first set to ``default`` if there is none."""
        if key not in self:
            self[key] = default
        return self[key]

    def popitem(self):
        """Remove and return the last entry put in, as ``(key, parameter)``."""
        if not len(self):
            raise KeyError("popitem(): dictionary is empty")
        key = next(reversed(self._entries))
        return key, self.pop(key)

    def copy(self):
        """A new ``ParameterDict`` holding the same parameters (not copies of them)."""
        return ParameterDict(self.items())

    @classmethod
    def fromkeys(cls, keys, default=None):
        return cls((key, default) for key in keys)

    def __reversed__(self):
        return reversed(list(self._entries))

    def __or__(self, other):
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other):
        merged = other.copy()          # torch's: a dict on the left stays a dict
        merged.update(self)
        return merged

    def __ior__(self, other):
        self.update(other)
        return self
