"""Parameters, buffers and submodules by dotted name: ``Module.get_parameter``, ``get_buffer`` and
``set_submodule``, as torch's (``Module.get_submodule`` is in gt/nn/module.py)."""

from gt.nn.parameter import Parameter


class ModuleLookup:
    """The by-name lookups of ``Module``."""

    def get_parameter(self, target):
        """The parameter at dotted path ``target`` (``"blocks.0.attn.out_proj.weight"``); an
        AttributeError names the part of the path that is missing or not a parameter.

            >>> nn.Sequential(nn.Linear(2, 3)).get_parameter("0.bias").shape
            (3,)
        """
        mod, name = self._owner_of(target)
        if name not in mod._parameters:
            kind = "a buffer" if name in mod._buffers else "a submodule" if name in mod._modules else None
            detail = f"`{name}` is {kind}, not an nn.Parameter" if kind else f"has no parameter `{name}`"
            raise AttributeError(f"{type(mod).__name__} {detail} (looking up {target!r})")
        param = mod._parameters[name]
        if not isinstance(param, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter (it is None; looking up {target!r})")
        return param

    def get_buffer(self, target):
        """The buffer at dotted path ``target``; an AttributeError names what is missing."""
        mod, name = self._owner_of(target)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}` (looking up {target!r})")
        return mod._buffers[name]

    def set_submodule(self, target, module, strict=False):
        """Put ``module`` at dotted path ``target`` (``"encoder.layers.0.linear1"``): the parent must
        exist; with ``strict=True`` the entry must too. Replacing a parameter or another attribute
        that is not a module is refused (AttributeError), as torch's.

            >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
            >>> net.set_submodule("1", nn.Tanh())
        """
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, ModuleLookup):     # every Module is one (its mixin)
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent, name = self._owner_of(target)
        if strict and not hasattr(parent, name):
            raise AttributeError(f"{type(parent).__name__} has no attribute `{name}` (setting {target!r})")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), ModuleLookup):
            raise AttributeError(f"`{name}` is not an nn.Module (setting {target!r})")
        setattr(parent, name, module)

    def _owner_of(self, target):
        if not isinstance(target, str):
            raise TypeError(f"expected a dotted name (str), got {type(target).__name__}")
        path, _, name = target.rpartition(".")
        return self.get_submodule(path), name
